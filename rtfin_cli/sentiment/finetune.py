"""Fine-tune ``rtfin-minilm-fin``: a LoRA adapter on all-MiniLM-L6-v2 plus a softmax head, then a temperature.

Deterministic from a seed (fixed thread count, seeded initialisation and batch order): the same
seed and data give the same adapter. Trained on ``sentiment_train`` (+ the hand-written
``headlines_train``), the temperature fitted on ``sentiment_calib``, scored on ``sentiment_heldout``
(written by a separate generator, see ``rtfin_cli.sentiment.corpus``), never trained on.

The adapter file holds the LoRA factors (A, B per linear layer), the head, the temperature and the
training metadata; ``scoring.AdapterScorer`` merges the factors into the encoder at load time, so
running the model needs neither peft nor this module.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rtfin_cli.sentiment import DATA_DIR
from rtfin_cli.sentiment.labelled import LABELS, read_tsv
from rtfin_cli.sentiment.scoring import encoder_path, quiet

TRAIN_FILES = (DATA_DIR / "sentiment_train.tsv.gz", DATA_DIR / "headlines_train.tsv")
CALIB = DATA_DIR / "sentiment_calib.tsv.gz"
HELDOUT = DATA_DIR / "sentiment_heldout.tsv.gz"
ADAPTER = DATA_DIR / "rtfin-minilm-fin.npz"


@dataclass(frozen=True)
class Recipe:
    """Everything that decides the trained weights (stored in the adapter file's metadata)."""

    seed: int = 20261206
    rank: int = 8
    alpha: int = 16
    targets: tuple[str, ...] = ("query", "key", "value", "dense")
    layers: tuple[int, ...] = (2, 3, 4, 5)  # encoder layers given an adapter (() = all); 0-1 stay frozen
    label_smoothing: float = 0.0
    dropout: float = 0.1
    epochs: int = 2
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    max_length: int = 64
    threads: int = 1  # torch threads: one keeps the run bit-stable and leaves a core to the rest
    limit: int = 0  # train on the first N rows only (0 = all): the small run of the tests


def load_rows(files: Sequence[Path]) -> tuple[list[str], list[int]]:
    texts: list[str] = []
    labels: list[int] = []
    for path in files:
        gold, titles = read_tsv(path)
        texts += titles
        labels += [LABELS.index(g) for g in gold]
    return texts, labels


def _build(recipe: Recipe) -> tuple[Any, Any, Any]:
    """(tokenizer, peft-wrapped encoder, head) initialised from the recipe's seed."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel, AutoTokenizer

    quiet()
    warnings.filterwarnings("ignore", category=FutureWarning)  # transformers' notices about peft internals
    torch.manual_seed(recipe.seed)
    path = str(encoder_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    base = AutoModel.from_pretrained(path, add_pooling_layer=False)
    config = LoraConfig(
        r=recipe.rank,
        lora_alpha=recipe.alpha,
        lora_dropout=recipe.dropout,
        target_modules=list(recipe.targets),
        layers_to_transform=list(recipe.layers) or None,
    )
    model = get_peft_model(base, config)
    head = torch.nn.Linear(base.config.hidden_size, len(LABELS))
    return tokenizer, model, head


def _pooled(model: Any, enc: Any) -> Any:
    hidden = model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def _logits(tokenizer: Any, model: Any, head: Any, texts: Sequence[str], recipe: Recipe) -> Any:
    import numpy as np
    import torch

    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), 64):
            enc = tokenizer(list(texts[i : i + 64]), padding=True, truncation=True,
                            max_length=recipe.max_length, return_tensors="pt")  # fmt: skip
            out.append(head(_pooled(model, enc)).numpy().astype(np.float64))
    return np.concatenate(out) if out else np.zeros((0, len(LABELS)))


def _batch_order(texts: Sequence[str], size: int, rng: Any) -> list[list[int]]:
    """Shuffled batches of similar length (less padding): sort runs of 16 batches by length, shuffle batches."""
    import torch

    perm = torch.randperm(len(texts), generator=rng).tolist()
    batches: list[list[int]] = []
    run = size * 16
    for i in range(0, len(perm), run):
        chunk = sorted(perm[i : i + run], key=lambda j: len(texts[j]))
        batches += [chunk[k : k + size] for k in range(0, len(chunk), size)]
    return [batches[k] for k in torch.randperm(len(batches), generator=rng).tolist()]


def fit(
    recipe: Recipe, texts: list[str], labels: list[int], progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Train adapter + head; returns numpy arrays and a ``logits(texts)`` function of the trained model."""
    import numpy as np
    import torch

    torch.set_num_threads(recipe.threads)
    torch.use_deterministic_algorithms(True)
    tokenizer, model, head = _build(recipe)
    params = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
    optim = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    order_rng = torch.Generator().manual_seed(recipe.seed)
    n = len(texts)
    steps = recipe.epochs * ((n + recipe.batch_size - 1) // recipe.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: min(1.0, (s + 1) / (0.06 * steps)) * max(0.0, (steps - s) / steps)
    )
    y_all = torch.tensor(labels)
    step, t0 = 0, time.perf_counter()
    for epoch in range(recipe.epochs):
        model.train()
        head.train()
        for idx in _batch_order(texts, recipe.batch_size, order_rng):
            enc = tokenizer([texts[j] for j in idx], padding=True, truncation=True,
                            max_length=recipe.max_length, return_tensors="pt")  # fmt: skip
            logits = head(_pooled(model, enc))
            loss = torch.nn.functional.cross_entropy(
                logits, y_all[idx], label_smoothing=recipe.label_smoothing
            )
            optim.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optim.step()
            sched.step()
            step += 1
            if progress and step % 20 == 0:
                progress(f"epoch {epoch + 1}/{recipe.epochs} step {step}/{steps} loss {loss.item():.3f}")
    seconds = time.perf_counter() - t0
    head.eval()
    return {
        "adapter": adapter_arrays(model, recipe),
        "W": head.weight.detach().numpy().T.astype(np.float32).copy(),
        "b": head.bias.detach().numpy().astype(np.float32).copy(),
        "seconds": seconds,
        "logits": lambda xs: _logits(tokenizer, model, head, xs, recipe),
    }


def adapter_arrays(model: Any, recipe: Recipe) -> dict[str, Any]:
    """``<weight name>.A`` / ``.B`` for every LoRA layer, named as in the plain encoder's state dict."""
    import numpy as np

    out: dict[str, Any] = {}
    for name, module in model.named_modules():
        if hasattr(module, "lora_A") and "default" in getattr(module, "lora_A", {}):
            key = name.removeprefix("base_model.model.") + ".weight"
            out[key + ".A"] = module.lora_A["default"].weight.detach().numpy().astype(np.float32).copy()
            out[key + ".B"] = module.lora_B["default"].weight.detach().numpy().astype(np.float32).copy()
    return out


def fit_temperature(logits: Any, labels: Sequence[int]) -> float:
    """The T > 0 minimising the negative log-likelihood of softmax(logits / T) (golden-section on log T)."""
    import numpy as np

    y = np.asarray(labels)

    def nll(log_t: float) -> float:
        z = logits / np.exp(log_t)
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-logp[np.arange(len(y)), y].mean())

    lo, hi = np.log(0.05), np.log(20.0)
    g = (np.sqrt(5) - 1) / 2
    for _ in range(80):
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
        if nll(a) < nll(b):
            hi = b
        else:
            lo = a
    return float(np.exp((lo + hi) / 2))


