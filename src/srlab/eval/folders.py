"""Score SR images made elsewhere (papers' result folders, MATLAB, other toolkits) against ground truth.

``srlab eval --sr DIR --gt DIR`` (:func:`evaluate_folders`): the ground truth is prepared exactly as the
direct evaluation prepares it under the chosen protocol (16-bit reduced to 8 bits, alpha dropped, the
study's centre crop, modcrop to the scale); each SR file is scored *as the protocol scores SR*: ``standard``
rounds it to the uint8 grid (an 8-bit file already is; a 16-bit file is read as ``v / 257`` and rounded),
``study`` only clips (a 16-bit file keeps its precision). Metrics, border crop, rows and header are those of
:func:`srlab.eval.loop.evaluate`, so the tables, CSV and JSON are the same.

Pairing is by file name: the same stem first (``baby.png`` with ``baby.png`` or ``baby.bmp``); then, for the
files left, the stem without common suffixes (``_x4``, ``_SR``, ``_out``, ``_output``, ``_result``,
``_rlt``, ``_HR``, ``_GT``; ``-`` or ``.`` also separate; up to three, any case) when exactly one SR file
and one ground-truth file share it. Everything else -- an SR file with no ground truth, a ground truth
with no SR file, two candidates for one name, a size or channel mismatch, an unreadable file -- is one
line each and is listed in the header's ``mismatches``; nothing is skipped silently.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from srlab import __version__
from srlab.data.find import find_dataset, resolve_data_root
from srlab.errors import ConfigError, ImageError
from srlab.eval.loop import EvalResult, device_name, prepare_perceptual, score_pair
from srlab.eval.perceptual import PERCEPTUAL, parse_metrics
from srlab.eval.protocols import get_protocol, hr_tensor, read_hr
from srlab.eval.results import mark_complete
from srlab.imaging.files import list_images
from srlab.imaging.io import read_image
from srlab.runtime import one_thread, resolve_device

__all__ = ["SUFFIXES", "evaluate_folders", "match_files", "parse_sr_dirs"]

SUFFIXES = ("x\\d+", "sr", "out", "output", "result", "rlt", "hr", "gt")
_SUFFIX = re.compile(r"[_\-.](?:" + "|".join(SUFFIXES) + r")$", re.IGNORECASE)


def _base(stem: str) -> str:
    s = stem
    for _ in range(3):
        m = _SUFFIX.search(s)
        if not m or m.start() == 0:
            break
        s = s[: m.start()]
    return s.lower()


def match_files(sr: Sequence[Path], gt: Sequence[Path]) -> tuple[list[tuple[Path, Path, str]], list[dict]]:
    """Pair SR files with ground-truth files by name. Returns ``(pairs, problems)``.

    ``pairs``: ``(sr, gt, how)`` with ``how`` = ``"name"`` or ``"suffix"``; ``problems``: one dict per file
    that could not be paired (``file``, ``side`` = ``sr``/``gt``, ``reason``).
    """
    problems: list[dict] = []
    by_stem_gt: dict[str, list[Path]] = {}
    for g in gt:
        by_stem_gt.setdefault(g.stem, []).append(g)
    by_stem_sr: dict[str, list[Path]] = {}
    for s in sr:
        by_stem_sr.setdefault(s.stem, []).append(s)
    pairs: list[tuple[Path, Path, str]] = []
    left_sr: list[Path] = []
    used_gt: set[Path] = set()
    for stem, srs in by_stem_sr.items():
        gts = by_stem_gt.get(stem, [])
        if len(srs) == 1 and len(gts) == 1:
            pairs.append((srs[0], gts[0], "name"))
            used_gt.add(gts[0])
        elif gts or len(srs) > 1:
            names = ", ".join(p.name for p in [*srs, *gts])
            for p in srs:
                problems.append(
                    {"file": p.name, "side": "sr", "reason": f"ambiguous name: {names} share '{stem}'"}
                )
            used_gt.update(gts)
            for p in gts:
                problems.append(
                    {"file": p.name, "side": "gt", "reason": f"ambiguous name: {names} share '{stem}'"}
                )
        else:
            left_sr.extend(srs)
    left_gt = [g for g in gt if g not in used_gt]
    groups: dict[str, tuple[list[Path], list[Path]]] = {}
    for s in left_sr:
        groups.setdefault(_base(s.stem), ([], []))[0].append(s)
    for g in left_gt:
        groups.setdefault(_base(g.stem), ([], []))[1].append(g)
    for key, (srs, gts) in groups.items():
        if len(srs) == 1 and len(gts) == 1:
            pairs.append((srs[0], gts[0], "suffix"))
            continue
        if srs and gts:
            names = ", ".join(p.name for p in [*srs, *gts])
            reason = f"ambiguous: {names} all match '{key}' once suffixes are removed; rename to pair them"
            problems += [{"file": p.name, "side": "sr", "reason": reason} for p in srs]
            problems += [{"file": p.name, "side": "gt", "reason": reason} for p in gts]
            continue
        for p in srs:
            problems.append({"file": p.name, "side": "sr", "reason": "no ground-truth image of that name"})
        for p in gts:
            problems.append({"file": p.name, "side": "gt", "reason": "no SR image of that name"})
    order = {g: i for i, g in enumerate(gt)}
    pairs.sort(key=lambda t: order[t[1]])
    return pairs, problems


def parse_sr_dirs(items: Sequence[str]) -> list[tuple[str, Path]]:
    """``DIR`` or ``LABEL=DIR`` items -> ``(label, dir)``. A bare DIR is labelled by its folder name; srlab's
    own ``--save-images`` layout ``<model>/<set>/x<s>`` gives the model's name."""
    out: list[tuple[str, Path]] = []
    for it in items:
        label, sep, d = it.partition("=")
        if not sep or not label or "/" in label or Path(it).is_dir():
            d, label = it, ""
        p = Path(d).expanduser()
        if not p.is_dir():
            raise ConfigError(f"--sr {it}: no such folder; give the folder of SR images (or LABEL=DIR)")
        if not label:
            r = p.resolve()
            label = r.parent.parent.name if re.fullmatch(r"x\d+", r.name) and len(r.parts) > 3 else r.name
        out.append((label, p))
    labels = [lb for lb, _ in out]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"two --sr folders would share the label in {labels}; give them as LABEL=DIR")
    return out


