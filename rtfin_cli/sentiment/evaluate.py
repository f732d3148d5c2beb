"""Accuracy, macro-F1, confusion matrix and calibration error for a labelled TSV (columns ``label``, ``title``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtfin_cli.sentiment.labelled import LABELS, read_tsv

ECE_BINS = 10


@dataclass
class EvalReport:
    model: str
    n: int
    accuracy: float
    macro_f1: float
    per_label: dict[str, dict[str, float]]
    confusion: dict[str, dict[str, int]]  # gold label -> predicted label -> count
    labels: list[str] = field(default_factory=lambda: list(LABELS))
    ece: float | None = None  # expected calibration error of the predicted label's probability, 10 bins
    errors: list[dict[str, Any]] = field(default_factory=list)  # the most confident mistakes

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "n": self.n, "accuracy": self.accuracy, "macro_f1": self.macro_f1,
            "ece": self.ece, "per_label": self.per_label, "confusion": self.confusion, "errors": self.errors,
        }  # fmt: skip


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


def calibration_error(confidence: Sequence[float], correct: Sequence[bool], bins: int = ECE_BINS) -> float:
    """Expected calibration error: |accuracy - mean confidence| per equal-width confidence bin, weighted."""
    n = len(confidence)
    if n == 0:
        return 0.0
    sums = [[0, 0.0, 0] for _ in range(bins)]  # count, confidence sum, correct count
    for conf, ok in zip(confidence, correct, strict=True):
        b = sums[min(int(conf * bins), bins - 1)]
        b[0], b[1], b[2] = b[0] + 1, b[1] + conf, b[2] + int(ok)
    return sum(abs(c_sum - ok) for _, c_sum, ok in sums) / n


def evaluate_file(
    path: Path,
    model: str,
    max_length: int = 256,
    batch_size: int = 64,
    runtime: str = "torch",
    errors: int = 0,
) -> EvalReport:
    """Score every title of a labelled TSV with ``model`` and compare with the labels."""
    from rtfin_cli.sentiment.model import load

    gold, titles = read_tsv(path)
    scorer = load(model, max_length, batch_size, runtime)
    preds = scorer.predict(titles)
    report = metrics(gold, [p.label for p in preds], scorer.name)
    report.ece = calibration_error(
        [p.score for p in preds], [g == p.label for g, p in zip(gold, preds, strict=True)]
    )
    wrong = sorted((i for i, p in enumerate(preds) if p.label != gold[i]), key=lambda i: -preds[i].score)
    report.errors = [
        {"title": titles[i], "gold": gold[i], "predicted": preds[i].label, "score": round(preds[i].score, 4)}
        for i in wrong[:errors]
    ]
    return report
