"""The offline model's sentence corpus: reproducible from its generators, held-out split apart from training."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from rtfin_cli.sentiment import DATA_DIR
from rtfin_cli.sentiment.corpus import __main__ as corpus_main
from rtfin_cli.sentiment.corpus import heldout_corpus, sample, train_corpus, train_figures, train_words
from rtfin_cli.sentiment.labelled import read_tsv

SPLITS = ("train", "heldout", "calib")


def test_generators_reproduce_the_committed_files(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(corpus_main, "DATA_DIR", tmp_path)
    corpus_main.main()
    for name in SPLITS:
        fresh = gzip.decompress((tmp_path / f"sentiment_{name}.tsv.gz").read_bytes())
        assert fresh == gzip.decompress((DATA_DIR / f"sentiment_{name}.tsv.gz").read_bytes()), name


def test_splits_are_disjoint_large_and_balanced() -> None:
    texts = {}
    for name in SPLITS:
        labels, titles = read_tsv(DATA_DIR / f"sentiment_{name}.tsv.gz")
        counts = [labels.count(lab) for lab in ("positive", "negative", "neutral")]
        assert min(counts) / max(counts) > 0.75, (name, counts)
        texts[name] = {t.lower() for t in titles}
        assert len(texts[name]) == len(titles)
    assert len(texts["train"]) >= 4000 and len(texts["heldout"]) >= 1500
    assert not texts["train"] & texts["heldout"] and not texts["train"] & texts["calib"]
    assert not texts["heldout"] & texts["calib"]


def test_heldout_generator_shares_no_company_or_template_with_training() -> None:
    train_rows = sample(train_corpus.FRAMES, 1, 2000)
    held_rows = sample(heldout_corpus.FRAMES, 1, 2000)
    held_text = " ".join(t for _, t in held_rows)
    assert not [c for c in train_words.COMPANIES if c in held_text]
    train_text = " ".join(t for _, t in train_rows)
    assert not [c for c in heldout_corpus.FIRMS if c in train_text]
    # sentence shapes: the held-out split's first four words rarely open a training sentence
    openings = {" ".join(t.split()[:4]) for _, t in train_rows}
    shared = sum(" ".join(t.split()[:4]) in openings for _, t in held_rows)
    assert shared / len(held_rows) < 0.05


def _number(text: str) -> float:
    return float(re.sub(r"[^0-9.]", "", text.replace(",", "")).strip("."))


def test_figure_direction_decides_the_label() -> None:
    """Sentences whose only cue is the two figures: bigger good figure or smaller bad one = positive."""
    checked = 0
    for label, text in sample([(train_figures.metric_compare, 1)], 7, 400):
        m = re.match(r"^(.+?) was ([^,]+), compared with (.+?) (a year|in the|the year)", text)
        if m:
            good = m[1].lower() not in train_words.BAD
            assert label == ("positive" if good == (_number(m[2]) > _number(m[3])) else "negative"), text
            checked += 1
    for label, text in sample([(heldout_corpus.moved, 1)], 7, 400):
        m = re.match(r"^(.+?) went from (.+?) to (.+?) in ", text)
        if m:
            good = m[1].lower() not in heldout_corpus.MINUS
            assert label == ("positive" if good == (_number(m[3]) > _number(m[2])) else "negative"), text
            checked += 1
    assert checked > 60
