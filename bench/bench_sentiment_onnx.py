"""The offline model under ONNX Runtime (int8) vs torch (fp32): throughput, load time, peak memory.

  sentiment.onnx_int8_hps      headlines/s of rtfin-minilm-fin with sentiment.runtime = onnx (int8)
                               vs runtime = torch (fp32): same texts (the held-out split), same batch
                               size and thread count, median of alternating rounds in one process
  sentiment.onnx_load_s        seconds to load each runtime's model in a fresh interpreter (the ONNX
                               export is cached beforehand and not counted) vs torch
  sentiment.onnx_peak_mb       peak RSS (MB, VmHWM) of a fresh interpreter that loads the model and scores
                               the texts once vs torch
Run: python -m bench bench_sentiment_onnx (BENCH_ONNX_THREADS, default 1; BENCH_ONNX_ROUNDS, default 5)
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

from bench import Result

MODEL = "rtfin-minilm-fin"
BATCH = 64
THREADS = os.environ.get("BENCH_ONNX_THREADS", "1")
ROUNDS = int(os.environ.get("BENCH_ONNX_ROUNDS", "5"))
PER_ROUND = 384


def _texts() -> list[str]:
    from rtfin_cli.sentiment.evaluate import read_tsv
    from rtfin_cli.sentiment.finetune import HELDOUT

    return read_tsv(HELDOUT)[1]


def _fresh(runtime: str) -> dict[str, float]:
    """Load time and peak RSS of one runtime in a new interpreter (this module's ``__main__``)."""
    env = os.environ | {"RTFIN_TORCH_THREADS": THREADS, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_sentiment_onnx", runtime],
        check=True, capture_output=True, text=True, env=env,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _vm_hwm_mb() -> float:
    """Peak RSS of this process image (VmHWM; getrusage's ru_maxrss keeps the parent's peak across exec)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _child(runtime: str) -> None:
    from rtfin_cli.sentiment.scoring import load_scorer

    texts = _texts()[:PER_ROUND]
    t0 = time.perf_counter()
    scorer = load_scorer(MODEL, 256, BATCH, runtime)
    load_s = time.perf_counter() - t0
    scorer.predict(texts)
    peak_mb = _vm_hwm_mb()
    print(json.dumps({"load_s": load_s, "peak_mb": peak_mb}))


def run() -> list[Result]:
    os.environ["RTFIN_TORCH_THREADS"] = THREADS
    from rtfin_cli.sentiment.scoring import load_scorer

    torch_scorer = load_scorer(MODEL, 256, BATCH, "torch")
    onnx_scorer = load_scorer(MODEL, 256, BATCH, "onnx")  # exports and caches the int8 model if needed
    texts = _texts()
    agree = sum(
        a.label == b.label
        for a, b in zip(torch_scorer.predict(texts), onnx_scorer.predict(texts), strict=True)
    ) / len(texts)
    rates: dict[str, list[float]] = {"torch": [], "onnx": []}
    for r in range(ROUNDS):
        chunk = texts[(r * PER_ROUND) % len(texts) :][:PER_ROUND]
        for name, scorer in (("torch", torch_scorer), ("onnx", onnx_scorer))[:: 1 if r % 2 == 0 else -1]:
            t0 = time.perf_counter()
            scorer.predict(chunk)
            rates[name].append(len(chunk) / (time.perf_counter() - t0))
    hps = {k: statistics.median(v) for k, v in rates.items()}
    fresh = {rt: _fresh(rt) for rt in ("torch", "onnx")}
    extra = {"batch_size": BATCH, "threads": THREADS, "rounds": ROUNDS, "per_round": PER_ROUND,
             "label_agreement": round(agree, 4), "rounds_hps": rates}  # fmt: skip
    return [
        Result("sentiment.onnx_int8_hps", hps["onnx"], "headlines/s", hps["torch"], "torch fp32", "ratio >= 2", extra),
        Result("sentiment.onnx_load_s", fresh["onnx"]["load_s"], "s", fresh["torch"]["load_s"], "torch fp32 load"),
        Result("sentiment.onnx_peak_mb", fresh["onnx"]["peak_mb"], "MB", fresh["torch"]["peak_mb"], "torch fp32 peak RSS"),
    ]  # fmt: skip


if __name__ == "__main__":
    _child(sys.argv[1])
