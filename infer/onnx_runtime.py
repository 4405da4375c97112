"""ONNX Runtime for the tagger's encoder: the same weights, exported once, run with fused CPU kernels.

On 2 CPU cores ONNX Runtime's fused attention / layer-norm / GELU kernels run the small encoder faster
than eager PyTorch (bench/README.md has the measured ratio); int8 uses ONNX Runtime's dynamic
quantisation of the exported graph. Exports are cached by model version under
`$GOVFACTS_CACHE` (default `~/.cache/govfacts`) and written atomically, so worker processes share them.
"""
from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Optional

import numpy as np

from govfacts.paths import cache_root

INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def cache_dir() -> Path:
    return cache_root() / "onnx"


def export(model, path: Path) -> Path:
    """Export a token-classification model (fp32, eval mode) with dynamic batch and length axes."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    ids = torch.full((2, 16), 5, dtype=torch.long)
    args = (ids, torch.ones_like(ids), torch.zeros_like(ids))
    axes = {k: {0: "batch", 1: "length"} for k in (*INPUTS, "logits")}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), args, str(tmp), input_names=list(INPUTS), output_names=["logits"],
                          dynamic_axes=axes, opset_version=17, dynamo=False)
    os.replace(tmp, path)
    return path


def quantize(src: Path, dst: Path) -> Path:
    """Dynamic int8 quantisation of the exported graph's MatMul weights (ONNX Runtime's quantizer)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs advice about pre-processing image models
    try:
        quantize_dynamic(str(src), str(tmp), weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    os.replace(tmp, dst)
    return dst


def model_file(key: str, int8: bool, float_model, directory: Optional[Path] = None) -> Path:
    """The cached ONNX graph of the model named `key` (float or int8), made on first use: exported from
    `float_model()` (a callable, so torch is loaded only when no export is cached yet)."""
    d = directory or cache_dir()
    stem = f"tagger-{key or 'unversioned'}"
    fp32 = d / f"{stem}.onnx"
    path = d / f"{stem}-int8.onnx" if int8 else fp32
    if path.exists():
        return path
    if not fp32.exists():
        export(float_model(), fp32)
    return quantize(fp32, path) if int8 else fp32


class OnnxRunner:
    """Callable (input_ids, attention_mask, token_type_ids) numpy int64 → logits numpy float32."""

    def __init__(self, path: Path, int8: bool, num_threads: Optional[int] = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if num_threads:
            opts.intra_op_num_threads = int(num_threads)
        opts.inter_op_num_threads = 1
        opts.enable_mem_pattern = False  # window batches vary in shape
        # no busy-waiting between runs: decoding and reading share the same cores (measured 1.4x faster)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.path = path
        self.int8 = int8

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray) -> np.ndarray:
        return self.session.run(["logits"], {"input_ids": input_ids, "attention_mask": attention_mask,
                                             "token_type_ids": token_type_ids})[0]
