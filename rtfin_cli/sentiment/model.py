"""Loading the configured model for the CLI (errors become RtfinErrors with a hint)."""

from __future__ import annotations

from rtfin_cli.errors import ConfigError
from rtfin_cli.sentiment.scoring import ModelLoadError, Prediction, Scorer, get_scorer

__all__ = ["Prediction", "Scorer", "load", "score_texts"]


def load(model: str, max_length: int = 256, batch_size: int = 64, runtime: str = "torch") -> Scorer:
    try:
        return get_scorer(model, max_length, batch_size, runtime)
    except ModelLoadError as exc:
        raise ConfigError(
            str(exc),
            "Set sentiment.model to rtfin-minilm-fin (offline), a local model directory, "
            "or a Hugging Face model name reachable from here; sentiment.runtime to torch or onnx.",
        ) from None


def score_texts(
    texts: list[str], model: str, max_length: int = 256, batch_size: int = 64, runtime: str = "torch"
) -> list[Prediction]:
    return load(model, max_length, batch_size, runtime).predict(texts)
