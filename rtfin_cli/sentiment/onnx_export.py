"""Export the offline model (encoder with its LoRA adapter merged, mean pooling, head) to ONNX, int8.

The graph takes ``input_ids``, ``attention_mask`` and ``token_type_ids`` (batch and sequence axes
dynamic) and returns the head's logits before the temperature; ``scoring.OnnxScorer`` divides by
the temperature and applies the softmax. Four steps, each measured on the held-out split (see
docs/sentiment.md):

1. ``torch.onnx.export`` with eager attention;
2. ONNX Runtime's transformer optimizer fuses the embedding LayerNorm, the LayerNorms and the GELUs,
   but not attention, skip + LayerNorm or bias + GELU (``_optimised``: their fused CPU kernels were
   slower on this model than the plain ops);
3. per-channel smoothing (``_smooth``): each linear layer's input is divided by a per-channel factor
   and the weight's rows multiplied by it (the product is unchanged), moving the activation outliers
   (up to 30x the typical value) into the weights, whose int8 ranges are per output channel; the
   exponent of each layer's factor is the one whose int8 output error is least on calibration texts;
4. dynamic int8 quantisation (``quantize_dynamic``, per channel) of every linear layer except the
   feed-forward outputs of layers 0-2 (``FP32_LAYERS``), the three whose int8 error dominates.

Needs torch, transformers, onnx and onnxruntime; the result is cached by the adapter's hash.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Protocol

from rtfin_cli.sentiment import DATA_DIR

CALIBRATION = DATA_DIR / "sentiment_calib.tsv.gz"  # the temperature's split: never the held-out one
CALIBRATION_TEXTS = 128
FP32_LAYERS = ("layer.0/output/dense/", "layer.1/output/dense/", "layer.2/output/dense/")
EXPONENTS = (0.0, 0.5, 0.7, 0.8, 0.9)  # 0: no smoothing


class AdapterModel(Protocol):
    """What the export reads of the scoring module's adapter scorer (which imports this module to export)."""

    model: Any  # the encoder with the adapter merged (torch)
    weights: Any  # head weights, (hidden, labels)
    bias: Any
    tokenizer: Any


