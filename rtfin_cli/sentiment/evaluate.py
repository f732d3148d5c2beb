"""Accuracy, macro-F1 and a confusion matrix for a labelled TSV (columns ``label`` and ``title``)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtfin_cli.errors import DataError

LABELS = ("positive", "negative", "neutral")


@dataclass
class EvalReport:
    model: str
    n: int
    accuracy: float
    macro_f1: float
    per_label: dict[str, dict[str, float]]
    confusion: dict[str, dict[str, int]]  # gold label -> predicted label -> count
    labels: list[str] = field(default_factory=lambda: list(LABELS))

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "n": self.n, "accuracy": self.accuracy, "macro_f1": self.macro_f1,
            "per_label": self.per_label, "confusion": self.confusion,
        }  # fmt: skip


def read_tsv(path: Path) -> tuple[list[str], list[str]]:
    """(labels, titles) of a TSV with a header naming the columns ``label`` and ``title``."""
    try:
        with Path(path).open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
            if not reader.fieldnames or not {"label", "title"} <= set(reader.fieldnames):
                raise DataError(
                    f"{path}: the header must name the columns 'label' and 'title' (got {reader.fieldnames})",
                    "Write a tab-separated file whose first line is: label<TAB>title",
                )
            labels, titles = [], []
            for line, row in enumerate(reader, start=2):
                label = (row.get("label") or "").strip().lower()
                if label not in LABELS:
                    raise DataError(
                        f"{path}:{line}: label {label!r} is not one of {', '.join(LABELS)}",
                        "Fix the label column of that line.",
                    )
                labels.append(label)
                titles.append(row.get("title") or "")
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}", "Pass an existing TSV file.") from None
    if not labels:
        raise DataError(f"{path}: no rows to evaluate", "Add lines of label<TAB>title below the header.")
    return labels, titles


def metrics(gold: Sequence[str], pred: Sequence[str], model: str = "") -> EvalReport:
    confusion = {g: dict.fromkeys(LABELS, 0) for g in LABELS}
    for g, p in zip(gold, pred, strict=True):
        confusion[g][p] = confusion[g].get(p, 0) + 1
    per_label: dict[str, dict[str, float]] = {}
    for lab in LABELS:
        tp = confusion[lab][lab]
        fp = sum(confusion[g][lab] for g in LABELS if g != lab)
        fn = sum(v for p, v in confusion[lab].items() if p != lab)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[lab] = {"precision": precision, "recall": recall, "f1": f1, "support": float(tp + fn)}
    present = [lab for lab in LABELS if per_label[lab]["support"] > 0]
    macro = sum(per_label[lab]["f1"] for lab in present) / len(present) if present else 0.0
    correct = sum(g == p for g, p in zip(gold, pred, strict=True))
    return EvalReport(model, len(gold), correct / len(gold) if gold else 0.0, macro, per_label, confusion)


def evaluate_file(path: Path, model: str, max_length: int = 256, batch_size: int = 64) -> EvalReport:
    """Score every title of a labelled TSV with ``model`` and compare with the labels."""
    from rtfin_cli.sentiment.model import load

    gold, titles = read_tsv(path)
    scorer = load(model, max_length, batch_size)
    pred = [p.label for p in scorer.predict(titles)]
    return metrics(gold, pred, scorer.name)
