"""Evaluate models x data sets x scales under a named protocol and return per-image result rows.

Protocols (``../shared/DESIGN.md``; :data:`PROTOCOLS` spells each out and every result header repeats it):

- ``standard`` (papers' tables): HR modcropped to the scale; LR = MATLAB ``imresize(HR, 1/s, 'bicubic')``
  rounded to uint8; SR rounded to uint8; PSNR/SSIM on Y (BT.601 ``rgb2ycbcr``, unrounded) and on RGB with a
  border crop of ``s`` pixels.
- ``study`` (the study's notebook): HR = the 128x128 centre crop at ``x = W//2 - 64, y = H//2 - 64`` (sets
  whose images are the study's test size, FFHQ 128 and selfie2anime 256, are used whole); LR = the float HR
  resized to ``H/s x W/s`` with bilinear interpolation without antialiasing, not rounded; the model's input is
  that LR (SRCNN interpolates it itself); PSNR/SSIM on RGB (and Y) of the prediction clipped to [0, 255],
  not rounded, no border crop.

Model kinds: ``bicubic``/``bilinear`` are the interpolation baselines at every requested scale; any other name
or path goes through :func:`srlab.weights.loader.load_model`, and a model whose scale differs from a requested
scale skips that combination (one line says so). Models with ``descriptor.color == 'y'`` run on the Y channel
of the LR (float); their RGB output combines the SR Y with the CbCr of the LR interpolated by the protocol's
upsampler, and their Y metrics are measured on the model's own (rounded) Y output, as the papers did.

Grayscale images: the ground truth is the grey channel; an RGB model gets it replicated to three channels
(its output is read back as grey with full-range BT.601 weights, exact for R = G = B); both metric columns
are measured on the grey channel. 16-bit images are evaluated at 8 bits (``round(v / 257)``), alpha is
dropped. Unreadable images and images too small for the protocol are skipped with one line each, and the
header of the results counts what was used.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from srlab import __version__
from srlab.data.registry import Dataset, find_dataset, resolve_data_root
from srlab.errors import ConfigError, ImageError, SrlabError
from srlab.imaging.color import rgb_to_ycbcr, ycbcr_to_rgb
from srlab.imaging.resize import get_degradation, modcrop, quantize, upsample
from srlab.metrics import SSIM_WINDOW, lpips_distance, metrics_batch, require_lpips

__all__ = [
    "INTERPOLATION_MODELS",
    "PROTOCOLS",
    "EvalModel",
    "EvalResult",
    "centre_crop",
    "evaluate",
    "load_eval_model",
    "prepare_image",
]

INTERPOLATION_MODELS = ("bicubic", "bilinear")

_Y_DEF = "Y = 16 + 65.481 R + 128.553 G + 24.966 B (R, G, B in [0, 1]; MATLAB rgb2ycbcr, BT.601), not rounded"
_RGB_DEF = "R, G, B: PSNR from the MSE over all three channels, SSIM = mean of the per-channel SSIMs"
_SSIM_DEF = (
    f"Wang et al. 2004 (MATLAB ssim_index): {SSIM_WINDOW}x{SSIM_WINDOW} Gaussian window, sigma 1.5, "
    "K = (0.01, 0.03), L = 255, valid region only, float64"
)
_GREY_DEF = (
    "grayscale ground truth: measured on its own channel (both columns); RGB models get it replicated to "
    "3 channels and their output is read back with full-range BT.601 weights (exact for R = G = B)"
)
_YMODEL_DEF = (
    "models with colour 'y' run on the Y of the LR (float); Y metrics on their rounded Y output; RGB "
    "metrics on SR-Y + CbCr interpolated from the LR (the protocol's upsampler), converted and rounded"
)

PROTOCOLS: dict[str, dict[str, str]] = {
    "standard": {
        "name": "standard",
        "summary": "papers' protocol: MATLAB bicubic LR, uint8 rounding, PSNR/SSIM on Y and RGB, border crop = scale",
        "hr": "HR modcropped to a multiple of the scale (16-bit images reduced to 8 bits: round(v/257); alpha dropped)",
        "degradation": "LR = MATLAB imresize(HR, 1/s, 'bicubic') (antialiased Keys cubic a=-0.5, symmetric border)",
        "lr_rounding": "LR rounded to uint8 (clip to [0, 255], round half away from zero)",
        "sr_rounding": "SR clipped to [0, 255] and rounded to uint8 before the metrics",
        "crop": "border crop of {crop} pixels on each side before PSNR/SSIM",
        "y_channel": _Y_DEF,
        "rgb": _RGB_DEF,
        "ssim": _SSIM_DEF,
        "grayscale": _GREY_DEF,
        "y_models": _YMODEL_DEF,
    },
    "study": {
        "name": "study",
        "summary": "the study's notebook: 128x128 centre crop, bilinear LR without antialiasing, float metrics, no crop",
        "hr": "HR = centre crop at x = W//2 - {c2}, y = H//2 - {c2} of size {hr_crop} (sets at the study's size "
        "are used whole), modcropped to the scale",
        "degradation": "LR = the float HR resized to (H/s, W/s) bilinearly, align_corners=False, no antialiasing "
        "(torchvision Resize on tensors, 2022); SRCNN interpolates it back up the same way",
        "lr_rounding": "none (the LR stays a float tensor)",
        "sr_rounding": "none: prediction clipped to [0, 1], metrics on x255 floats",
        "crop": "border crop of {crop} pixels on each side before PSNR/SSIM",
        "y_channel": _Y_DEF,
        "rgb": _RGB_DEF,
        "ssim": _SSIM_DEF,
        "grayscale": _GREY_DEF,
        "y_models": _YMODEL_DEF,
    },
}


@dataclass
class EvalModel:
    """A model ready to evaluate: ``module(lr) -> sr`` on float NCHW in [0, 1]."""

    label: str
    spec: str
    module: Any
    descriptor: Any
    checkpoint: str | None = None
    sha256: str | None = None
    per_scale: bool = False  # interpolation baselines: rebuilt for every scale

    def info(self) -> dict:
        d = self.descriptor.to_dict() if hasattr(self.descriptor, "to_dict") else dict(self.descriptor)
        if self.per_scale:
            d["scale"] = "each requested scale"
        return {
            "label": self.label,
            "spec": self.spec,
            "descriptor": d,
            "checkpoint": self.checkpoint,
            "sha256": self.sha256,
        }


@dataclass
class EvalResult:
    rows: list[dict]
    header: dict
    skipped: list[dict] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _weights_file(spec: str, path: Path) -> Path | None:
    """The file a model's weights came from: the path itself, the cached zoo file or the packaged ncnn .bin."""
    if path.is_file():
        return path
    try:
        from srlab.weights import ncnn, zoo

        if spec in zoo.ZOO:
            return zoo.require(spec, verify=False)
        if spec in ncnn.PACKAGE_MODELS:
            return ncnn.package_model_files(spec)[1]
    except (ImportError, SrlabError):
        return None
    return None


