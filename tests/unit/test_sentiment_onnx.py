"""sentiment.runtime = onnx: the int8 ONNX export agrees with the torch model, and bad runtimes are errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rtfin_cli.sentiment import finetune, scoring
from rtfin_cli.sentiment.evaluate import metrics
from rtfin_cli.sentiment.labelled import read_tsv

os.environ.setdefault("RTFIN_TORCH_THREADS", "1")


def test_onnx_int8_agrees_with_torch_on_the_heldout_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RTFIN_ONNX_CACHE", str(tmp_path))
    gold, texts = read_tsv(finetune.HELDOUT)  # the whole split: the 99 % target is on all of it
    torch_model = scoring.load_scorer(scoring.OFFLINE_MODEL, runtime="torch")
    onnx_model = scoring.load_scorer(scoring.OFFLINE_MODEL, runtime="onnx")  # exports into tmp_path
    assert isinstance(onnx_model, scoring.OnnxScorer) and list(tmp_path.glob("*.int8.onnx"))
    a, b = torch_model.predict(texts), onnx_model.predict(texts)
    same = sum(x.label == y.label for x, y in zip(a, b, strict=True)) / len(texts)
    assert same >= 0.99
    acc = [metrics(gold, [p.label for p in preds]).accuracy for preds in (a, b)]
    assert abs(acc[0] - acc[1]) <= 0.01
    assert sum(abs(x.sentiment - y.sentiment) for x, y in zip(a, b, strict=True)) / len(a) < 0.05
    assert onnx_model.predict([]) == [] and len(onnx_model.predict(["x " * 20_000])) == 1


def test_bad_runtime_and_onnx_for_a_hub_model_are_errors() -> None:
    from rtfin_cli.errors import ConfigError
    from rtfin_cli.sentiment.model import load

    with pytest.raises(ConfigError, match="runtime 'tensorrt' is not one of torch, onnx"):
        load(scoring.OFFLINE_MODEL, runtime="tensorrt")
    with pytest.raises(ConfigError, match="runtime onnx runs the offline model only"):
        load("ProsusAI/finbert", runtime="onnx")


def test_onnx_session_keeps_no_memory_pattern_and_scores_exactly_the_same() -> None:
    """A memory pattern is planned and kept per input shape (batch x text length): without one a worker
    holds ~110 MB less for a dev stack's news (docs/benchmarks.md), and no score changes."""
    import onnxruntime as ort

    scorer = scoring.load_scorer(scoring.OFFLINE_MODEL, runtime="onnx")
    assert isinstance(scorer, scoring.OnnxScorer)
    assert scorer.session.get_session_options().enable_mem_pattern is False
    titles = read_tsv(finetune.HELDOUT)[1][:96]
    texts = titles + [f"{a}. {b}. {c}" for a, b, c in zip(titles, titles[1:], titles[2:], strict=False)]
    lean = scorer.predict(texts)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    planned = ort.InferenceSession(
        str(scoring.onnx_cache_file(scoring.head_file())), opts, providers=["CPUExecutionProvider"]
    )
    assert planned.get_session_options().enable_mem_pattern is True
    scorer.session = planned
    assert scorer.predict(texts) == lean
