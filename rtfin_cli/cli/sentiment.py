"""`rtfin sentiment run|submit|status|cancel|score|eval`: the streaming job, Databricks, the model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from rtfin_cli.cli.common import console, is_tty, print_json, settings, state
from rtfin_cli.cli.reporting import SENTIMENT, reporter_for, sentiment_line

app = typer.Typer(
    help="Sentiment: the Spark streaming job, Databricks submission, the model.", no_args_is_help=True
)
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
TargetOpt = Annotated[
    str | None, typer.Option("--target", "-t", help="Profile to deploy (dev, prod, ...); default: --profile.")
]


@app.command()
def run(
    once: Annotated[
        bool, typer.Option("--once", help="Process what is in the topic now, then stop.")
    ] = False,
) -> None:
    """Run the sentiment streaming job in Spark local mode against the profile's Kafka (Ctrl-C stops it)."""
    from rtfin_cli.sentiment.runner import run_local

    s, profile = settings(), state.loaded().profile
    with reporter_for(SENTIMENT) as reporter:
        result = run_local(s, once=once, profile=profile, reporter=reporter)
    console.print(f"stopped: {sentiment_line(result)}")


@app.command()
def score(
    text: Annotated[list[str], typer.Argument(help="Headline(s) to score.")],
    as_json: JsonOpt = False,
    model: Annotated[str | None, typer.Option("--model", help="Model (default: sentiment.model).")] = None,
) -> None:
    """Score headlines with the configured model: label, score (confidence) and sentiment (-1..1)."""
    from rtfin_cli.sentiment.model import load

    s = settings().sentiment
    scorer = load(model or s.model, s.max_length, s.batch_size)
    preds = scorer.predict(text)
    rows: list[dict[str, Any]] = [
        {"text": t, "label": p.label, "score": round(p.score, 4), "sentiment": round(p.sentiment, 4)}
        for t, p in zip(text, preds, strict=True)
    ]
    if as_json:
        print_json(
            rows[0] | {"model": scorer.name} if len(rows) == 1 else [r | {"model": scorer.name} for r in rows]
        )
        return
    colour = {"positive": "green", "negative": "red", "neutral": "yellow"}
    for r in rows:
        console.print(
            f"[{colour[r['label']]}]{r['label']:8}[/] score {r['score']:.3f}  "
            f"sentiment {r['sentiment']:+.3f}  {r['text'][:100]}"
        )


@app.command("eval")
def eval_(
    file: Annotated[Path, typer.Argument(help="TSV with a header naming columns 'label' and 'title'.")],
    as_json: JsonOpt = False,
    model: Annotated[str | None, typer.Option("--model", help="Model (default: sentiment.model).")] = None,
) -> None:
    """Accuracy, macro-F1 and confusion matrix of the model on a labelled TSV file."""
    from rtfin_cli.sentiment.evaluate import LABELS, evaluate_file

    s = settings().sentiment
    report = evaluate_file(file, model or s.model, s.max_length, s.batch_size)
    if as_json:
        print_json(report.as_dict())
        return
    console.print(
        f"model {report.model}  n={report.n}  accuracy [bold]{report.accuracy:.3f}[/]  "
        f"macro-F1 [bold]{report.macro_f1:.3f}[/]"
    )
    table = Table("gold \\ predicted", *LABELS, "recall", "f1")
    for gold in LABELS:
        pl = report.per_label[gold]
        table.add_row(
            gold, *(str(report.confusion[gold][p]) for p in LABELS), f"{pl['recall']:.3f}", f"{pl['f1']:.3f}"
        )
    console.print(table)


def _target_settings(target: str | None) -> tuple[Any, str]:
    from rtfin_cli.settings import load_settings

    loaded = state.loaded() if target is None else load_settings(state.config, target)
    return loaded.settings, loaded.profile


@app.command()
def submit(
    target: TargetOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the job spec JSON; no credentials.")
    ] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the run until it ends.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Upload the job to Databricks, create or reset its job, and run it; prints the run page URL."""
    from rtfin_cli.sentiment import databricks as dbx

    s, profile = _target_settings(target)
    spec = dbx.job_spec(s, profile)  # every setting the job needs is checked before any network call
    if dry_run:
        if is_tty() and not as_json:
            console.print_json(json.dumps(spec))
        else:
            print_json(spec)
        return
    client = dbx.client(s)
    result = dbx.submit(client, s, profile)
    if as_json and not wait:
        print_json(result)
        return
    console.print(
        f"job {result['job_id']} ({result['job_name']}) run {result['run_id']}: {result['run_page_url']}"
    )
    if wait:
        with reporter_for(dbx.STAGE, as_json=as_json) as reporter:
            final = dbx.wait(client, result["run_id"], reporter)
        if as_json:
            print_json(final)
        else:
            console.print(
                f"run {result['run_id']}: {final['life_cycle_state']} {final.get('result_state') or ''}"
            )
        dbx.raise_for_result(final)


@app.command()
def status(target: TargetOpt = None, as_json: JsonOpt = False) -> None:
    """State of the Databricks job's latest runs."""
    from rtfin_cli.sentiment import databricks as dbx

    s, _ = _target_settings(target)
    runs = dbx.runs(dbx.client(s), s)
    if as_json:
        print_json(runs)
        return
    table = Table("run", "state", "result", "started", "url")
    for r in runs:
        table.add_row(
            str(r["run_id"]),
            r["life_cycle_state"],
            r.get("result_state") or "",
            r["start"],
            r["run_page_url"],
        )
    console.print(table)


@app.command()
def cancel(
    target: TargetOpt = None,
    run_id: Annotated[
        int | None, typer.Option("--run-id", help="Cancel this run (default: every active run).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Cancel the Databricks job's active run(s)."""
    from rtfin_cli.sentiment import databricks as dbx

    s, _ = _target_settings(target)
    cancelled = dbx.cancel(dbx.client(s), s, run_id)
    if as_json:
        print_json({"cancelled": cancelled})
    else:
        console.print(f"cancelled runs: {', '.join(map(str, cancelled)) or 'none active'}")