class _Logits:
    """A torch module computing the adapter scorer's logits (built lazily: torch is imported late)."""

    @staticmethod
    def build(scorer: AdapterModel) -> Any:
        import torch

        class Module(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.encoder = scorer.model
                self.head = torch.nn.Linear(scorer.weights.shape[0], scorer.weights.shape[1])
                with torch.no_grad():
                    self.head.weight.copy_(torch.from_numpy(scorer.weights.T.copy()))
                    self.head.bias.copy_(torch.from_numpy(scorer.bias.copy()))

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
                hidden = self.encoder(
                    input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
                ).last_hidden_state
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                return self.head(pooled)

        return Module().eval()


NAMES = ("input_ids", "attention_mask", "token_type_ids")


def _optimised(scorer: AdapterModel, tmp: Path) -> Path:
    """The fp32 graph, traced and optimised (steps 1-2)."""
    import torch
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    scorer.model.set_attn_implementation("eager")  # the pattern the optimizer knows (sdpa's is not)
    enc = scorer.tokenizer(["Net sales rose to EUR 12.3 mn.", "A second, longer example sentence."],
                           padding=True, return_tensors="pt")  # fmt: skip
    axes = {n: {0: "batch", 1: "sequence"} for n in NAMES} | {"logits": {0: "batch"}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the tracer's notes on shapes it treats as constants
        torch.onnx.export(
            _Logits.build(scorer), tuple(enc[n] for n in NAMES), str(tmp / "fp32.onnx"),
            input_names=list(NAMES), output_names=["logits"], dynamic_axes=axes, opset_version=17, dynamo=False,
        )  # fmt: skip
    config = scorer.model.config
    options = FusionOptions("bert")
    # Measured on one thread: ONNX Runtime's fused Attention, SkipLayerNormalization and BiasGelu CPU
    # kernels ran slower here than the plain ops they replace (1.38x torch with them, 1.70x without).
    options.enable_attention = options.enable_skip_layer_norm = False
    options.enable_bias_skip_layer_norm = options.enable_bias_gelu = False
    optimised = optimize_model(str(tmp / "fp32.onnx"), model_type="bert", num_heads=config.num_attention_heads,
                               hidden_size=config.hidden_size, optimization_options=options, opt_level=0)  # fmt: skip
    optimised.save_model_to_file(str(tmp / "optimised.onnx"))
    return tmp / "optimised.onnx"


def _fake_int8(x: Any, w: Any) -> Any:
    """``x @ w`` as ONNX Runtime's dynamic int8 computes it: x uint8 per tensor, w int8 per column."""
    import numpy as np

    lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    step = (hi - lo) / 255 or 1.0
    zero = np.round(-lo / step)
    xq = (np.clip(np.round(x / step) + zero, 0, 255) - zero) * step
    wstep = np.abs(w).max(0) / 127
    wstep[wstep == 0] = 1.0
    return xq @ (np.round(w / wstep) * wstep)


def _inputs(model: Any, nodes: list[Any], scorer: AdapterModel) -> dict[str, tuple[Any, Any]]:
    """Per node: (per-channel max |input|, a sample of input rows) over the calibration texts."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    from rtfin_cli.sentiment.labelled import read_tsv

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.extend(onnx.helper.make_tensor_value_info(n.input[0], onnx.TensorProto.FLOAT, None)
                              for n in nodes)  # fmt: skip
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    texts = read_tsv(CALIBRATION)[1][:CALIBRATION_TEXTS]
    amax: dict[str, Any] = {}
    rows: dict[str, list[Any]] = {n.name: [] for n in nodes}
    for i in range(0, len(texts), 64):
        enc = scorer.tokenizer(
            texts[i : i + 64], padding=True, truncation=True, max_length=256, return_tensors="np"
        )
        outs = session.run([n.input[0] for n in nodes], {k: enc[k].astype(np.int64) for k in NAMES})
        for node, x in zip(nodes, outs, strict=True):
            flat = x.reshape(-1, x.shape[-1])
            amax[node.name] = np.maximum(amax.get(node.name, 0.0), np.abs(flat).max(0))
            rows[node.name].append(flat[::4])
    return {n.name: (amax[n.name], np.concatenate(rows[n.name])) for n in nodes}


def _smooth(model: Any, nodes: list[Any], scorer: AdapterModel) -> None:
    """Step 3, in place: per node the exponent a of factors s = max|x|^a / max|w|^(1-a) whose int8
    output error on the calibration inputs is least; x / s becomes a Mul before the node."""
    import numpy as np
    from onnx import helper, numpy_helper

    weights = {t.name: t for t in model.graph.initializer}
    stats = _inputs(model, nodes, scorer)
    muls = {}
    for node in nodes:
        amax, x = stats[node.name]
        w = numpy_helper.to_array(weights[node.input[1]])
        exact, wmax = x @ w, np.maximum(np.abs(w).max(1), 1e-5)
        factors = [np.ones_like(amax)] + [(amax**a / wmax ** (1 - a)).clip(1e-3, 1e3) for a in EXPONENTS[1:]]
        s = min(factors, key=lambda f: float(((_fake_int8(x / f, w * f[:, None]) - exact) ** 2).mean()))
        if s is factors[0]:
            continue
        weights[node.input[1]].CopyFrom(
            numpy_helper.from_array((w * s[:, None]).astype(np.float32), node.input[1])
        )
        model.graph.initializer.append(
            numpy_helper.from_array((1 / s).astype(np.float32), node.name + "_inv_s")
        )
        muls[node.name] = helper.make_node(
            "Mul", [node.input[0], node.name + "_inv_s"], [node.name + "_x"], name=node.name + "_smooth"
        )
        node.input[0] = node.name + "_x"
    ordered = [m for n in model.graph.node for m in ([muls[n.name]] if n.name in muls else []) + [n]]
    del model.graph.node[:]
    model.graph.node.extend(ordered)


def export(scorer: AdapterModel, out: Path) -> Path:
    """Write the int8 ONNX model of an adapter ``scorer`` (loaded with max_length 512) to ``out``."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the optimizer's and quantize_dynamic's progress and advice
    try:
        with tempfile.TemporaryDirectory(prefix="rtfin-onnx-") as tmp:
            model = onnx.load(str(_optimised(scorer, Path(tmp))))
            weights = {t.name for t in model.graph.initializer}
            nodes = [n for n in model.graph.node if n.op_type in ("MatMul", "Attention") and n.input[1] in weights
                     and not any(k in n.name for k in FP32_LAYERS)]  # fmt: skip
            _smooth(model, nodes, scorer)
            onnx.save(model, str(Path(tmp) / "smoothed.onnx"))
            partial = out.with_name(f"{out.name}.{os.getpid()}.partial")  # one per exporting process
            quantize_dynamic(
                str(Path(tmp) / "smoothed.onnx"), str(partial), weight_type=QuantType.QInt8, per_channel=True,
                nodes_to_quantize=[n.name for n in nodes],
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},  # the fused ops' outputs
            )  # fmt: skip
            partial.replace(out)  # atomic: a concurrent loader never sees half a file
    finally:
        root.setLevel(level)
    return out