def save(result: dict[str, Any], path: Path) -> None:
    """The adapter file: head, labels, temperature, metadata and ``lora/<weight>.A|B`` factors.

    An ``.npz`` (``np.load`` reads it) written byte for byte the same for the same arrays: sorted members,
    fixed timestamps (``np.savez`` stamps each member with the current time).
    """
    import io
    import zipfile

    import numpy as np

    meta = result["meta"]
    arrays = {
        "W": result["W"],
        "b": result["b"],
        "labels": np.array(LABELS),
        "temperature": np.float64(meta["temperature"]),
        "meta": np.array(json.dumps(meta, sort_keys=True)),
    }
    arrays |= {f"lora/{k}": v for k, v in result["adapter"].items()}  # fmt: skip
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asanyarray(arrays[name]), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0)), buf.getvalue(),
                        compress_type=zipfile.ZIP_DEFLATED)  # fmt: skip


def recipe_dict(recipe: Recipe) -> dict[str, Any]:
    """The recipe as it reads back from the adapter's JSON metadata (tuples become lists)."""
    return json.loads(json.dumps(asdict(recipe)))  # type: ignore[no-any-return]


def train(recipe: Recipe = Recipe(), progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Fit on the training files, fit T on the calibration split, score the held-out split."""
    import numpy as np

    from rtfin_cli.sentiment.evaluate import metrics
    from rtfin_cli.sentiment.scoring import softmax

    texts, labels = load_rows(TRAIN_FILES)
    if recipe.limit:
        texts, labels = texts[: recipe.limit], labels[: recipe.limit]
    result = fit(recipe, texts, labels, progress)
    calib_x, calib_y = load_rows([CALIB])
    temperature = fit_temperature(result["logits"](calib_x), calib_y)
    held_x, held_y = load_rows([HELDOUT])
    logits = result["logits"](held_x)
    gold = [LABELS[i] for i in held_y]
    report = metrics(gold, [LABELS[i] for i in logits.argmax(axis=1)], "rtfin-minilm-fin")
    y = np.asarray(held_y)
    meta = {
        "recipe": recipe_dict(recipe), "train_rows": len(texts), "temperature": temperature,
        "train_seconds": round(result["seconds"], 1), "heldout_rows": len(held_y),
        "heldout_accuracy": round(report.accuracy, 4), "heldout_macro_f1": round(report.macro_f1, 4),
        "heldout_ece_raw": round(_ece(softmax(logits), y), 4),
        "heldout_ece": round(_ece(softmax(logits, temperature), y), 4),
        "heldout_confusion": report.confusion,
        "data_sha256": {p.name: sha256(p) for p in (*TRAIN_FILES, CALIB, HELDOUT)},
    }  # fmt: skip
    result["meta"] = meta
    return result


def _ece(probs: Any, y: Any) -> float:
    from rtfin_cli.sentiment.evaluate import calibration_error

    return calibration_error(probs.max(axis=1).tolist(), (probs.argmax(axis=1) == y).tolist())


def sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def committed_meta(path: Path) -> dict[str, Any]:
    import numpy as np

    with np.load(path) as data:
        return json.loads(str(data["meta"]))  # type: ignore[no-any-return]


def check(result: dict[str, Any], path: Path, atol: float = 1e-4) -> list[str]:
    """Differences between a fresh training result and the committed adapter ([] when reproduced)."""
    import numpy as np

    problems = []
    with np.load(path) as data:
        mine = {"W": result["W"], "b": result["b"]} | {f"lora/{k}": v for k, v in result["adapter"].items()}
        if set(mine) != {k for k in data.files if k in mine or k.startswith("lora/")}:
            problems.append("the adapter's layers differ")
        for key, value in mine.items():
            if key in data.files and (diff := float(np.abs(data[key] - value).max())) > atol:
                problems.append(f"{key} differs by {diff:.2e} (> {atol})")
    old, new = committed_meta(path), result["meta"]
    for key in ("recipe", "data_sha256"):
        if old.get(key) != new[key]:
            problems.append(f"{key}: committed {old.get(key)} != retrained {new[key]}")
    for key, tol in (("heldout_accuracy", 0.002), ("heldout_macro_f1", 0.002), ("temperature", 0.02)):
        if abs(float(old.get(key, -1)) - new[key]) > tol:  # a label flipped by another CPU's rounding
            problems.append(f"{key}: committed {old.get(key)} != retrained {new[key]}")
    return problems
