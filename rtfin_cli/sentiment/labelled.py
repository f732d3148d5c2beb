"""Labelled headlines: the sentiment labels and the TSV (columns ``label``, ``title``) that evaluation,
fine-tuning and the ONNX calibration read."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

from rtfin_cli.errors import DataError

LABELS = ("positive", "negative", "neutral")


def _text(path: Path) -> str:
    raw = Path(path).read_bytes()
    return (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("utf-8")


def read_tsv(path: Path) -> tuple[list[str], list[str]]:
    """(labels, titles) of a TSV (or .tsv.gz) with a header naming the columns ``label`` and ``title``."""
    try:
        reader = csv.DictReader(io.StringIO(_text(path), newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
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
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(
            f"cannot read {path}: {exc}", "Pass a UTF-8 TSV file (optionally gzip-compressed)."
        ) from None
    if not labels:
        raise DataError(f"{path}: no rows to evaluate", "Add lines of label<TAB>title below the header.")
    return labels, titles
