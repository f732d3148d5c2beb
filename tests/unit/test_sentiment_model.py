"""Sentiment models (the offline head, the Hugging Face path), evaluation, `rtfin sentiment score|eval`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rtfin_cli.sentiment import scoring
from rtfin_cli.sentiment.evaluate import metrics, read_tsv
from rtfin_cli.sentiment.train import HEAD, HELDOUT, TRAIN, committed_meta
from tests.conftest import run_cli

os.environ.setdefault("RTFIN_TORCH_THREADS", "1")


def test_predictions_math() -> None:
    preds = scoring.predictions([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], ("positive", "negative", "neutral"))
    assert preds[0].label == "positive" and preds[0].score == pytest.approx(0.7)
    assert preds[0].sentiment == pytest.approx(0.5) and preds[1].sentiment == pytest.approx(0.0)
    assert preds[1].label == "neutral"


def test_metrics_confusion_and_macro_f1() -> None:
    report = metrics(
        ["positive", "negative", "neutral", "neutral"], ["positive", "neutral", "neutral", "neutral"]
    )
    assert report.accuracy == pytest.approx(0.75)
    assert report.confusion["negative"]["neutral"] == 1
    # f1: positive 1.0, negative 0.0, neutral 2*(2/3*1)/(2/3+1)=0.8
    assert report.macro_f1 == pytest.approx((1.0 + 0.0 + 0.8) / 3)


def test_dataset_is_balanced_and_heldout_is_disjoint() -> None:
    train_labels, train_titles = read_tsv(TRAIN)
    test_labels, test_titles = read_tsv(HELDOUT)
    assert not set(train_titles) & set(test_titles)
    assert len(train_titles) + len(test_titles) >= 600
    for labels in (train_labels, test_labels):
        counts = [labels.count(lab) for lab in ("positive", "negative", "neutral")]
        assert min(counts) / max(counts) > 0.9


def test_offline_model_meets_target_on_heldout_and_matches_committed_metrics() -> None:
    from rtfin_cli.sentiment.evaluate import evaluate_file

    meta = committed_meta()
    report = evaluate_file(HELDOUT, scoring.OFFLINE_MODEL)
    assert report.accuracy == pytest.approx(meta["heldout_accuracy"], abs=0.01)
    assert report.accuracy >= 0.85 and report.macro_f1 >= 0.85
    assert report.n == meta["heldout_rows"]


@pytest.mark.slow
def test_training_script_reproduces_the_committed_head() -> None:
    from rtfin_cli.sentiment.train import check, train

    assert check(train(), HEAD) == []


def test_offline_model_labels_clear_headlines_and_truncates_long_text() -> None:
    scorer = scoring.get_scorer(scoring.OFFLINE_MODEL)
    preds = scorer.predict(
        [
            "Acme Corp beats earnings estimates and raises full-year guidance",
            "Acme Corp shares crash after accounting fraud probe",
            "Acme Corp to hold annual shareholder meeting on May 3",
            "",
            "Revenue rose sharply. " * 4700,
        ]
    )
    assert [p.label for p in preds[:3]] == ["positive", "negative", "neutral"]
    assert preds[0].sentiment > 0.5 and preds[1].sentiment < -0.5
    assert all(0 <= p.score <= 1 and -1 <= p.sentiment <= 1 for p in preds)


def _tiny_bert(path: Path, id2label: dict[int, str]) -> Path:
    """A randomly initialised BertForSequenceClassification saved like a hub download."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(str(scoring.encoder_path()))
    config = BertConfig(
        vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=37, max_position_embeddings=64, num_labels=len(id2label), id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
    )  # fmt: skip
    BertForSequenceClassification(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_hugging_face_path_loads_a_local_model_by_path(tmp_path: Path) -> None:
    path = _tiny_bert(tmp_path / "tiny", {0: "positive", 1: "negative", 2: "neutral"})
    scorer = scoring.load_scorer(str(path), max_length=256, batch_size=2)
    assert scorer.max_length == 64  # capped at the model's position limit
    texts = ["Apple beats estimates", "x " * 50_000, "", "Shares fall"]
    probs = scorer.probabilities(texts)  # type: ignore[attr-defined]
    preds = scorer.predict(texts)
    assert len(preds) == 4
    for row, p in zip(probs, preds, strict=True):
        assert p.sentiment == pytest.approx(row[0] - row[1], abs=1e-6)
        assert p.score == pytest.approx(row.max(), abs=1e-6)


def test_model_with_unusable_labels_is_a_config_error(tmp_path: Path) -> None:
    from rtfin_cli.errors import ConfigError
    from rtfin_cli.sentiment.model import load

    path = _tiny_bert(tmp_path / "bad", {0: "LABEL_0", 1: "LABEL_1"})
    with pytest.raises(ConfigError, match="LABEL_0"):
        load(str(path))
    with pytest.raises(ConfigError, match="cannot load model"):
        load(str(tmp_path / "does-not-exist"))


def test_cli_score_and_eval(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTFIN")} | {"RTFIN_TORCH_THREADS": "1"}
    out = run_cli(
        "sentiment", "score", "Apple beats estimates and raises guidance", "--json", env=env, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["label"] == "positive" and doc["model"] == "rtfin-minilm-fin" and doc["sentiment"] > 0

    tsv = tmp_path / "small.tsv"
    tsv.write_text(
        "label\ttitle\npositive\tProfit soars to a record\nnegative\tCompany files for bankruptcy\n"
        "neutral\tCompany to report results on Tuesday\n"
    )
    ev = run_cli("sentiment", "eval", str(tsv), "--json", env=env, cwd=tmp_path)
    assert ev.returncode == 0, ev.stderr
    rep = json.loads(ev.stdout)
    assert rep["n"] == 3 and rep["accuracy"] == 1.0 and rep["confusion"]["negative"]["negative"] == 1

    bad = tmp_path / "bad.tsv"
    bad.write_text("label\ttitle\nbullish\tSomething\n")
    err = run_cli("sentiment", "eval", str(bad), env=env, cwd=tmp_path)
    assert (
        err.returncode == 6 and "bad.tsv:2: label 'bullish'" in err.stderr and "Traceback" not in err.stderr
    )
