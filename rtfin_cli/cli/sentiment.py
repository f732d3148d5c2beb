"""`rtfin sentiment run|submit|status|cancel|score|eval|train`: the streaming job, Databricks, the model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from rtfin_cli.cli.common import console, is_tty, print_json, settings, state
from rtfin_cli.cli.reporting import SENTIMENT, reporter_for, sentiment_line
from rtfin_cli.errors import UsageError

if TYPE_CHECKING:
    from rtfin_cli.sentiment.evaluate import EvalReport

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
    scorer = load(_model(model, s.model), s.max_length, s.batch_size, s.runtime)
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


RuntimeOpt = Annotated[
    str | None, typer.Option("--runtime", help="torch or onnx (default: sentiment.runtime).")
]


def _runtime(value: str | None, default: str) -> str:
    from rtfin_cli.errors import UsageError
    from rtfin_cli.sentiment.scoring import RUNTIMES

    runtime = default if value is None else value.strip()
    if runtime not in RUNTIMES:
        raise UsageError(
            f"--runtime {value!r} is not one of {', '.join(RUNTIMES)}", "Pass --runtime torch or onnx."
        )
    return runtime


@app.command("eval")
def eval_(
    file: Annotated[
        Path | None,
        typer.Argument(help="TSV (or .tsv.gz) with a header naming columns 'label' and 'title'."),
    ] = None,
    as_json: JsonOpt = False,
    model: Annotated[str | None, typer.Option("--model", help="Model (default: sentiment.model).")] = None,
    runtime: RuntimeOpt = None,
    errors: Annotated[int, typer.Option("--errors", min=0, help="List the N most confident mistakes.")] = 0,
    against_insights: Annotated[
        bool,
        typer.Option(
            "--against-insights",
            help="Instead of a FILE: the model's labels in ClickHouse against the news provider's insights.",
        ),
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(help="With --against-insights: articles published since (ISO-8601, or 24h / 7d ago)."),
    ] = None,
) -> None:
    """Accuracy, macro-F1, per-label precision/recall/F1, confusion matrix and calibration error (ECE).

    With --against-insights: agreement of the model's labels with the provider's per-ticker insights."""
    from rtfin_cli.sentiment.evaluate import evaluate_file

    if against_insights or since is not None:
        _check_insights_options(file, against_insights, model, runtime, errors)
        _eval_insights(since, as_json)
        return
    if file is None:
        raise UsageError(
            "eval needs a labelled FILE or --against-insights",
            "Pass a TSV of label<TAB>title, or --against-insights to compare with the provider in ClickHouse.",
        )
    s = settings().sentiment
    rt = _runtime(runtime, s.runtime)
    report = evaluate_file(file, _model(model, s.model), s.max_length, s.batch_size, rt, errors)
    if as_json:
        print_json(report.as_dict() | {"runtime": rt})
        return
    console.print(
        f"model {report.model} ({rt})  n={report.n}  accuracy [bold]{report.accuracy:.3f}[/]  "
        f"macro-F1 [bold]{report.macro_f1:.3f}[/]  ECE (10 bins) [bold]{report.ece:.3f}[/]"
    )
    console.print(_confusion_table(report, "gold \\ predicted"))
    for e in report.errors:
        console.print(
            f"{e['score']:.3f}  gold {e['gold']:8} predicted {e['predicted']:8}  {e['title'][:110]}"
        )


def _check_insights_options(
    file: Path | None, against_insights: bool, model: str | None, runtime: str | None, errors: int
) -> None:
    """--against-insights reads labels already in ClickHouse: a FILE, model, runtime or --errors has no use."""
    if not against_insights:
        raise UsageError(
            "--since only applies with --against-insights", "Add --against-insights, or drop --since."
        )
    given = [
        n for n, v in (("FILE", file), ("--model", model), ("--runtime", runtime), ("--errors", errors)) if v
    ]
    if given:
        raise UsageError(
            f"--against-insights compares the labels already in ClickHouse: {', '.join(given)} cannot be used with it",
            "Drop them, or evaluate a labelled file without --against-insights.",
        )


def _eval_insights(since: str | None, as_json: bool) -> None:
    """`eval --against-insights [--since T]`: the model (predicted) against the provider (gold)."""
    from rtfin_cli.cli.produce import parse_time
    from rtfin_cli.sentiment.insights_eval import compare

    report = compare(settings(), parse_time(since, "--since") if since is not None else None)
    if as_json:
        print_json(report.as_dict())
        return
    m = report.metrics
    console.print(
        f"model vs provider over {m.n} (article, ticker) insights: agreement [bold]{m.accuracy:.3f}[/]  "
        f"macro-F1 [bold]{m.macro_f1:.3f}[/]  (not compared: {report.unscored} unscored, "
        f"{report.other_labels} other provider labels)"
    )
    console.print(_confusion_table(m, "provider \\ model"))


def _confusion_table(report: EvalReport, corner: str) -> Table:
    """The confusion matrix (gold rows, predicted columns) with per-label precision, recall, F1, support."""
    from rtfin_cli.sentiment.labelled import LABELS

    table = Table(corner, *LABELS, "precision", "recall", "f1", "support")
    for gold in LABELS:
        pl = report.per_label[gold]
        table.add_row(
            gold, *(str(report.confusion[gold][p]) for p in LABELS),
            f"{pl['precision']:.3f}", f"{pl['recall']:.3f}", f"{pl['f1']:.3f}", str(int(pl["support"])),
        )  # fmt: skip
    return table


def _model(value: str | None, default: str) -> str:
    """--model, or sentiment.model when it was left out (a blank --model never gets here: cli.main)."""
    return default if value is None else value.strip()


@app.command()
def train(
    check: Annotated[
        bool, typer.Option("--check", help="Retrain and compare with the committed adapter; write nothing.")
    ] = False,
    out: Annotated[
        str | None,
        typer.Option("--out", help="Write the adapter here (default: the packaged rtfin-minilm-fin)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fine-tune rtfin-minilm-fin (LoRA on all-MiniLM-L6-v2), fit its temperature, score the held-out split."""
    from rtfin_cli.errors import DataError
    from rtfin_cli.sentiment import finetune

    result = finetune.train(progress=None if as_json else lambda m: console.print(m, style="dim"))
    meta = result["meta"]
    keys = (
        "train_seconds",
        "temperature",
        "heldout_accuracy",
        "heldout_macro_f1",
        "heldout_ece_raw",
        "heldout_ece",
    )
    summary = {k: meta[k] for k in keys}
    if check:
        problems = finetune.check(result, finetune.ADAPTER)
        _show(summary | {"reproduced": not problems, "problems": problems}, as_json)
        if problems:
            raise DataError(
                f"the retrained adapter differs: {problems[0]}",
                "Commit the output of `rtfin sentiment train`.",
            )
        return
    path = Path(out) if out is not None else finetune.ADAPTER
    finetune.save(result, path)
    _show(summary | {"wrote": str(path)}, as_json)


def _show(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(data)
    else:
        console.print("  ".join(f"{k} {v}" for k, v in data.items()))


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
