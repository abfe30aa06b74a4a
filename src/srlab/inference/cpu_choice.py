"""Which backend and precision run a model on the CPU when srlab chooses (``backend``/``precision`` auto).

The rule (README "Speed" has the measurements behind it):

- precision ``auto`` on the CPU runs reduced precision only for weights whose recorded check
  (:data:`QUALITY_FILE`, written by ``benchmarks/precision_check.py`` with
  :func:`srlab.inference.quality.quality_check`) shows the
  8-bit output within :data:`THRESHOLD_DB` of fp32 on every check image, and only where the CPU does that
  precision in hardware: int8 with integer dot products (VNNI / AMX-INT8), else bf16 with native bf16
  (AVX512-BF16 / AMX-BF16), both through OpenVINO. Emulated bf16 or int8 is slower than fp32, and weights
  without a record (a user's own, random ones) stay fp32: quantization error depends on the weights.
- fp32 runs on OpenVINO for the families whose registry hints say an exported graph beats PyTorch on a
  CPU (SRCNN, SRVGG, RRDBNet) (its CPU kernels are faster than ONNX Runtime's
  on the inputs the tiler makes; ONNX Runtime's lower per-call overhead only wins on tiny SRCNN inputs that
  take a fraction of a second either way), on ONNX Runtime where OpenVINO is not installed, and on PyTorch
  for every other architecture (no export path) and where neither is installed.
- evaluation never comes here: :mod:`srlab.eval` runs the module itself in fp32.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Any

from torch import nn

from srlab import runtime
from srlab.errors import ConfigError
from srlab.export import onnxruntime_available, weights_digest
from srlab.inference import openvino_backend
from srlab.models.registry import hints_for
from srlab.serialize import loads

__all__ = [
    "QUALITY_FILE",
    "THRESHOLD_DB",
    "approved",
    "choose",
    "quality_table",
]

QUALITY_FILE = Path(__file__).with_name("reduced_precision.json")
# 8-bit PSNR of the reduced-precision output against the fp32 output, worst image of the check. 50 dB is
# srlab's bar for fp16/bf16 on GPUs (tests/test_precision.py): a mean squared error of 0.65 grey levels^2,
# i.e. most pixels identical and the rest one level off -- invisible, and within what two fp32 libraries
# differ by after rounding on GAN outputs' saturated edges.
THRESHOLD_DB = 50.0


@functools.lru_cache(maxsize=1)
def quality_table() -> dict[str, Any]:
    """The recorded checks: ``{"models": {weights digest: {"name", "bf16": {...}, "int8": {...}}}, ...}``."""
    try:
        return loads(QUALITY_FILE.read_text())
    except (OSError, ValueError):
        return {"models": {}}


def approved(digest: str, precision: str, table: dict | None = None) -> bool:
    """The recorded check of these weights keeps ``precision`` within :data:`THRESHOLD_DB` of fp32."""
    rec = (table or quality_table()).get("models", {}).get(digest, {}).get(precision)
    return bool(rec) and float(rec.get("worst_db", 0)) >= THRESHOLD_DB


def _available(backend: str) -> bool:
    if backend == "openvino":
        return openvino_backend.openvino_available()
    return onnxruntime_available()


def _fp32_backend() -> str:
    return next((b for b in ("openvino", "onnxruntime") if _available(b)), "torch")


def _auto_precision(module: nn.Module) -> str:
    """int8 / bf16 where the CPU has it, OpenVINO is installed and the weights' check allows it; else fp32."""
    flags = runtime.cpu_flags()
    if flags is None or not _available("openvino"):
        return "fp32"
    want = [
        p for p, ok in (("int8", runtime.cpu_int8_dot(flags)), ("bf16", runtime.cpu_native_bf16(flags))) if ok
    ]
    if not want or not quality_table().get("models"):
        return "fp32"
    digest = weights_digest(module)
    return next((p for p in want if approved(digest, p)), "fp32")


def choose(module: nn.Module, device: Any, precision: str, backend: str) -> tuple[str, str] | None:
    """(backend, precision) for a run the CPU backends handle, or None: PyTorch decides as usual
    (:func:`srlab.runtime.resolve_precision`). ``backend``/``precision`` are the user's (validated names)."""
    p = str(precision or "auto").strip().lower()
    arch = getattr(module, "arch", None)
    if backend == "torch":
        if p == "int8":
            raise ConfigError("int8 runs with OpenVINO on the CPU; use --backend openvino or auto")
        return None
    dev = runtime.resolve_device("cpu" if backend != "auto" and str(device) == "auto" else device)
    if dev.type != "cpu":
        if backend != "auto":
            raise ConfigError(f"the {backend} backend runs on the CPU; use --device cpu")
        if p == "int8":
            raise ConfigError("int8 runs on the CPU (OpenVINO); use --device cpu")
        return None
    if backend == "onnxruntime":
        if p in ("bf16", "int8", "fp16"):
            raise ConfigError(f"the onnxruntime backend runs fp32 only; use --backend openvino for {p}")
        return "onnxruntime", "fp32"
    if backend == "openvino":
        if p == "auto":
            return "openvino", _auto_precision(module)
        if p == "fp16":
            warnings.warn("OpenVINO on the CPU runs fp32, bf16 or int8, not fp16; running fp32", stacklevel=4)
            return "openvino", "fp32"
        if p == "bf16" and not runtime.cpu_native_bf16():
            warnings.warn(
                "this CPU has no native bf16: OpenVINO would run fp32 anyway; running fp32", stacklevel=4
            )
            return "openvino", "fp32"
        return "openvino", p
    # auto
    if not hints_for(arch).ort_faster_on_cpu:  # no exported graph beats PyTorch for this family
        if p == "int8":
            raise ConfigError(
                f"int8 runs exported graphs (SRCNN, SRVGG, RRDBNet); {arch} runs on PyTorch only"
            )
        return None
    if p == "int8":
        if not _available("openvino"):
            raise ConfigError('int8 on the CPU needs OpenVINO: pip install "srlab[openvino]"')
        return "openvino", "int8"
    if p == "bf16":
        if runtime.cpu_native_bf16() and _available("openvino"):
            return "openvino", "bf16"
        return None  # PyTorch's bf16 autocast, as before OpenVINO
    if p == "auto":
        q = _auto_precision(module)
        if q != "fp32":
            return "openvino", q
    elif p != "fp32":
        return None  # fp16: PyTorch's choice (fp32 on the CPU with a warning)
    b = _fp32_backend()
    return None if b == "torch" else (b, "fp32")
