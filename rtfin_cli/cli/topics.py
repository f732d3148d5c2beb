"""`rtfin topics create|list|describe`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from rtfin_cli.cli.common import console, print_json, settings

app = typer.Typer(help="Kafka topics of the pipeline.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@app.command()
def create(as_json: JsonOpt = False) -> None:
    """Create the pipeline topics from settings (idempotent)."""
    from rtfin_cli.kafka.admin import create_topics

    result = create_topics(settings().kafka)
    if as_json:
        print_json(result)
        return
    for name, what in result.items():
        console.print(f"{'[green]created[/]' if what == 'created' else '[dim]exists [/]'} {name}")


def _render(infos: list, wide: bool) -> None:  # type: ignore[type-arg]
    table = Table(
        "topic", "partitions", "replication", "messages", "end offsets", *(["config"] if wide else [])
    )
    for t in infos:
        row = [
            t.name,
            str(t.partitions),
            str(t.replication),
            str(t.messages),
            ",".join(map(str, t.end_offsets)),
        ]
        if wide:
            row.append(" ".join(f"{k}={v}" for k, v in sorted(t.config.items())))
        table.add_row(*row)
    console.print(table)


@app.command("list")
def list_(
    as_json: JsonOpt = False,
    internal: Annotated[bool, typer.Option(help="Include __internal topics.")] = False,
) -> None:
    """Topics with partitions and end offsets."""
    from rtfin_cli.kafka.admin import describe_topics

    infos = describe_topics(settings().kafka, internal=internal)
    if as_json:
        print_json([t.as_dict() for t in infos])
    else:
        _render(infos, wide=False)


@app.command()
def describe(
    names: Annotated[list[str] | None, typer.Argument(help="Topics (default: the pipeline's).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Partitions, end offsets and configuration of topics."""
    from rtfin_cli.kafka.admin import describe_topics, pipeline_topics

    infos = describe_topics(settings().kafka, names or pipeline_topics(settings().kafka))
    if as_json:
        print_json([t.as_dict() for t in infos])
    else:
        _render(infos, wide=True)
