"""What a worker does with a job, in its own process: the same library calls as ``srlab upscale`` and
``srlab eval``, so a server result is the file the CLI would have written.

- ``upscale``: :meth:`Upscaler.upscale_file` for still images, named and checked by the CLI's own
  :class:`~srlab.inference.outputs.OutputPlan` (``input_x2.png``: the name and format ``srlab upscale
  input.png`` gives), :func:`~srlab.inference.video.upscale_video` and
  :func:`~srlab.inference.animated.upscale_animation` for videos and animated images; all write atomically.
- ``compare``: every chosen model on one image, each output written as PNG; with a ground truth, PSNR and
  SSIM under the chosen protocol's metric channel and border crop (:mod:`srlab.eval.protocols`,
  :mod:`srlab.eval.metrics`) and LPIPS when its weights are on the machine. The input is taken as the LR image
  as given: the protocol's degradation is not applied to it.

``report(fraction)`` records progress and raises :class:`Cancelled` when the job was deleted or taken away
(server restart), so a lost job stops at the next step and its files are removed. Still images report per
tile (the Upscaler's progress callback), so a long image moves its bar and can be cancelled between tiles;
videos and animations report their stages only.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from srlab.errors import ImageError, SrlabError
from srlab.eval.metrics import lpips_distance, metrics_batch
from srlab.eval.perceptual import PERCEPTUAL
from srlab.eval.perceptual.assets import ASSETS, local_copies
from srlab.eval.protocols import get_protocol, read_hr
from srlab.imaging import io as imio
from srlab.inference import animated, video
from srlab.inference.outputs import OutputPlan, OutputRules
from srlab.inference.upscaler import Upscaler
from srlab.serve.catalogue import resolve_request

__all__ = ["Cancelled", "UpscalerCache", "output_plan", "run_job"]

_MEDIA_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".gif": "image/gif",
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
    ".mkv": "video/x-matroska",
    ".webm": "video/webm",
    ".avi": "video/x-msvideo",
    ".json": "application/json",
}


class Cancelled(Exception):
    """The job was deleted, or its run was taken away, while it ran."""


def media_type(name: str) -> str:
    return _MEDIA_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")


def output_plan(folder: Path, input_name: str, scale: float) -> tuple[OutputPlan, Path, Path]:
    """(plan, src, planned dst) for the job's input in ``folder``: ``srlab upscale``'s own naming (``--ext
    same``, suffix ``_x<scale>``) into the job folder, replacing an earlier result of the job (a re-run)."""
    src = folder / input_name
    plan = OutputPlan(OutputRules(force=True), [src], str(folder), scale=scale)
    return plan, src, plan.paths[0]


def tile_progress(report: Callable[[float], None], lo: float, hi: float, step: float = 0.01):
    """An Upscaler progress callback ``(tiles done, total)`` that reports ``lo..hi`` of the job, at most once
    per ``step`` (each report is a database write, and a large image has thousands of tiles)."""
    last = [lo]

    def on_tiles(done: int, total: int) -> None:
        fraction = lo + (hi - lo) * done / max(total, 1)
        if fraction - last[0] >= step:
            last[0] = fraction
            report(fraction)

    return on_tiles


class UpscalerCache:
    """The last few :class:`Upscaler` a worker built, so repeated jobs with one model skip the loading."""

    def __init__(self, device: str, size: int = 2) -> None:
        self.device, self.size = device, size
        self._items: dict[tuple, Any] = {}

    def get(self, model, tile: int | None, precision: str) -> Upscaler:
        key = (str(model), tile, precision)
        up = self._items.pop(key, None)
        if up is None:
            up = Upscaler(model, tile=tile, precision=precision, device=self.device)
            while len(self._items) >= self.size:
                self._items.pop(next(iter(self._items)))
        self._items[key] = up
        return up


def _model_ref(name: str, models_dir: Path | None):
    return resolve_request(name, models_dir)


def run_job(
    job,
    folder: Path,
    cache: UpscalerCache,
    report: Callable[[float], None],
    *,
    max_pixels: int,
    models_dir: Path | None = None,
) -> dict[str, Any]:
    """Run ``job`` (a :class:`srlab.serve.store.Job`) with its files in ``folder``; returns its result record
    (``files``: the files written, all inside ``folder``)."""
    if job.kind == "compare":
        return _compare(job.params, folder, cache, report, max_pixels, models_dir)
    return _upscale(job.params, folder, cache, report, max_pixels, models_dir)


def _upscale(p, folder: Path, cache, report, max_pixels: int, models_dir) -> dict[str, Any]:
    up = cache.get(_model_ref(p["model"], models_dir), p.get("tile"), p.get("precision", "auto"))
    report(0.1)
    outscale = p.get("scale")
    plan, src, planned = output_plan(folder, p["input"], up.scale if outscale is None else outscale)
    media = p.get("media", "image")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if media in ("video", "animation"):
            dst = plan.claim(src, plan.media(media, src, planned))
            run = video.upscale_video if media == "video" else animated.upscale_animation
            res = run(up, src, dst, outscale=outscale, overwrite=True, max_pixels=max_pixels, progress=False)
            detail = {"width": res.width, "height": res.height, "frames": res.frames}
        else:
            up.progress = tile_progress(report, 0.1, 0.95)
            try:
                out = up.upscale_file(
                    src,
                    functools.partial(plan.claim, src, planned),
                    outscale=outscale,
                    overwrite=True,
                    max_pixels=max_pixels,
                )
            finally:
                up.progress = False  # the cached Upscaler must not report into a later job
            dst = Path(out.path)
            detail = {"width": out.width, "height": out.height, "bit_depth": out.bit_depth}
    return {
        "files": [dst.name],
        "file": dst.name,
        "media_type": media_type(dst.name),
        "model": p["model"],
        "scale": up.scale if outscale is None else outscale,
        "notes": [str(w.message).replace(str(folder) + "/", "") for w in caught][:5],
        **detail,
    }


def _lpips_ready() -> bool:
    """LPIPS runs only when its weights are already on the machine: a job never waits on a download."""
    try:
        return all(local_copies(ASSETS[a]) for a in PERCEPTUAL["lpips"].assets)
    except Exception:  # noqa: BLE001 - no perceptual metrics in this install
        return False


def _to_uint8(pixels: np.ndarray, bit_depth: int) -> np.ndarray:
    if bit_depth == 16 or pixels.dtype == np.uint16:
        return np.round(pixels.astype(np.float64) / 257.0).astype(np.uint8)  # as srlab.eval.protocols.read_hr
    return pixels


def _compare(p, folder: Path, cache, report, max_pixels: int, models_dir) -> dict[str, Any]:
    protocol = get_protocol(p.get("protocol", "standard"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        img = imio.read_image(folder / p["input"], max_pixels=max_pixels)
    hr = None
    if p.get("truth"):
        hr, _ = read_hr(folder / p["truth"])
    use_lpips = hr is not None and _lpips_ready()
    rows = []
    models = p["models"]
    for i, name in enumerate(models):
        lo, hi = 0.05 + 0.9 * i / len(models), 0.05 + 0.9 * (i + 1) / len(models)
        report(lo)
        row: dict[str, Any] = {"model": name}
        try:
            up = cache.get(_model_ref(name, models_dir), p.get("tile"), p.get("precision", "auto"))
            up.progress = tile_progress(report, lo, hi)
            try:
                out = up.upscale_image(img)
            finally:
                up.progress = False
            fname = f"out-{i}.png"
            imio.write_image(
                folder / fname, out.pixels, alpha=out.alpha, bit_depth=out.bit_depth, overwrite=True
            )
            row.update(file=fname, width=out.width, height=out.height, scale=up.scale)
            if hr is not None:
                row.update(_score(_to_uint8(out.pixels, out.bit_depth), hr, up.scale, protocol, use_lpips))
        except Cancelled:
            raise
        except SrlabError as exc:
            row["error"] = str(exc).replace(str(folder) + "/", "")
        rows.append(row)
    if all("error" in r for r in rows):
        raise ImageError(f"every model failed; first: {rows[0]['error']}")
    result: dict[str, Any] = {
        "files": [r["file"] for r in rows if "file" in r],
        "outputs": rows,
        "protocol": protocol.name,
        "metric_channel": protocol.metric_channel,
        "truth": p.get("truth"),
        "notes": [],
    }
    if hr is not None and not use_lpips:
        result["notes"].append(
            "LPIPS not computed: its weights are not on the server (srlab eval --metrics lpips fetches them)"
        )
    return result


def _score(sr: np.ndarray, hr: np.ndarray, scale: int, protocol, use_lpips: bool) -> dict[str, Any]:
    oh, ow = sr.shape[:2]
    hh, hw = hr.shape[:2]
    if not (0 <= hh - oh < scale and 0 <= hw - ow < scale):
        raise ImageError(
            f"output {ow}x{oh} does not match the ground truth {hw}x{hh} (x{scale} model); "
            "upload the ground truth at the model's scale of the input"
        )
    hr = hr[:oh, :ow]  # modcrop, as the protocols prepare HR
    crop = protocol.border_crop(scale)
    ch = protocol.metric_channel
    m = metrics_batch(sr, hr, crop=crop, channels=(ch,))
    row = {"psnr": float(m[f"psnr_{ch}"][0]), "ssim": float(m[f"ssim_{ch}"][0]), "crop": crop}
    if use_lpips:
        c = crop
        a, b = (sr[c:-c, c:-c], hr[c:-c, c:-c]) if c else (sr, hr)
        try:
            row["lpips"] = float(lpips_distance(a, b))
        except SrlabError:
            pass
    return row
