"""Evaluate models x data sets x scales under a named protocol and return per-image result rows.

The protocols (``standard``: the papers' tables; ``study``: the study's notebook) are defined once in
:mod:`srlab.eval.protocols`; every result header repeats the chosen one line by line.

Models (:mod:`srlab.eval.models`): ``bicubic``/``bilinear`` are the interpolation baselines at every
requested scale; any other name or path goes through :func:`srlab.weights.loader.load_model`, and a model
whose scale differs from a requested scale skips that combination (one line says so). Models with
``descriptor.color == 'y'`` run on the Y channel of the LR (float); their RGB output combines the SR Y with
the CbCr of the LR interpolated by the protocol's upsampler, and their Y metrics are measured on the model's
own (rounded) Y output, as the papers did.

Grayscale images: the ground truth is the grey channel; an RGB model gets it replicated to three channels
(its output is read back as grey with full-range BT.601 weights, exact for R = G = B); both metric columns
are measured on the grey channel. Unreadable images and images too small for the protocol are skipped with
one line each, and the header of the results counts what was used: per data set and scale, ``used`` and
``complete`` (every image found, and for a known set at least its catalogued count, was evaluated).
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from srlab import __version__
from srlab.atomic import remove_stale_temps
from srlab.data.find import Dataset, find_dataset, resolve_data_root
from srlab.errors import ConfigError, ImageError, WeightsError
from srlab.eval.metrics import metrics_batch
from srlab.eval.models import INTERPOLATION_MODELS, EvalModel, load_eval_model, wrap_module
from srlab.eval.perceptual import PERCEPTUAL, load, parse_metrics, score
from srlab.eval.protocols import Protocol, get_protocol, hr_tensor, model_input, read_hr, y_reference
from srlab.eval.results import mark_complete
from srlab.eval.shard import Shard
from srlab.imaging.color import rgb_to_ycbcr, ycbcr_to_rgb
from srlab.imaging.io import write_image
from srlab.imaging.resize import quantize, upsample
from srlab.runtime import full_fp32, one_thread, resolve_device, synchronize, threads

__all__ = ["EvalResult", "device_name", "evaluate", "prepare_perceptual", "save_sr", "score_pair"]


@dataclass
class EvalResult:
    rows: list[dict]
    header: dict
    skipped: list[dict] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    # (image path, scale) -> {"hr": uint8 HWC, "lr": float64 HWC 0-255, "sr": {model: float64 HWC as scored}}
    kept: dict[tuple[str, int], dict] = field(default_factory=dict)


def _run_model(
    m: EvalModel,
    lr: torch.Tensor,
    scale: int,
    interp: str,
    device: torch.device,
    n_threads: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None, float]:
    """Run the model on LR (1, C, h, w) float64 on 0-255. Returns (SR RGB-or-grey on 0-255, SR-Y or None, s)."""
    desc = m.descriptor
    color = getattr(desc, "color", "rgb")
    c = lr.shape[1]
    sr_y = None
    x = model_input(lr, color)
    if color != "y":
        want = int(getattr(desc, "in_channels", 3))
        if want != x.shape[1]:
            raise ConfigError(f"model {m.label} takes {want} input channels; expected 3 (RGB) or colour 'y'")
    # Interpolation baselines run on the CPU in float64 (MATLAB's double; MPS has no float64); networks run
    # on the device in full fp32 (no TF32). Everything after the network runs on the CPU in float64, so a
    # GPU changes only the network's own rounding.
    dev = torch.device("cpu") if m.per_scale else device
    dtype = torch.float64 if m.per_scale else torch.float32
    inp = (x / 255.0).to(device=dev, dtype=dtype).contiguous()
    synchronize(dev)
    t0 = time.perf_counter()
    with torch.inference_mode(), threads(n_threads), full_fp32(dev):
        out = upsample(inp, scale, m.module.method) if m.per_scale else m.module(inp)
    synchronize(dev)
    runtime = time.perf_counter() - t0
    out = out.to("cpu", torch.float64) * 255.0
    exp = (lr.shape[-2] * scale, lr.shape[-1] * scale)
    if tuple(out.shape[-2:]) != exp:
        raise ConfigError(
            f"model {m.label} returned {tuple(out.shape[-2:])} for a {tuple(lr.shape[-2:])} input at x{scale}"
        )
    if color == "y":
        sr_y = out[:, :1]
        if c == 3:
            cbcr = upsample(rgb_to_ycbcr(lr)[:, 1:], scale, interp)
            out = ycbcr_to_rgb(torch.cat([sr_y, cbcr], dim=1))
        else:
            out = sr_y
    return out, sr_y, runtime


def save_sr(path: Path, sr: torch.Tensor, proto: Protocol) -> None:
    """Write SR (1, C, H, W) on 0-255, as the protocol scored it, so that scoring the file gives the same numbers.

    A protocol that rounds SR to uint8 gets an 8-bit PNG (exact); one that only clips (``study``) gets a
    16-bit PNG (``round(v * 257)``: within 1/514 of a grey level, ~1e-7 dB of PSNR).
    """

    a = sr[0].permute(1, 2, 0).to("cpu", torch.float64)
    if proto.sr_rounding == "uint8":
        px = quantize(a).to(torch.uint8).numpy()
    else:
        px = torch.floor(a.clamp(0, 255) * 257.0 + 0.5).to(torch.int32).numpy().astype(np.uint16)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)  # a killed earlier run's hidden temporary file of this image
    write_image(path, px, overwrite=True)


def prepare_perceptual(
    names: Sequence[str], device: torch.device, say: Callable[[str], None] | None = None
) -> tuple[tuple[str, ...], dict[str, str]]:
    """Build the perceptual metrics' networks (downloading their weights on first use), before any work.

    Returns ``(available, unavailable)``: a metric whose weights cannot be had (offline) is not computed,
    the others and PSNR/SSIM are; ``unavailable`` maps it to the one line that says what to download and
    where to put it (also given to ``say``). ``srlab eval`` then writes the tables and exits non-zero."""
    ok: list[str] = []
    missing: dict[str, str] = {}
    for n in names:
        try:
            load(n, device)
        except WeightsError as exc:
            missing[n] = str(exc)
            if say is not None:
                say(f"unavailable: {n} not computed: {exc}")
        else:
            ok.append(n)
    return tuple(ok), missing


def score_pair(
    sr: torch.Tensor,
    hr: torch.Tensor,
    *,
    crop: int,
    channels: Sequence[str] = ("y", "rgb"),
    perceptual: Sequence[str] = (),
    device: torch.device | str = "cpu",
    sr_y: torch.Tensor | None = None,
) -> tuple[dict[str, float], list[str]]:
    """The metric columns of one scored SR image (1, C, H, W) against its ground truth, and notes.

    ``sr_y``: a Y-channel model's own (rounded) Y output; the Y metrics are then measured on it, as the
    papers did. Perceptual metrics use the same border crop; one that cannot score the image (NIQE below
    two 96x96 blocks) gives NaN and a note.
    """

    channels = tuple(channels)
    res = metrics_batch(sr, hr, crop=crop, channels=channels)
    if sr_y is not None and hr.shape[1] == 3 and "y" in channels:
        res.update(metrics_batch(sr_y, y_reference(hr), crop=crop, channels=("y",)))
    out = {k: float(res[k][0]) for k in ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb") if k in res}
    notes: list[str] = []
    if perceptual:
        c = crop
        hh, ww = hr.shape[-2:]
        a, b = sr[..., c : hh - c, c : ww - c], hr[..., c : hh - c, c : ww - c]
        for n in perceptual:
            try:
                out[n] = float(score(n, a, b, device=device)[0])
            except ValueError as exc:
                out[n] = float("nan")
                notes.append(f"{n} not computed ({exc})")
    return out, notes


def evaluate(
    models: Sequence[str | EvalModel | tuple],
    datasets: Sequence[str],
    scales: Sequence[int],
    *,
    protocol: str | Protocol = "standard",
    data_root: str | Path | None = None,
    set_paths: dict | None = None,
    device: str | torch.device | None = "auto",
    crop: int | None = None,
    hr_crop: int | None = None,
    save_dir: str | Path | None = None,
    progress: bool | None = None,
    channels: Sequence[str] = ("y", "rgb"),
    lpips: bool = False,
    log: Callable[[str], None] = print,
    shard: Shard | None = None,
    metrics: Sequence[str] = (),
    keep: Collection[str | Path] = (),
    command: str | None = None,
) -> EvalResult:
    """Evaluate every model on every data set at every scale. Returns rows + a header describing the run.

    ``models``: names/paths (``bicubic``, ``bilinear``, zoo names, checkpoints), :class:`EvalModel` objects
    or ``(label, module)`` pairs of in-memory srlab models (e.g. during training).

    ``protocol``: a name in :data:`srlab.eval.protocols.PROTOCOLS` or a :class:`~srlab.eval.protocols.Protocol`.
    ``crop``: border crop (default: the protocol's rule: the scale for ``standard``, 0 for ``study``).
    ``hr_crop``: the study's centre crop size (default: the protocol's, 128, or the whole image for the sets
    the study used whole; 0 disables it); see :meth:`srlab.eval.protocols.Protocol.prepare_hr`.
    ``channels``: the metric channels (``("y",)`` alone is faster: one SSIM map). ``metrics``: perceptual
    columns besides PSNR/SSIM (:data:`srlab.eval.perceptual.PERCEPTUAL`: ``lpips``, ``lpips_vgg``,
    ``dists``, ``niqe``; same border crop; weights downloaded on first use); ``lpips=True`` adds ``lpips``.
    ``save_dir``: write each SR image, as it was scored, to ``save_dir/<model>/<dataset>/x<s>/<name>.png``
    (:func:`save_sr`: 8 bits where the protocol rounds SR to uint8, else 16 bits).
    ``shard``: evaluate only the images of this :class:`~srlab.eval.shard.Shard` (key: ``<set>/<path in the
    set>``); rows and skip records then carry ``index`` (the image's place in the whole set) and the
    header ``shard``, so :func:`srlab.eval.merge.merge_results` rebuilds the unsharded result exactly.
    ``keep``: image paths whose HR, LR and every model's SR (as scored) are kept in memory in
    :attr:`EvalResult.kept` (figures made from what was scored, without a second evaluation).
    """

    channels = tuple(channels)
    if not channels or any(ch not in ("y", "rgb") for ch in channels):
        raise ConfigError(f"channels must be 'y' and/or 'rgb', got {channels}")
    proto = get_protocol(protocol)
    scales = [int(s) for s in scales]
    if not scales or any(s < 1 for s in scales):
        raise ConfigError(f"scales must be positive integers, got {scales}")
    if not models:
        raise ConfigError("no model given; e.g. --models bicubic")
    if not datasets:
        raise ConfigError("no data set given; e.g. --datasets Set5,Set14")
    perceptual = parse_metrics([*metrics, *(["lpips"] if lpips else [])])
    dev = resolve_device(device)
    messages: list[str] = []

    def say(msg: str) -> None:
        messages.append(msg)
        log(msg)

    # weights first: offline, one line per metric before any work; the rest is still computed
    perceptual, unavailable = prepare_perceptual(perceptual, dev, say)
    root = resolve_data_root(data_root)
    found: list[Dataset] = [find_dataset(d, root, set_paths=set_paths) for d in datasets]
    given = {k.lower() for k in (set_paths or {})}
    for ds in found:  # a folder given with --set-path may be a deliberate subset of a known set
        ds.extra["set_path"] = bool(given & {n.lower() for n in (ds.spec.names if ds.spec else (ds.name,))})

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
            loaded[i] = wrap_module(*spec, dev)
        else:
            loaded[i] = load_eval_model(str(spec), scales[0], dev)
    labels = [k.split(":", 1)[1] if k.startswith("interp:") else loaded[int(k[6:])].label for k in keys]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"two models would share a label in {labels}; rename a checkpoint file")

    # Pre/post-processing (resizes, rounding, metrics) is small and memory-bound, so it runs on one CPU
    # thread (see srlab.runtime.one_thread); networks get all the threads.
    all_threads = torch.get_num_threads()
    with one_thread(dev):
        opts = _Opts(
            protocol=proto,
            dev=dev,
            crop=crop,
            hr_crop=hr_crop,
            channels=channels,
            save_dir=save_dir,
            progress=progress,
            say=say,
            net_threads=all_threads if dev.type == "cpu" else None,
            perceptual=perceptual,
            shard=shard,
            keep=frozenset(str(Path(p).resolve()) for p in keep),
            command=command,
            unavailable=unavailable,
        )
        rows, skipped, ds_info, model_info = _evaluate_loop(found, keys, labels, loaded, scales, opts)
    return _finish(rows, skipped, ds_info, model_info, labels, scales, opts, root, messages)


@dataclass
class _Opts:
    protocol: Protocol
    dev: torch.device
    crop: int | None
    hr_crop: int | None
    channels: tuple[str, ...]
    save_dir: str | Path | None
    progress: bool | None
    say: Callable[[str], None]
    net_threads: int | None
    perceptual: tuple[str, ...] = ()
    shard: Shard | None = None
    keep: frozenset[str] = frozenset()
    kept: dict = field(default_factory=dict)
    command: str | None = None  # the command line that re-makes the numbers, for the header
    unavailable: dict[str, str] = field(default_factory=dict)  # metric -> why it was not computed


def _shard_key(ds: Dataset, path: Path) -> str:
    try:
        return f"{ds.name}/{path.relative_to(ds.hr_dir).as_posix()}"
    except ValueError:
        return f"{ds.name}/{path.name}"


def _evaluate_loop(found, keys, labels, loaded, scales, o: _Opts):
    rows: list[dict] = []
    skipped: list[dict] = []
    ds_info: list[dict] = []
    model_info: dict[str, dict] = {}
    for ds in found:
        proto = o.protocol
        size = proto.crop_size(o.hr_crop, ds.name)
        info = {
            "name": ds.name,
            "path": str(ds.hr_dir.resolve()),
            "expected": ds.expected,
            "found": len(ds.files),
            "set_path": ds.extra.get("set_path", False),
            "used": {},
            "complete": {},
            "skipped": [],
            "failed": [],
            "hr_crop": size,
        }
        ds_info.append(info)
        if not ds.complete:
            o.say(f"note: {ds.name} has {len(ds.files)} of {ds.expected} images in {ds.hr_dir}")
        cache: dict[Path, tuple[np.ndarray, list[str]] | str] = {}
        files, where = ds.files, {p: i for i, p in enumerate(ds.files)}
        if o.shard is not None:  # the image's place in the whole set goes with its records, for the merge
            files = o.shard.select(ds.files, lambda p, ds=ds: _shard_key(ds, p))
            info["shard_files"] = len(files)
        mark = (lambda p, where=where: {"index": where[p]}) if o.shard is not None else (lambda p: {})
        for s in scales:
            bcrop = proto.border_crop(s, o.crop)
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
                files,
                desc=f"{ds.name} x{s}",
                unit="img",
                disable=None if o.progress is None else not o.progress,
                leave=False,
            )
            for path in bar:
                name = path.stem
                if path not in cache:
                    try:
                        cache[path] = read_hr(path)
                    except ImageError as exc:
                        cache[path] = str(exc)
                    else:
                        for n in cache[path][1]:
                            o.say(f"note: {ds.name}/{path.name}: {n}")
                entry = cache[path]
                if isinstance(entry, str):
                    if s == scales[0]:
                        o.say(f"skip: {ds.name}/{path.name}: {entry}")
                        rec = {"image": path.name, "reason": entry, **mark(path)}
                        info["skipped"].append(rec)
                        skipped.append({"dataset": ds.name, **rec})
                    continue
                hr_np, reason = proto.prepare_hr(entry[0], s, hr_crop=o.hr_crop, dataset=ds.name, crop=bcrop)
                if hr_np is None:
                    o.say(f"skip: {ds.name}/{path.name} at x{s}: {reason}")
                    rec = {"image": path.name, "scale": s, "reason": reason, **mark(path)}
                    info["skipped"].append(rec)
                    skipped.append({"dataset": ds.name, **rec})
                    continue
                hr = hr_tensor(hr_np, o.dev)
                lr = proto.make_lr(hr, s)
                kept = None
                if o.keep and str(path.resolve()) in o.keep:
                    kept = o.kept.setdefault(
                        (str(path.resolve()), s), {"hr": hr_np, "lr": _hwc(lr), "sr": {}}
                    )
                for label, m in active:
                    nt = None if m.per_scale else o.net_threads
                    if used == 0 and not m.per_scale:  # warm-up (allocations, cuDNN autotuning): not timed
                        _run_model(m, lr, s, proto.interpolation, o.dev, nt)
                    sr, sr_y, runtime = _run_model(m, lr, s, proto.interpolation, o.dev, nt)
                    bad = _non_finite(sr)
                    if bad:  # rounding would turn inf into 255 and scoring NaN into a number: a failure
                        reason = f"model output has {bad} non-finite values (NaN/inf); not scored"
                        o.say(f"fail: {label} {ds.name}/{path.name} x{s}: {reason}")
                        rec = {"model": label, "image": path.name, "scale": s, "reason": reason, **mark(path)}
                        info["failed"].append(rec)
                        continue
                    sr = proto.round_sr(sr)
                    sr_y = proto.round_sr(sr_y) if sr_y is not None else None
                    row = {"model": label, "dataset": ds.name, "scale": s, "image": name}
                    scores, notes = score_pair(
                        sr,
                        hr,
                        crop=bcrop,
                        channels=o.channels,
                        perceptual=o.perceptual,
                        device=o.dev,
                        sr_y=sr_y,
                    )
                    row.update(scores)
                    for n in notes:
                        o.say(f"note: {label} {ds.name}/{path.name} x{s}: {n}")
                    row.update(runtime_s=runtime, h=int(hr.shape[-2]), w=int(hr.shape[-1]), **mark(path))
                    rows.append(row)
                    if kept is not None:
                        kept["sr"][label] = _hwc(sr)
                    if o.save_dir is not None:
                        save_sr(Path(o.save_dir) / label / ds.name / f"x{s}" / f"{name}.png", sr, proto)
                used += 1
            bar.close()
            info["used"][str(s)] = used
            of = f"{len(files)} images of shard {o.shard}" if o.shard else f"{len(ds.files)} images"
            o.say(f"{ds.name} x{s}: {used} of {of} evaluated")

    return rows, skipped, ds_info, model_info


def _non_finite(t: torch.Tensor) -> int:
    """How many values of ``t`` are NaN or infinite."""
    return int(t.numel() - torch.isfinite(t).sum().item())


def _finish(rows, skipped, ds_info, model_info, labels, scales, o: _Opts, root, messages):
    channels, dev = o.channels, o.dev
    header = {
        "protocol": o.protocol.describe(crop=o.crop, hr_crop=o.hr_crop),
        "scales": scales,
        "channels": list(channels),
        "lpips": PERCEPTUAL["lpips"].description if "lpips" in o.perceptual else None,
        "metrics": {n: PERCEPTUAL[n].description for n in o.perceptual},
        "data_root": str(Path(root).resolve()),
        "datasets": ds_info,
        "models": [model_info[lb] for lb in labels if lb in model_info],
        "device": device_name(dev),
        "srlab_version": __version__,
        "torch_version": torch.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if o.shard is not None:
        header["shard"] = o.shard.to_dict()
    if o.command:
        header["command"] = o.command
    if o.unavailable:
        header["unavailable_metrics"] = dict(o.unavailable)
    return EvalResult(rows, mark_complete(header), skipped, messages, kept=o.kept)


def _hwc(t: torch.Tensor) -> np.ndarray:
    """(1, C, H, W) on 0-255 as a float64 (H, W, C) array."""
    return t[0].permute(1, 2, 0).to("cpu", torch.float64).numpy().copy()


def device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