def load_eval_model(spec: str, scale: int, device: str | torch.device = "cpu") -> EvalModel:
    """``bicubic``/``bilinear`` at ``scale``, else a checkpoint path or zoo name through the weights loader."""
    from srlab.models.registry import build_model

    low = spec.lower()
    if low in INTERPOLATION_MODELS:
        module, desc = build_model(low, scale=scale)
        return EvalModel(low, spec, module.to(device).eval(), desc, per_scale=True)
    try:
        from srlab.weights.loader import load_model
    except ImportError:
        raise ConfigError(
            f"cannot load model {spec!r}: srlab.weights.loader is not available in this install"
        ) from None
    module, desc = load_model(spec, device=str(device))
    path = Path(spec).expanduser()
    ckpt = sha = None
    file = _weights_file(spec, path)
    if file is not None:
        ckpt, sha = str(file.resolve()), _sha256(file)
    label = path.stem if path.suffix else spec
    if hasattr(module, "eval"):
        module = module.eval()
    return EvalModel(label, spec, module, desc, checkpoint=ckpt, sha256=sha)


# ------------------------------------------------------------------------------------------ images


def centre_crop(a: np.ndarray, size: int) -> np.ndarray:
    """The study's OpenCV centre crop: ``x = W // 2 - size // 2``, ``y = H // 2 - size // 2`` (HWC array)."""
    h, w = a.shape[:2]
    x, y = w // 2 - size // 2, h // 2 - size // 2
    return a[y : y + size, x : x + size]


