"""The offline model under ONNX Runtime (int8) vs torch (fp32): throughput, load time, peak memory.

  sentiment.onnx_int8_hps      headlines/s of rtfin-minilm-fin with sentiment.runtime = onnx (int8)
                               vs runtime = torch (fp32): the held-out split's texts, batch 64, the same
                               thread count; goal >= 2x
  sentiment.onnx_load_s        seconds to load the model (the ONNX export is cached beforehand)
  sentiment.onnx_peak_mb       peak RSS (MB, VmHWM) of the process after loading and scoring
Each round runs each side in a fresh interpreter (bench.paired.alternate), sides alternating, and
every figure is the median over the rounds. Recorded beside them: the label agreement on the held-out
split, and headlines per CPU-second of each side (``cpu_hps``: less sensitive to other processes on a
shared machine than wall time, as each side runs one thread).
Run: python -m bench bench_sentiment_onnx (BENCH_ONNX_THREADS, default 1; BENCH_ONNX_ROUNDS, default 3)
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

from bench import Result
from bench.paired import alternate

MODEL = "rtfin-minilm-fin"
BATCH = 64
THREADS = os.environ.get("BENCH_ONNX_THREADS", "1")
ROUNDS = int(os.environ.get("BENCH_ONNX_ROUNDS", "3"))


def _texts() -> list[str]:
    from rtfin_cli.sentiment.finetune import HELDOUT
    from rtfin_cli.sentiment.labelled import read_tsv

    return read_tsv(HELDOUT)[1]


def _vm_hwm_mb() -> float:
    """Peak RSS of this process image (VmHWM; getrusage's ru_maxrss keeps the parent's peak across exec)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _side(runtime: str) -> dict[str, float]:
    """One fresh process: load the model, score one warm-up batch, then time the held-out texts."""
    from rtfin_cli.sentiment.scoring import load_scorer

    texts = _texts()
    t0 = time.perf_counter()
    scorer = load_scorer(MODEL, 256, BATCH, runtime)
    load_s = time.perf_counter() - t0
    scorer.predict(texts[:BATCH])
    t0, c0 = time.perf_counter(), time.process_time()
    scorer.predict(texts)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"hps": len(texts) / wall, "cpu_hps": len(texts) / cpu, "load_s": load_s, "peak_mb": _vm_hwm_mb()}


def onnx_side() -> dict[str, float]:
    return _side("onnx")


def torch_side() -> dict[str, float]:
    return _side("torch")


def _agreement() -> float:
    """Share of the held-out texts given the same label by both runtimes (exports the ONNX model if needed)."""
    from rtfin_cli.sentiment.scoring import load_scorer

    texts = _texts()
    a, b = (load_scorer(MODEL, 256, BATCH, rt).predict(texts) for rt in ("torch", "onnx"))
    return sum(x.label == y.label for x, y in zip(a, b, strict=True)) / len(texts)


def run() -> list[Result]:
    os.environ["RTFIN_TORCH_THREADS"] = THREADS  # inherited by both sides' processes
    agree = _agreement()
    hps, base, seen = alternate(f"{__name__}:onnx_side", f"{__name__}:torch_side", "hps", rounds=ROUNDS)

    def median(side: str, key: str) -> Any:
        return statistics.median(r[key] for r in seen if r["side"] == side)

    extra = {"batch_size": BATCH, "threads": THREADS, "rounds": ROUNDS, "texts": len(_texts()),
             "label_agreement": round(agree, 4), "rounds_seen": seen,
             "cpu_hps": {s: median(s, "cpu_hps") for s in ("value", "baseline")}}  # fmt: skip
    return [
        Result("sentiment.onnx_int8_hps", hps, "headlines/s", base, "torch fp32", "ratio >= 2", extra, goal=2.0),
        Result("sentiment.onnx_load_s", median("value", "load_s"), "s", median("baseline", "load_s"), "torch fp32 load"),
        Result("sentiment.onnx_peak_mb", median("value", "peak_mb"), "MB", median("baseline", "peak_mb"),
               "torch fp32 peak RSS"),
    ]  # fmt: skip
