"""Sentiment models (the offline head, the Hugging Face path), evaluation, `rtfin sentiment score|eval`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rtfin_cli.sentiment import finetune, scoring
from rtfin_cli.sentiment.evaluate import calibration_error, metrics
from rtfin_cli.sentiment.labelled import read_tsv
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


def test_calibration_error_weights_each_bin_by_its_share() -> None:
    # bin 9: confidence 0.95, 9 of 10 right (gap 0.05); bin 5: confidence 0.55, 5 of 10 right (gap 0.05)
    conf = [0.95] * 10 + [0.55] * 10
    ok = [True] * 9 + [False] + [True] * 5 + [False] * 5
    assert calibration_error(conf, ok) == pytest.approx(0.05)
    assert calibration_error([1.0, 0.0], [True, False]) == pytest.approx(0.0)  # edges land in end bins
    assert calibration_error([], []) == 0.0


def test_temperature_scaling_recovers_the_temperature_and_calibrates() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6000, 3)) * 4
    true = scoring.softmax(logits, 2.5)
    y = np.array([rng.choice(3, p=row) for row in true])
    t = finetune.fit_temperature(logits, y)
    assert t == pytest.approx(2.5, rel=0.08)
    before, after = scoring.softmax(logits), scoring.softmax(logits, t)
    ece = [
        calibration_error(p.max(axis=1).tolist(), (p.argmax(axis=1) == y).tolist()) for p in (before, after)
    ]
    assert ece[0] > 0.1 and ece[1] < 0.03


def test_read_tsv_reads_gzip_and_names_a_corrupt_file(tmp_path: Path) -> None:
    import gzip

    from rtfin_cli.errors import DataError

    path = tmp_path / "x.tsv.gz"
    path.write_bytes(gzip.compress(b"label\ttitle\npositive\tProfit doubles\n"))
    assert read_tsv(path) == (["positive"], ["Profit doubles"])
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(DataError, match="cannot read"):
        read_tsv(path)


def test_offline_model_matches_its_committed_metrics_and_is_calibrated() -> None:
    from rtfin_cli.sentiment.evaluate import evaluate_file

    meta = finetune.committed_meta(finetune.ADAPTER)
    report = evaluate_file(finetune.HELDOUT, scoring.OFFLINE_MODEL, errors=5)
    assert report.n == meta["heldout_rows"]
    assert report.accuracy == pytest.approx(meta["heldout_accuracy"], abs=0.005)
    assert report.ece is not None and report.ece <= 0.05
    assert len(report.errors) == 5 and report.errors[0]["score"] >= report.errors[-1]["score"]


SMALL_ROWS = (
    256  # a small run: 1 epoch of 8 batches, seconds; the full one is `rtfin sentiment train --check`
)


def _small_recipe(seed: int) -> finetune.Recipe:
    return finetune.Recipe(
        seed=seed, limit=SMALL_ROWS, epochs=1, batch_size=32, max_length=32, layers=(4, 5), threads=1
    )


def test_training_is_reproducible_from_its_seed_and_the_adapter_loads_as_trained(tmp_path: Path) -> None:
    """Same seed and data: a byte-identical adapter file; another seed: other weights. The full
    reproduction of the committed adapter (minutes) is `rtfin sentiment train --check`, not a test."""
    import numpy as np

    texts, labels = finetune.load_rows(finetune.TRAIN_FILES)
    texts, labels = texts[:SMALL_ROWS], labels[:SMALL_ROWS]
    files, results = [], []
    for name, seed in (("first", 7), ("again", 7), ("other", 8)):
        results.append(finetune.fit(_small_recipe(seed), texts, labels))
        results[-1]["meta"] = {"temperature": 1.7, "recipe": finetune.recipe_dict(_small_recipe(seed))}
        finetune.save(results[-1], tmp_path / f"{name}.npz")
        files.append(tmp_path / f"{name}.npz")
    first, again, other = (f.read_bytes() for f in files)
    assert first == again and first != other
    with np.load(files[0]) as a, np.load(files[2]) as b:
        lora = [k for k in a.files if k.startswith("lora/")]
        assert len(lora) == 2 * 2 * 6 and all(not np.array_equal(a[k], b[k]) for k in [*lora, "W"])
    scorer = scoring.AdapterScorer(files[0], max_length=32)
    probe = ["Net profit fell to EUR 1.4 mn from EUR 1.5 mn.", "The company makes crash barriers."]
    assert np.allclose(scorer.logits(probe), results[0]["logits"](probe), atol=1e-4)
    assert scorer.temperature == pytest.approx(1.7)


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
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTFIN")} | {
        "RTFIN_TORCH_THREADS": "1",
        "COLUMNS": "200",
    }
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
    assert (
        0 <= rep["ece"] <= 1 and rep["per_label"]["neutral"]["precision"] == 1.0 and rep["runtime"] == "torch"
    )

    tsv.write_text(tsv.read_text().replace("negative\tCompany files", "positive\tCompany files"))
    ev = run_cli("sentiment", "eval", str(tsv), "--errors", "5", env=env, cwd=tmp_path)
    assert ev.returncode == 0 and "ECE (10 bins)" in ev.stdout and "precision" in ev.stdout, ev.stderr
    assert "gold positive predicted negative  Company files for bankruptcy" in ev.stdout

    for args in (("--runtime", "gpu"), ("--model", " "), ("--errors", "-1")):
        err = run_cli("sentiment", "eval", str(tsv), *args, env=env, cwd=tmp_path)
        assert err.returncode == 2 and "Traceback" not in err.stderr, (args, err.stderr)
    err = run_cli("sentiment", "train", "--out", "", env=env, cwd=tmp_path)
    assert err.returncode == 2 and "--out is empty" in err.stderr

    bad = tmp_path / "bad.tsv"
    bad.write_text("label\ttitle\nbullish\tSomething\n")
    err = run_cli("sentiment", "eval", str(bad), env=env, cwd=tmp_path)
    assert (
        err.returncode == 6 and "bad.tsv:2: label 'bullish'" in err.stderr and "Traceback" not in err.stderr
    )
