"""`rtfin dashboard sync|export|open`: the Superset/Preset dashboard as code (superset_assets/)."""

from __future__ import annotations

import webbrowser
from pathlib import Path
from typing import Annotated

import typer

from rtfin_cli.cli.common import console, print_json, settings

app = typer.Typer(
    help="The dashboard as code: superset_assets/ <-> Superset or Preset.", no_args_is_help=True
)

TargetOpt = Annotated[
    str | None, typer.Option("--target", "-t", help="superset or preset (default: dashboard.backend).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@app.command()
def sync(
    target: TargetOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Render and list the assets; import nothing.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Render superset_assets/ for the profile and import them (overwrite by uuid: idempotent)."""
    from rtfin_cli.dashboard.sync import sync as run_sync

    result = run_sync(settings(), target, dry_run)
    if as_json:
        print_json({"target": result.target, "host": result.host, "dry_run": dry_run, "url": result.url,
                    "dashboard_id": result.dashboard_id, "charts": result.charts,
                    "assets": [{"kind": k, "name": n, "file": f} for k, n, f in result.assets]})  # fmt: skip
        return
    if dry_run:
        console.print(f"would import into {result.target} at {result.host}:")
        for kind, name, path in result.assets:
            console.print(f"  {kind:<9} {name}  [dim]{path}[/]", soft_wrap=True)
        return
    console.print(
        f"[green]synced[/] {len(result.assets)} assets to {result.target} at {result.host}: "
        f"dashboard with {len(result.charts)} charts"
    )
    console.print(f"{result.url}")


@app.command("export")
def export_cmd(
    target: TargetOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder to write (default: dashboard.assets_dir).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Download the dashboard and write it back as templates, so a UI edit becomes a small git diff."""
    from rtfin_cli.dashboard.sync import export

    result = export(settings(), target, out)
    if as_json:
        print_json({"written": result.written, "removed": result.removed, "unchanged": result.unchanged})
        return
    for path in result.written:
        console.print(f"  [green]wrote[/]   {path}")
    for path in result.removed:
        console.print(f"  [red]removed[/] {path}")
    console.print(
        f"{len(result.written)} written, {len(result.removed)} removed, {result.unchanged} unchanged"
    )


@app.command("open")
def open_cmd(
    target: TargetOpt = None,
    browser: Annotated[bool, typer.Option("--browser", help="Also open it in the default browser.")] = False,
    check: Annotated[bool, typer.Option(help="Look the dashboard up on the server.")] = True,
) -> None:
    """Print the dashboard URL (with --browser, open it)."""
    from rtfin_cli.dashboard.sync import dashboard_url

    url = dashboard_url(settings(), target, check=check)
    typer.echo(url)
    if browser:
        webbrowser.open(url)