def _read_hr(path: Path) -> tuple[np.ndarray, list[str]]:
    """uint8 HxWxC (C = 1 or 3) ground truth and notes on conversions. Raises ImageError."""
    from srlab.imaging.io import read_image

    img = read_image(path)
    notes = []
    px = img.pixels
    if px.ndim == 2:
        px = px[..., None]
    if px.dtype == np.uint16 or img.bit_depth == 16:
        px = np.round(px.astype(np.float64) / 257.0).astype(np.uint8)
        notes.append("16-bit image evaluated at 8 bits (round(v/257))")
    elif px.dtype != np.uint8:
        raise ImageError(f"{path}: unsupported pixel type {px.dtype}; convert it to 8-bit PNG")
    if img.alpha is not None:
        notes.append("alpha channel ignored")
    if px.shape[2] not in (1, 3):
        raise ImageError(f"{path}: {px.shape[2]} channels; expected gray or RGB")
    return np.ascontiguousarray(px), notes


def prepare_image(
    hr: np.ndarray, scale: int, protocol: str, *, hr_crop: int | None, crop: int
) -> tuple[np.ndarray | None, str | None]:
    """The protocol's ground truth (uint8 HWC) or ``(None, reason)`` when the image is too small."""
    h, w = hr.shape[:2]
    if protocol == "study" and hr_crop:
        if h < hr_crop or w < hr_crop:
            return None, f"{w}x{h} is smaller than the {hr_crop}x{hr_crop} centre crop"
        hr = centre_crop(hr, hr_crop)
    hr = modcrop(hr, scale)
    hh, ww = hr.shape[:2]
    need = 2 * crop + SSIM_WINDOW
    if hh < max(need, scale) or ww < max(need, scale):
        return None, (
            f"{w}x{h} is too small for x{scale} with a {crop}-pixel border crop "
            f"(needs at least {max(need, scale)}x{max(need, scale)} after modcrop)"
        )
    return hr, None


@contextlib.contextmanager
def _threads(n: int | None):
    """Temporarily use ``n`` CPU threads (None: leave as is)."""
    old = torch.get_num_threads()
    if not n or n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _run_model(
    m: EvalModel,
    lr: torch.Tensor,
    scale: int,
    interp: str,
    device: torch.device,
    threads: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None, float]:
    """Run the model on LR (1, C, h, w) float64 on 0-255. Returns (SR RGB-or-grey on 0-255, SR-Y or None, s)."""
    desc = m.descriptor
    color = getattr(desc, "color", "rgb")
    c = lr.shape[1]
    sr_y = None
    if color == "y":
        if c == 3:
            ycc = rgb_to_ycbcr(lr)
            x = ycc[:, :1]
        else:
            x = lr
    else:
        x = lr.expand(-1, 3, -1, -1) if c == 1 else lr
        want = int(getattr(desc, "in_channels", 3))
        if want != x.shape[1]:
            raise ConfigError(f"model {m.label} takes {want} input channels; expected 3 (RGB) or colour 'y'")
    # Interpolation baselines run in float64 (MATLAB's double: identical on CPU and GPU); networks in float32.
    dtype = torch.float64 if m.per_scale else torch.float32
    inp = (x / 255.0).to(device=device, dtype=dtype).contiguous()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    with torch.inference_mode(), _threads(threads):
        out = upsample(inp, scale, m.module.method) if m.per_scale else m.module(inp)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    runtime = time.perf_counter() - t0
    out = out.to(torch.float64) * 255.0
    exp = (lr.shape[-2] * scale, lr.shape[-1] * scale)
    if tuple(out.shape[-2:]) != exp:
        raise ConfigError(
            f"model {m.label} returned {tuple(out.shape[-2:])} for a {tuple(lr.shape[-2:])} input at x{scale}"
        )
    if color == "y":
        sr_y = out[:, :1]
        if c == 3:
            cbcr = upsample(ycc[:, 1:], scale, interp)
            out = ycbcr_to_rgb(torch.cat([sr_y, cbcr], dim=1))
        else:
            out = sr_y
    return out, sr_y, runtime


