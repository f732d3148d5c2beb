"""`rtfin config show`: the resolved settings, their sources, secrets masked."""

from __future__ import annotations

from typing import Annotated

import typer

from rtfin_cli.cli.common import console, print_json, state

app = typer.Typer(help="Inspect configuration.", no_args_is_help=True)


@app.command()
def show(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Every setting of the selected profile with its source (file, env, default)."""
    from rich.table import Table

    from rtfin_cli.settings import flatten, masked_dump

    loaded = state.loaded()
    values = flatten(masked_dump(loaded.settings))
    if as_json:
        print_json(
            {
                "profile": loaded.profile,
                "config": str(loaded.config_path) if loaded.config_path else None,
                "settings": {
                    k: {"value": v, "source": loaded.sources.get(k, "default")} for k, v in values.items()
                },
            }
        )
        return
    where = loaded.config_path or "no rtfin.toml (built-in defaults)"
    console.print(f"profile [bold]{loaded.profile}[/] from {where}")
    table = Table("key", "value", "source")
    for key, value in values.items():
        src = loaded.sources.get(key, "default")
        style = {"env": "cyan", "file": "green"}.get(src, "dim")
        table.add_row(key, "" if value is None else str(value), f"[{style}]{src}[/]")
    console.print(table)
