"""The `rtfin` command: global options, command groups and the one error handler."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from rtfin_cli import __version__
from rtfin_cli.cli import config as config_cmd
from rtfin_cli.cli import dashboard, doctor, gaps, lag, local, produce, sentiment, topics, transform
from rtfin_cli.cli import verify as verify_cmd
from rtfin_cli.cli.common import err_console, state
from rtfin_cli.errors import RtfinError, UsageError

app = typer.Typer(
    name="rtfin",
    help="Drive the real-time finance pipeline: produce, score, transform, dashboard, monitor.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rtfin {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    profile: Annotated[
        str | None, typer.Option("--profile", "-p", envvar="RTFIN_PROFILE", help="Profile in rtfin.toml.")
    ] = None,
    config: Annotated[
        str | None, typer.Option("--config", "-c", envvar="RTFIN_CONFIG", help="Path to rtfin.toml.")
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """rtfin — a real-time finance data pipeline from one CLI."""
    state.profile, state.config, state.debug = profile, config, debug


app.add_typer(produce.app, name="produce")
app.add_typer(sentiment.app, name="sentiment")
app.add_typer(transform.app, name="transform")
app.add_typer(dashboard.app, name="dashboard")
app.add_typer(local.app, name="local")
app.add_typer(topics.app, name="topics")
app.add_typer(config_cmd.app, name="config")
app.command("lag")(lag.lag)
app.command("gaps")(gaps.gaps)
app.command("doctor")(doctor.doctor)
app.command("verify")(verify_cmd.verify)


def _say(prefix: str, text: str) -> None:
    """A ``prefix`` (markup) and ``text`` on stderr: the text quotes logs and paths, so it is never markup."""
    from rich.markup import escape

    err_console.print(f"{prefix} {escape(text)}", soft_wrap=True)


def report_error(exc: RtfinError) -> None:
    """One red line and the hint; a traceback only with --debug."""
    if state.debug:
        import traceback

        traceback.print_exception(exc)
    _say("[bold red]error:[/]", exc.message)
    if exc.hint:
        _say("[dim]hint:[/]", exc.hint)


def refuse_blank_options(command: Any) -> None:
    """Every option and argument of ``command`` and its subcommands refuses an empty or blank value typed on
    the command line: `--group ""` is a mistake (often an unset shell variable), never "all" and never the
    default."""
    for param in command.params:
        if not getattr(param, "is_flag", False):
            param.process_value = _refusing_blank(param, param.process_value)
    for sub in getattr(command, "commands", {}).values():
        refuse_blank_options(sub)


def _refusing_blank(param: Any, process: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def process_value(ctx: Any, value: Any) -> Any:
        source = ctx.get_parameter_source(param.name)
        typed = source is not None and source.name == "COMMANDLINE"
        values = value if isinstance(value, list | tuple) else [value]
        if typed and any(isinstance(v, str) and not v.strip() for v in values):
            if param.param_type_name == "option":
                name = param.opts[0]
                raise UsageError(f"{name} is empty", f"Give {name} a value, or leave it out for its default.")
            name = param.name.upper()
            raise UsageError(f"{name} is empty", f"Give {name} a value (see --help).")
        return process(ctx, value)

    return process_value


def run() -> None:
    """Console-script entry point."""
    try:
        command = typer.main.get_command(app)
        refuse_blank_options(command)
        code = command(standalone_mode=False)
    except RtfinError as exc:
        report_error(exc)
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("[yellow]aborted[/]")
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors from typer's (vendored) click: message + usage, exit 2
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            _say("[bold red]error:[/]", exc.format_message())
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - last resort: never a bare traceback without --debug
        if state.debug:
            raise
        _say("[bold red]error:[/]", f"unexpected {type(exc).__name__}: {exc}")
        _say("[dim]hint:[/]", "re-run with --debug for the traceback and report it.")
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    run()