def _save(path: Path, sr_u8: torch.Tensor) -> None:
    from srlab.imaging.io import write_image

    a = sr_u8[0].permute(1, 2, 0).to("cpu", torch.uint8).numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, a, overwrite=True)


def _resolve_device(device: str | torch.device | None) -> torch.device:
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: CUDA is not available here; use --device cpu")
    return dev


def evaluate(
    models: Sequence[str | EvalModel | tuple],
    datasets: Sequence[str],
    scales: Sequence[int],
    *,
    protocol: str = "standard",
    data_root: str | Path | None = None,
    set_paths: dict | None = None,
    device: str | torch.device | None = "cpu",
    crop: int | None = None,
    hr_crop: int | None = None,
    save_dir: str | Path | None = None,
    progress: bool | None = None,
    channels: Sequence[str] = ("y", "rgb"),
    lpips: bool = False,
    log: Callable[[str], None] = print,
) -> EvalResult:
    """Evaluate every model on every data set at every scale. Returns rows + a header describing the run.

    ``models``: names/paths (``bicubic``, ``bilinear``, zoo names, checkpoints), :class:`EvalModel` objects
    or ``(label, module)`` pairs of in-memory srlab models (e.g. during training).

    ``crop``: border crop (default: the scale for ``standard``, 0 for ``study``). ``hr_crop``: the study's
    centre crop size (default 128, or the whole image for sets stored at the study's size; 0 disables it).
    ``channels``: the metric channels (``("y",)`` alone is about 4x faster). ``lpips``: add an ``lpips``
    column (RGB, same border crop) -- needs the optional ``lpips`` package and its weights.
    ``save_dir``: write each SR image (uint8 PNG) to ``save_dir/<model>/<dataset>/x<s>/<name>.png``.
    """

    channels = tuple(channels)
    if not channels or any(ch not in ("y", "rgb") for ch in channels):
        raise ConfigError(f"channels must be 'y' and/or 'rgb', got {channels}")
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; use {' or '.join(PROTOCOLS)}")
    scales = [int(s) for s in scales]
    if not scales or any(s < 1 for s in scales):
        raise ConfigError(f"scales must be positive integers, got {scales}")
    if not models:
        raise ConfigError("no model given; e.g. --models bicubic")
    if not datasets:
        raise ConfigError("no data set given; e.g. --datasets Set5,Set14")
    if lpips:
        require_lpips()
    dev = _resolve_device(device)
    deg = get_degradation("bicubic" if protocol == "standard" else "study")
    root = resolve_data_root(data_root)
    found: list[Dataset] = [find_dataset(d, root, set_paths=set_paths) for d in datasets]
    messages: list[str] = []

    def say(msg: str) -> None:
        messages.append(msg)
        log(msg)

    # Models: interpolation baselines per scale, checkpoints once.
    loaded: dict[int, EvalModel] = {}
    keys: list[str] = []  # "interp:<name>" or "model:<index>"
    for i, spec in enumerate(models):
        if isinstance(spec, str) and spec.lower() in INTERPOLATION_MODELS:
            keys.append(f"interp:{spec.lower()}")
            continue
        keys.append(f"model:{i}")
        if isinstance(spec, EvalModel):
            loaded[i] = spec
        elif isinstance(spec, tuple):  # (label, module): an in-memory srlab model
            from srlab.models.registry import describe

            label, module = spec
            loaded[i] = EvalModel(
                str(label), str(label), module.to(dev).eval(), describe(module, name=str(label))
            )
        else:
            loaded[i] = load_eval_model(str(spec), scales[0], dev)
    labels = [k.split(":", 1)[1] if k.startswith("interp:") else loaded[int(k[6:])].label for k in keys]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"two models would share a label in {labels}; rename a checkpoint file")

    # Pre/post-processing (resizes, rounding, metrics) is small and memory-bound: one CPU thread is as fast on
    # an idle machine and 10x faster on a busy one (OpenMP barrier waits). Networks get all the threads.
    all_threads = torch.get_num_threads()
    with _threads(1 if dev.type == "cpu" else None):
        opts = _Opts(
            protocol=protocol,
            deg=deg,
            dev=dev,
            crop=crop,
            hr_crop=hr_crop,
            channels=channels,
            save_dir=save_dir,
            progress=progress,
            say=say,
            net_threads=all_threads if dev.type == "cpu" else None,
            lpips=lpips,
        )
        rows, skipped, ds_info, model_info = _evaluate_loop(found, keys, labels, loaded, scales, opts)
    return _finish(rows, skipped, ds_info, model_info, labels, scales, opts, root, messages)


