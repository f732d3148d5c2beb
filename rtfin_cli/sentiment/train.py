"""Train the ``rtfin-minilm-fin`` head: reproducible (fixed seed, full-batch, float64), offline.

    python -m rtfin_cli.sentiment.train            # train on data/headlines_train.tsv, write the head
    python -m rtfin_cli.sentiment.train --check    # retrain in memory; compare with the committed head

Only ``headlines_train.tsv`` is trained on (the L2 strength is chosen by 5-fold cross-validation
inside it); ``headlines_heldout.tsv`` is scored once at the end and its metrics are stored in the
head file, so `--check` (and a unit test) can verify both the weights and the reported numbers.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from rtfin_cli.sentiment import DATA_DIR
from rtfin_cli.sentiment.evaluate import LABELS, metrics, read_tsv
from rtfin_cli.sentiment.scoring import OFFLINE_MODEL, MiniLMEncoder

TRAIN = DATA_DIR / "headlines_train.tsv"
HELDOUT = DATA_DIR / "headlines_heldout.tsv"
HEAD = DATA_DIR / f"{OFFLINE_MODEL}.npz"
SEED = 20261125
L2_GRID = (1e-4, 1e-3, 3e-3, 1e-2, 3e-2)
STEPS = 400
MAX_LENGTH = 64  # headlines are short; the runtime limit (sentiment.max_length) applies to scoring


def _softmax(z: Any) -> Any:
    import numpy as np

    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit(x: Any, y: Any, l2: float, steps: int = STEPS) -> tuple[Any, Any]:
    """Multinomial logistic regression by full-batch gradient descent with momentum (deterministic).

    Features are standardised with the training mean/std; the returned (W, b) work on raw embeddings.
    """
    import numpy as np

    mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-6
    xs = (x - mu) / sd
    n, d = xs.shape
    onehot = np.eye(len(LABELS))[y]
    w, b = np.zeros((d, len(LABELS))), np.zeros(len(LABELS))
    vw, vb = np.zeros_like(w), np.zeros_like(b)
    lr, beta = 0.5, 0.9
    for _ in range(steps):
        grad = (_softmax(xs @ w + b) - onehot) / n
        gw, gb = xs.T @ grad + l2 * w, grad.sum(axis=0)
        vw, vb = beta * vw + gw, beta * vb + gb
        w, b = w - lr * vw, b - lr * vb
    w_raw = w / sd[:, None]
    return w_raw, b - mu @ w_raw


def _predict(w: Any, b: Any, x: Any) -> list[str]:
    return [LABELS[k] for k in (x @ w + b).argmax(axis=1)]


def choose_l2(x: Any, y: Any, folds: int = 5) -> tuple[float, dict[str, float]]:
    """The L2 strength with the best mean cross-validated accuracy on the training set only."""
    import numpy as np

    order = np.random.default_rng(SEED).permutation(len(y))
    scores: dict[str, float] = {}
    for l2 in L2_GRID:
        accs = []
        for k in range(folds):
            test = order[k::folds]
            train = np.setdiff1d(order, test)
            w, b = fit(x[train], y[train], l2)
            accs.append(np.mean(np.array(_predict(w, b, x[test])) == np.array([LABELS[i] for i in y[test]])))
        scores[str(l2)] = float(np.mean(accs))
    best = max(L2_GRID, key=lambda v: (scores[str(v)], -v))
    return best, scores


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train() -> dict[str, Any]:
    """Train on the training split and evaluate on the held-out split; returns arrays and metrics."""
    import numpy as np
    import torch

    torch.manual_seed(SEED)
    torch.set_num_threads(1)  # bit-stable embeddings
    encoder = MiniLMEncoder(max_length=MAX_LENGTH, batch_size=64)
    gold_train, titles_train = read_tsv(TRAIN)
    gold_test, titles_test = read_tsv(HELDOUT)
    x_train = encoder.encode(titles_train).astype(np.float64)
    y_train = np.array([LABELS.index(lab) for lab in gold_train])
    l2, cv = choose_l2(x_train, y_train)
    w, b = fit(x_train, y_train, l2)
    report = metrics(gold_test, _predict(w, b, encoder.encode(titles_test).astype(np.float64)), OFFLINE_MODEL)
    meta = {
        "l2": l2, "cv_accuracy": cv, "seed": SEED, "steps": STEPS, "train_rows": len(gold_train),
        "heldout_rows": len(gold_test), "train_sha256": sha256(TRAIN), "heldout_sha256": sha256(HELDOUT),
        "heldout_accuracy": report.accuracy, "heldout_macro_f1": report.macro_f1,
        "heldout_confusion": report.confusion,
    }  # fmt: skip
    return {"W": w.astype(np.float32), "b": b.astype(np.float32), "meta": meta}


def save(result: dict[str, Any], path: Path = HEAD) -> None:
    import numpy as np

    np.savez(path, W=result["W"], b=result["b"], labels=np.array(LABELS), meta=json.dumps(result["meta"]))


def committed_meta(path: Path = HEAD) -> dict[str, Any]:
    import numpy as np

    with np.load(path) as data:
        return json.loads(str(data["meta"]))  # type: ignore[no-any-return]


def check(result: dict[str, Any], path: Path = HEAD, atol: float = 1e-3) -> list[str]:
    """Differences between a fresh training result and the committed head ([] when reproduced)."""
    import numpy as np

    problems = []
    with np.load(path) as data:
        for key in ("W", "b"):
            diff = float(np.abs(data[key] - result[key]).max())
            if diff > atol:
                problems.append(f"{key} differs by {diff:.2e} (> {atol})")
    old = committed_meta(path)
    for key in ("heldout_accuracy", "heldout_macro_f1", "train_sha256", "heldout_sha256", "l2"):
        if old.get(key) != result["meta"][key]:
            problems.append(f"{key}: committed {old.get(key)} != retrained {result['meta'][key]}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="retrain and compare with the committed head")
    args = parser.parse_args(argv)
    result = train()
    meta = result["meta"]
    print(json.dumps({k: meta[k] for k in ("l2", "cv_accuracy", "heldout_accuracy", "heldout_macro_f1")}))
    if args.check:
        problems = check(result)
        for p in problems:
            print(f"MISMATCH {p}", file=sys.stderr)
        return 1 if problems else 0
    save(result)
    print(f"wrote {HEAD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
