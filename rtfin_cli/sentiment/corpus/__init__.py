"""Generators of the offline model's labelled sentences, written for this project.

``train_corpus`` writes the training and calibration splits; ``heldout_corpus`` is a separately
written generator (its own templates, vocabulary and company names) for the held-out split, so the
held-out score measures how the model carries over to phrasings it was not trained on.

    python -m rtfin_cli.sentiment.corpus      # regenerate data/sentiment_{train,calib,heldout}.tsv.gz
"""

from __future__ import annotations

import gzip
import io
import random
from collections.abc import Callable, Iterable
from pathlib import Path

Row = tuple[str, str]  # (label, text)
Frame = Callable[[random.Random], Row]


def sample(
    frames: Iterable[tuple[Frame, int]], seed: int, n: int, exclude: set[str] | None = None
) -> list[Row]:
    """About ``n`` distinct rows drawn from weighted frames; texts in ``exclude`` are skipped."""
    rng = random.Random(seed)
    pairs = list(frames)
    funcs, weights = [f for f, _ in pairs], [w for _, w in pairs]
    seen: set[str] = set(exclude or ())
    rows: list[Row] = []
    for _ in range(n * 30):
        if len(rows) >= n:
            break
        label, text = rng.choices(funcs, weights)[0](rng)
        text = " ".join(text.split())
        text = text[0].upper() + text[1:]
        key = text.lower()
        if key in seen:
            continue
        seen.add(key)
        rows.append((label, text))
    return rows


def write_tsv_gz(path: Path, rows: list[Row]) -> None:
    """label<TAB>title lines, gzip with a fixed mtime so the bytes depend on the rows only."""
    buf = io.StringIO()
    buf.write("label\ttitle\n")
    for label, text in rows:
        if "\t" in text or "\n" in text:
            raise ValueError(f"text contains a tab or newline: {text!r}")
        buf.write(f"{label}\t{text}\n")
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        gz.write(buf.getvalue().encode("utf-8"))