def _gt_set(gt: str, data_root, set_paths):
    p = Path(gt).expanduser()
    if p.is_dir():
        name = p.resolve().name
        if name.lower() in ("hr", "gt", "gtmod12", "original", "hr_images") and p.resolve().parent.name:
            name = p.resolve().parent.name
        return find_dataset(name, data_root, set_paths={name: p})
    return find_dataset(gt, data_root, set_paths=set_paths)


def _read_sr(path: Path) -> tuple[torch.Tensor, list[str]]:
    """(1, C, H, W) float64 on 0-255 (16-bit files: v / 257, unrounded) and conversion notes."""

    img = read_image(path)
    px = img.pixels if img.pixels.ndim == 3 else img.pixels[..., None]
    notes = ["alpha channel ignored"] if img.alpha is not None else []
    a = px.astype(np.float64) / (257.0 if px.dtype == np.uint16 else 1.0)
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).unsqueeze(0), notes


def evaluate_folders(
    sr_dirs: Sequence[tuple[str, str | Path]],
    gt: str | Path,
    scale: int,
    *,
    protocol: str = "standard",
    data_root: str | Path | None = None,
    set_paths: dict | None = None,
    device: str | torch.device | None = "auto",
    crop: int | None = None,
    hr_crop: int | None = None,
    channels: Sequence[str] = ("y", "rgb"),
    metrics: Sequence[str] = (),
    progress: bool | None = None,
    log: Callable[[str], None] = print,
    command: str | None = None,
) -> EvalResult:
    """Score each ``(label, folder)`` of SR images against the ground truth ``gt`` (a folder or a set name).

    Returns the rows and header of :func:`srlab.eval.loop.evaluate` (``model`` = the label, ``image`` = the
    ground truth's stem), plus ``header['mismatches']``: every file that was not scored, with the reason.
    """

    proto = get_protocol(protocol)
    s = int(scale)
    if s < 1:
        raise ConfigError(f"scale must be a positive integer, got {scale}")
    channels = tuple(channels)
    perceptual = parse_metrics(list(metrics))
    dev = resolve_device(device)
    prepare_perceptual(perceptual, dev)
    ds = _gt_set(str(gt), data_root, set_paths)
    bcrop = proto.border_crop(s, crop)
    messages: list[str] = []

    def say(msg: str) -> None:
        messages.append(msg)
        log(msg)

    rows: list[dict] = []
    skipped: list[dict] = []
    mismatches: list[dict] = []
    info = {
        "name": ds.name,
        "path": str(ds.hr_dir.resolve()),
        "expected": ds.expected,
        "found": len(ds.files),
        "set_path": True,
        "used": {},
        "complete": {},
        "skipped": [],
        "hr_crop": proto.crop_size(hr_crop, ds.name),
    }
    models = []
    hr_cache: dict[Path, object] = {}
    used_per_label = []
    with one_thread(dev):
        for label, folder in sr_dirs:
            folder = Path(folder)
            files = list_images(folder)
            models.append({"label": label, "sr_dir": str(folder.resolve()), "files": len(files)})
            pairs, problems = match_files(files, ds.files)
            for pr in problems:
                where = folder if pr["side"] == "sr" else ds.hr_dir
                say(f"mismatch: {label}: {where / pr['file']}: {pr['reason']}")
                mismatches.append({"model": label, **pr})
            n_suffix = sum(1 for *_, how in pairs if how == "suffix")
            if n_suffix:
                say(f"note: {label}: {n_suffix} SR files paired by name without a suffix (_x4, _SR, ...)")
            used = 0
            bar = tqdm(
                pairs,
                desc=f"{label} vs {ds.name}",
                unit="img",
                disable=None if progress is None else not progress,
                leave=False,
            )
            for sr_path, gt_path, _ in bar:
                row_or_reason = _score_one(
                    sr_path, gt_path, proto, s, bcrop, hr_crop, ds.name, channels, perceptual, dev, hr_cache
                )
                if isinstance(row_or_reason, str):
                    say(f"mismatch: {label}: {sr_path} vs {gt_path.name}: {row_or_reason}")
                    mismatches.append(
                        {"model": label, "file": sr_path.name, "side": "sr", "reason": row_or_reason}
                    )
                    continue
                row, notes = row_or_reason
                for n in notes:
                    say(f"note: {label}: {sr_path.name}: {n}")
                rows.append({"model": label, "dataset": ds.name, "scale": s, "image": gt_path.stem, **row})
                used += 1
            bar.close()
            used_per_label.append(used)
            say(f"{label} vs {ds.name} x{s}: {used} of {len(ds.files)} images scored")
    # the set counts as whole only if every SR folder covered every ground-truth image
    info["used"][str(s)] = min(used_per_label) if used_per_label else 0
    header = {
        "protocol": proto.describe(crop=crop, hr_crop=hr_crop),
        "scales": [s],
        "channels": list(channels),
        "lpips": PERCEPTUAL["lpips"].description if "lpips" in perceptual else None,
        "metrics": {n: PERCEPTUAL[n].description for n in perceptual},
        "source": "images: SR files scored as found (srlab eval --sr/--gt)",
        "data_root": str(Path(resolve_data_root(data_root)).resolve()),
        "datasets": [info],
        "models": models,
        "mismatches": mismatches,
        "device": device_name(dev),
        "srlab_version": __version__,
        "torch_version": torch.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if command:
        header["command"] = command
    return EvalResult(rows, mark_complete(header), skipped, messages)


def _score_one(sr_path, gt_path, proto, s, bcrop, hr_crop, ds_name, channels, perceptual, dev, hr_cache):
    """(row, notes) for one pair, or the one-line reason it could not be scored."""
    if gt_path not in hr_cache:
        try:
            hr_np, _ = read_hr(gt_path)
        except ImageError as exc:
            hr_cache[gt_path] = f"ground truth unreadable: {exc}"
        else:
            prepared, reason = proto.prepare_hr(hr_np, s, hr_crop=hr_crop, dataset=ds_name, crop=bcrop)
            hr_cache[gt_path] = reason if prepared is None else (hr_tensor(prepared), hr_np.shape)
    entry = hr_cache[gt_path]
    if isinstance(entry, str):
        return entry
    hr, orig = entry
    try:
        sr, notes = _read_sr(sr_path)
    except ImageError as exc:
        return str(exc)
    sh, sw = sr.shape[-2:]
    hh, hw = hr.shape[-2:]
    if (sh, sw) != (hh, hw):
        how = f"{orig[1]}x{orig[0]} prepared by the {proto.name} protocol at x{s}"
        return f"size: SR is {sw}x{sh}, the ground truth ({how}) is {hw}x{hh}"
    if sr.shape[1] == 1 and hr.shape[1] == 3:
        return "channels: SR is grey but the ground truth is RGB"
    sr = proto.round_sr(sr)
    row, more = score_pair(sr, hr, crop=bcrop, channels=channels, perceptual=perceptual, device=dev)
    row.update(h=int(hh), w=int(hw))
    return row, notes + more