@dataclass
class _Opts:
    protocol: str
    deg: Any
    dev: torch.device
    crop: int | None
    hr_crop: int | None
    channels: tuple[str, ...]
    save_dir: str | Path | None
    progress: bool | None
    say: Callable[[str], None]
    net_threads: int | None
    lpips: bool


def _evaluate_loop(found, keys, labels, loaded, scales, o: _Opts):
    from tqdm import tqdm

    rows: list[dict] = []
    skipped: list[dict] = []
    ds_info: list[dict] = []
    model_info: dict[str, dict] = {}
    for ds in found:
        spec_crop = ds.spec.study_crop if ds.spec else 128
        size = (spec_crop if o.hr_crop is None else (o.hr_crop or None)) if o.protocol == "study" else None
        info = {
            "name": ds.name,
            "path": str(ds.hr_dir.resolve()),
            "expected": ds.expected,
            "found": len(ds.files),
            "used": {},
            "skipped": [],
            "hr_crop": size,
        }
        ds_info.append(info)
        if not ds.complete:
            o.say(f"note: {ds.name} has {len(ds.files)} of {ds.expected} images in {ds.hr_dir}")
        cache: dict[Path, tuple[np.ndarray, list[str]] | str] = {}
        for s in scales:
            bcrop = (s if o.protocol == "standard" else 0) if o.crop is None else int(o.crop)
            active: list[tuple[str, EvalModel]] = []
            for key, label in zip(keys, labels):
                if key.startswith("interp:"):
                    m = load_eval_model(label, s, o.dev)
                else:
                    m = loaded[int(key[6:])]
                    ms = int(getattr(m.descriptor, "scale", s))
                    if ms != s:
                        o.say(f"skip: model {label} is x{ms}; not evaluated at x{s}")
                        continue
                model_info.setdefault(label, m.info())
                active.append((label, m))
            if not active:
                continue
            used = 0
            bar = tqdm(
                ds.files,
                desc=f"{ds.name} x{s}",
                unit="img",
                disable=None if o.progress is None else not o.progress,
                leave=False,
            )
            for path in bar:
                name = path.stem
                if path not in cache:
                    try:
                        cache[path] = _read_hr(path)
                    except ImageError as exc:
                        cache[path] = str(exc)
                    else:
                        for n in cache[path][1]:
                            o.say(f"note: {ds.name}/{path.name}: {n}")
                entry = cache[path]
                if isinstance(entry, str):
                    if s == scales[0]:
                        o.say(f"skip: {ds.name}/{path.name}: {entry}")
                        rec = {"image": path.name, "reason": entry}
                        info["skipped"].append(rec)
                        skipped.append({"dataset": ds.name, **rec})
                    continue
                hr_np, reason = prepare_image(entry[0], s, o.protocol, hr_crop=size, crop=bcrop)
                if hr_np is None:
                    o.say(f"skip: {ds.name}/{path.name} at x{s}: {reason}")
                    rec = {"image": path.name, "scale": s, "reason": reason}
                    info["skipped"].append(rec)
                    skipped.append({"dataset": ds.name, **rec})
                    continue
                hr = (
                    torch.from_numpy(hr_np)
                    .permute(2, 0, 1)
                    .unsqueeze(0)
                    .to(o.dev, torch.float64)
                    .contiguous()
                )
                if o.protocol == "standard":
                    lr = quantize(o.deg(hr, s))
                else:  # the study resized float32 [0, 1] tensors
                    lr = o.deg((hr / 255.0).float(), s).double() * 255.0
                for label, m in active:
                    threads = None if m.per_scale else o.net_threads
                    if used == 0 and not m.per_scale:  # warm-up (allocations, cuDNN autotuning): not timed
                        _run_model(m, lr, s, o.deg.interpolation, o.dev, threads)
                    sr, sr_y, runtime = _run_model(m, lr, s, o.deg.interpolation, o.dev, threads)
                    if o.protocol == "standard":
                        sr = quantize(sr)
                        sr_y = quantize(sr_y) if sr_y is not None else None
                    else:
                        sr = sr.clamp(0, 255)
                        sr_y = sr_y.clamp(0, 255) if sr_y is not None else None
                    res = metrics_batch(sr, hr, crop=bcrop, channels=o.channels)
                    if sr_y is not None and hr.shape[1] == 3 and "y" in o.channels:
                        ry = metrics_batch(sr_y, rgb_to_ycbcr(hr)[:, :1], crop=bcrop, channels=("y",))
                        res.update(ry)
                    row = {"model": label, "dataset": ds.name, "scale": s, "image": name}
                    row.update(
                        {
                            k: float(res[k][0])
                            for k in ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb")
                            if k in res
                        }
                    )
                    if o.lpips:
                        c = bcrop
                        hh, ww = hr.shape[-2:]
                        row["lpips"] = float(
                            lpips_distance(
                                sr[..., c : hh - c, c : ww - c], hr[..., c : hh - c, c : ww - c], device=o.dev
                            )
                        )
                    row.update(runtime_s=runtime, h=int(hr.shape[-2]), w=int(hr.shape[-1]))
                    rows.append(row)
                    if o.save_dir is not None:
                        img = sr if o.protocol == "standard" else quantize(sr)
                        _save(Path(o.save_dir) / label / ds.name / f"x{s}" / f"{name}.png", img)
                used += 1
            bar.close()
            info["used"][str(s)] = used
            o.say(f"{ds.name} x{s}: {used} of {len(ds.files)} images evaluated")

    return rows, skipped, ds_info, model_info


