"""OpenVINO on the CPU: models in fp32, bf16 or int8 behind the usual ``model(lr) -> sr`` interface.

- :class:`OpenVinoModel`: a model compiled by OpenVINO's CPU plugin (float NCHW in [0, 1] in and out).
  SRCNN's built-in interpolation runs before the graph, as in :class:`srlab.export.OnnxModel`.
- :func:`cached_openvino`: the model read from srlab's cached ONNX export
  (:func:`srlab.export.cached_onnx_path`), for int8 quantized after training (NNCF, on the built-in
  calibration images of :func:`calibration_images`), kept in the cache (``<cache root>/openvino``) as one
  file per (weights, shape policy, weight precision, OpenVINO version, entry format), written atomically
  (:func:`srlab.atomic.write_bytes`). An entry that does not load is deleted and rebuilt, once, with a
  warning. bf16 is no entry of its own: it is how the plugin compiles the fp32 graph
  (``INFERENCE_PRECISION_HINT``); the plugin's compiled blobs are cached by OpenVINO (``CACHE_DIR``, keyed
  by the graph and the compile options) under the same folder.
- ``notify``: called with one line before a one-off conversion/quantization and with its time after.

openvino (and nncf for int8) are optional (``pip install "srlab[openvino]"``), imported here lazily.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from srlab.atomic import scratch_dir, write_bytes
from srlab.errors import SrlabError
from srlab.export import _graph_module, cached_onnx_path, weights_digest
from srlab.imaging.resize import upsample
from srlab.models.registry import ModelDescriptor, describe
from srlab.runtime import cache_dir
from srlab.serialize import dumps, loads

__all__ = [
    "OV_PRECISIONS",
    "OpenVinoCacheError",
    "OpenVinoModel",
    "cached_openvino",
    "calibration_images",
    "openvino_available",
]

OV_PRECISIONS = ("fp32", "bf16", "int8")
_MAGIC = b"SRLABOV1"
# Bump when the entry layout, the calibration images or the quantization settings change: old entries are
# then simply not found (and rebuilt) rather than reused.
_FORMAT = 1
_SHAPES = "dynamic-hw"  # one graph for every tile size (batch, height and width are dynamic)
_HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}  # int8 layers run int8; the rest stays fp32


def openvino_available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def _ov():
    try:
        import openvino
    except ImportError:
        raise SrlabError('the openvino backend needs: pip install "srlab[openvino]"') from None
    return openvino


class OpenVinoCacheError(SrlabError):
    """A cache entry that cannot be read back (truncated, damaged, not an srlab entry)."""


# ------------------------------------------------------------------------------------------ calibration


def calibration_images(channels: int, n: int = 8, size: int = 64, seed: int = 0) -> list[np.ndarray]:
    """``n`` deterministic (1, channels, size, size) float32 images in [0, 1] for int8 calibration.

    Photo-like statistics without shipping photos: smooth shading (a coarse random field, bicubic
    upsampled), a few hard-edged shapes, fine texture and noise. Quantization ranges come from the
    activations these produce, so they need the value ranges and edge strengths of real images, not their
    content."""
    g = torch.Generator().manual_seed(seed)
    out = []
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    for _ in range(n):
        coarse = torch.rand(1, channels, 4, 4, generator=g)
        img = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
        for _ in range(3):  # rectangles and discs with sharp edges
            c = torch.rand(channels, 1, 1, generator=g)
            cx, cy, r = (torch.rand(3, generator=g) * torch.tensor([size, size, size / 3])).tolist()
            if torch.rand(1, generator=g).item() < 0.5:
                mask = ((xx - cx).abs() < r) & ((yy - cy).abs() < r * 0.6)
            else:
                mask = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
            img[0] = torch.where(mask, c, img[0])
        freq = 0.3 + 1.2 * torch.rand(1, generator=g).item()
        img = img + 0.08 * torch.sin(xx * freq + yy * freq * 0.7)[None, None]
        img = img + 0.02 * torch.randn(img.shape, generator=g)
        out.append(img.clamp(0, 1).float().numpy())
    return out


# ---------------------------------------------------------------------------------------------- model


class OpenVinoModel(nn.Module):
    """A compiled OpenVINO model behaving like an srlab model (float NCHW in [0, 1] in and out)."""

    def __init__(
        self,
        ov_model: Any,
        descriptor: ModelDescriptor,
        *,
        precision: str = "fp32",
        pre_interpolation: str | None = None,
        threads: int | None = None,
    ) -> None:
        super().__init__()
        ov = _ov()
        if precision not in OV_PRECISIONS:
            raise SrlabError(
                f"unknown OpenVINO precision {precision!r}; use one of {', '.join(OV_PRECISIONS)}"
            )
        self.descriptor, self.precision, self.pre_interpolation = descriptor, precision, pre_interpolation
        d = descriptor
        self.arch, self.scale, self.hparams = d.arch, d.scale, d.hparams
        self.in_channels, self.out_channels, self.color = d.in_channels, d.out_channels, d.color
        self.size_multiple, self.receptive_radius = d.size_multiple, d.receptive_radius
        self.supports_fp16 = self.supports_bf16 = False
        core = ov.Core()
        blobs = cache_dir("openvino") / "compiled"
        try:
            blobs.mkdir(parents=True, exist_ok=True)
            core.set_property({"CACHE_DIR": str(blobs)})
        except OSError:
            pass  # no compiled-blob cache: each process compiles (a few seconds at most)
        config = {
            "INFERENCE_NUM_THREADS": int(threads or torch.get_num_threads()),
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": _HINTS[precision],
            # the cores are shared with the caller's own threads (PyTorch's pool, the tiler)
            "ENABLE_CPU_PINNING": False,
        }
        self.compiled = core.compile_model(ov_model, "CPU", config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre_interpolation:
            x = upsample(x.float(), self.scale, self.pre_interpolation)
        arr = x.detach().float().cpu().contiguous().numpy()
        out = self.compiled(arr)[0]  # a copy: the request's own buffer is reused by the next call
        return torch.from_numpy(out).to(x.device)


# ---------------------------------------------------------------------------------------------- cache


def _entry_key(model: nn.Module, weight_precision: str) -> str:
    ov = _ov()
    text = (
        f"{weights_digest(model)} {weight_precision} {_SHAPES} openvino {ov.get_version()} format {_FORMAT}"
    )
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def entry_path(model: nn.Module, precision: str) -> Path:
    """The cache file ``model`` in ``precision`` is read from (bf16 shares the fp32 entry)."""
    wp = "int8" if precision == "int8" else "fp32"
    return cache_dir("openvino") / f"{getattr(model, 'arch', 'model')}-{wp}-{_entry_key(model, wp)}.ovir"


def write_entry(path: Path, ov_model: Any, meta: dict) -> None:
    """One file: magic, header length, JSON header (meta, part lengths, weights digest), IR xml, IR weights."""
    ov = _ov()
    with scratch_dir(prefix="srlab-ir-") as tmp:  # OpenVINO writes the IR as two files
        ov.save_model(ov_model, os.path.join(tmp, "m.xml"), compress_to_fp16=False)
        xml = Path(tmp, "m.xml").read_bytes()
        weights = Path(tmp, "m.bin").read_bytes()
    header = dict(meta, xml=len(xml), bin=len(weights), sha256=hashlib.sha256(weights).hexdigest())
    head = dumps(header, indent=None).encode()
    write_bytes(path, _MAGIC + len(head).to_bytes(8, "little") + head + xml + weights)


def read_entry(path: Path) -> tuple[Any, dict]:
    """(OpenVINO model, meta) of a cache entry; :class:`OpenVinoCacheError` when it is not a whole one."""
    ov = _ov()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise OpenVinoCacheError(f"{path}: cannot be read ({exc.strerror})") from None
    if data[:8] != _MAGIC or len(data) < 16:
        raise OpenVinoCacheError(f"{path}: not an srlab OpenVINO cache entry")
    n = int.from_bytes(data[8:16], "little")
    try:
        meta = loads(data[16 : 16 + n])
        xml_end = 16 + n + int(meta["xml"])
        end = xml_end + int(meta["bin"])
    except (ValueError, KeyError, TypeError):
        raise OpenVinoCacheError(f"{path}: damaged header") from None
    if end != len(data):
        raise OpenVinoCacheError(f"{path}: truncated ({len(data)} of {end} bytes)")
    weights = data[xml_end:end]
    if hashlib.sha256(weights).hexdigest() != meta.get("sha256"):
        raise OpenVinoCacheError(f"{path}: weights damaged (checksum differs)")
    try:
        ov_model = ov.Core().read_model(data[16 + n : xml_end], ov.Tensor(np.frombuffer(weights, np.uint8)))
    except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError subclasses of its own
        raise OpenVinoCacheError(
            f"{path}: OpenVINO cannot read it ({str(exc).splitlines()[0][:120]})"
        ) from None
    return ov_model, meta


def _build(model: nn.Module, precision: str, notify: Callable[[str], None] | None) -> tuple[Any, dict]:
    """Convert (and for int8 quantize) ``model``: the OpenVINO model and its entry's meta."""
    ov = _ov()
    d = describe(model)
    _, pre = _graph_module(model)
    t0 = time.perf_counter()
    if notify:
        what = "quantizing to int8 (once; cached)" if precision == "int8" else "converting (once; cached)"
        notify(f"OpenVINO: {what} {d.name} ...")
    ov_model = ov.Core().read_model(str(cached_onnx_path(model.eval())))
    if precision == "int8":
        ov_model = _quantize(ov_model, d, pre)
    if notify:
        notify(f"OpenVINO: {d.name} ready in {time.perf_counter() - t0:.1f} s")
    return ov_model, {"descriptor": d.to_dict(), "pre_interpolation": pre, "precision": precision}