def _finish(rows, skipped, ds_info, model_info, labels, scales, o: _Opts, root, messages):
    protocol, crop, hr_crop, channels, dev = o.protocol, o.crop, o.hr_crop, o.channels, o.dev
    proto = dict(PROTOCOLS[protocol])
    crop_txt = (
        "s (the scale)" if crop is None and protocol == "standard" else str(0 if crop is None else crop)
    )
    proto["crop"] = proto["crop"].format(crop=crop_txt)
    if protocol == "study":
        hc = 128 if hr_crop is None else hr_crop
        if hc:
            proto["hr"] = proto["hr"].format(c2=hc // 2, hr_crop=f"{hc}x{hc}")
        else:
            proto["hr"] = "HR = the whole image (--hr-crop 0: no centre crop), modcropped to the scale"
    header = {
        "protocol": proto,
        "scales": scales,
        "channels": list(channels),
        "lpips": "LPIPS (lpips package, AlexNet), RGB in [-1, 1], same border crop" if o.lpips else None,
        "data_root": str(Path(root).resolve()),
        "datasets": ds_info,
        "models": [model_info[lb] for lb in labels if lb in model_info],
        "device": _device_name(dev),
        "srlab_version": __version__,
        "torch_version": torch.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    return EvalResult(rows, header, skipped, messages)


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    import platform

    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