def _quantize(ov_model: Any, d: ModelDescriptor, pre: str | None) -> Any:
    try:
        import nncf
    except ImportError:
        raise SrlabError('int8 needs NNCF: pip install "srlab[openvino]"') from None
    images = calibration_images(d.in_channels)
    if pre:
        images = [upsample(torch.from_numpy(a), d.scale, pre).numpy() for a in images]
    # NNCF draws its own progress bars on stdout, which is the user's (an output may go there): the
    # quantization is announced on stderr instead (``notify``)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        return nncf.quantize(
            ov_model,
            nncf.Dataset(images),
            subset_size=len(images),
            preset=nncf.QuantizationPreset.MIXED,  # asymmetric activations: LeakyReLU outputs are lopsided
            target_device=nncf.TargetDevice.CPU,
        )


def cached_openvino(
    model: nn.Module,
    precision: str = "fp32",
    *,
    threads: int | None = None,
    notify: Callable[[str], None] | None = None,
) -> OpenVinoModel:
    """``model`` compiled by OpenVINO in ``precision`` (``fp32``, ``bf16`` or ``int8``), converted once into
    the cache. A cache entry that does not load is deleted and rebuilt, once, with a warning."""
    if precision not in OV_PRECISIONS:
        raise SrlabError(f"unknown OpenVINO precision {precision!r}; use one of {', '.join(OV_PRECISIONS)}")
    path = entry_path(model, precision)
    ov_model = meta = None
    if path.exists():
        try:
            ov_model, meta = read_entry(path)
        except OpenVinoCacheError as exc:
            path.unlink(missing_ok=True)
            warnings.warn(f"{exc}; srlab deleted the cached OpenVINO model and builds it again", stacklevel=2)
    if ov_model is None:
        built, meta = _build(model, precision, notify)
        write_entry(path, built, meta)
        ov_model, meta = read_entry(path)  # what later runs will read: a bad write shows now
    return OpenVinoModel(
        ov_model,
        ModelDescriptor(**meta["descriptor"]),
        precision=precision,
        pre_interpolation=meta.get("pre_interpolation"),
        threads=threads,
    )
