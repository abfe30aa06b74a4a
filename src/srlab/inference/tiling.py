"""How an image is cut into tiles and how the tiles' outputs are blended back together.

The image stays on the CPU. It is cut into equally sized windows (so they batch), ``batch_size`` windows
go to the device at a time, and each result is accumulated with a weight, then divided by the weight
sum. Memory on the device is bounded by the tile size, not the image size.

Along each axis the image is split into *cores* that partition it; each window is its core plus
``overlap`` = P LR pixels of context on each side (more at the image borders, where windows are shifted
inwards so that all have the same size). Around each core boundary the two neighbouring tiles cross-fade
with a raised-cosine ramp. Each tile's weight is exactly zero in the ``m = min(P, R)`` outermost pixels of
its context, where R is ``descriptor.receptive_radius`` (the LR distance over which a pixel depends on its
neighbours): those are the pixels a tile computes wrongly, because it cannot see beyond its window. The
ramp spans the remaining ``2 (P - m)`` pixels. Hence:

- if P >= R the tiled result equals the untiled one up to float rounding (a hard cut when P == R, a
  smooth cross-fade beyond); the tests check this with SRCNN, whose R is exact.
- for RRDBNet the true receptive field is far larger than its hint R = 16 (23 blocks x 15 convs) and
  influence decays slowly, so tiles differ slightly from the whole image; the blend spreads the difference
  smoothly over the ramp instead of leaving a seam line, and it shrinks as the overlap grows (README has
  the figures). The default overlap is ``max(8, 2 R)`` = 32 for RRDBNet; pass a larger ``tile_overlap``
  when it matters (for comparison: Real-ESRGAN pastes tiles with 10 pixels of padding and no blending).
  On a GPU the automatic tile usually covers the whole image, so there are no tiles at all.

Automatic tiles (``tile=None``) are bounded by area (the memory budget) *and* by side
(:data:`MAX_AUTO_SIDE` LR pixels): each axis is split on its own, so a long thin image (3 x 20000) is cut
along its long side even when its area would fit, and no window's cost grows with an image's long side.

Windows start at multiples of ``descriptor.size_multiple`` and the image is padded to a multiple of it
(cropped afterwards), so pixel-unshuffle models see the same phase in every tile.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

__all__ = [
    "MAX_AUTO_SIDE",
    "AxisTile",
    "TilePlan",
    "axis_tiles",
    "axis_weights",
    "blend_tiles",
    "default_overlap",
    "make_plan",
    "pad_to_multiple",
]


MAX_AUTO_SIDE = 2048
"""Automatic tiles are at most this many LR pixels (without their context) along either axis."""


@dataclass(frozen=True)
class AxisTile:
    """One tile along one axis, in LR pixels of the padded image: window [start, start + size), core [c0, c1)."""

    start: int
    c0: int
    c1: int


@dataclass(frozen=True)
class TilePlan:
    height: int  # padded LR size
    width: int
    win_h: int  # window size (all windows equal)
    win_w: int
    overlap: int
    margin: int
    rows: tuple[AxisTile, ...]
    cols: tuple[AxisTile, ...]
    batch_size: int

    @property
    def n_tiles(self) -> int:
        return len(self.rows) * len(self.cols)


def _round_up(n: int, mult: int) -> int:
    return -(-n // mult) * mult


def pad_to_multiple(x: torch.Tensor, mult: int) -> torch.Tensor:
    """Pad an (N, C, H, W) batch at the bottom and right to multiples of ``mult``: reflected where the image
    is large enough for it, else replicated."""
    h, w = x.shape[-2:]
    hp, wp = _round_up(h, mult), _round_up(w, mult)
    if hp == h and wp == w:
        return x
    mode = "reflect" if (hp - h < h and wp - w < w) else "replicate"
    return torch.nn.functional.pad(x, (0, wp - w, 0, hp - h), mode=mode)


def default_overlap(radius: int, tile: int | None = None) -> int:
    """``max(8, 2 R)`` LR pixels of context; for small tiles at most ``max(R, tile / 2)`` (still >= R, so
    still exact where R is)."""
    p = max(8, 2 * radius)
    if tile:
        p = min(p, max(radius, tile // 2))
    return p


def warn_small_overlap(name: str, radius: int, overlap: int | None, tile: int | None) -> None:
    """Say when an asked tile overlap is below the model's receptive radius: seams then differ from a
    whole-image run (tile 0 means no tiling, so nothing to say)."""
    if overlap is not None and overlap < radius and tile != 0:
        warnings.warn(
            f"tile overlap {overlap} is below {name}'s receptive radius {radius}: pixels near tile seams will "
            f"differ from a whole-image run; use at least {radius} (default {default_overlap(radius, tile)})",
            stacklevel=3,
        )


def axis_tiles(length: int, tile: int, overlap: int, mult: int) -> tuple[int, tuple[AxisTile, ...]]:
    """Window size and tiles covering ``length`` (a multiple of ``mult``): cores <= ``tile``, + ``overlap`` a side."""
    if tile <= 0 or length <= tile:
        return length, (AxisTile(0, 0, length),)
    n = math.ceil(length / tile)
    bounds = [round(k * length / n) for k in range(n + 1)]
    core = max(b - a for a, b in zip(bounds, bounds[1:]))
    win = min(length, _round_up(core + 2 * overlap + mult - 1, mult))
    tiles = []
    for a, b in zip(bounds, bounds[1:]):
        start = min(max(a - overlap, 0), length - win)
        start -= start % mult
        tiles.append(AxisTile(start, a, b))
    return win, tuple(tiles)


def _ramp(x: torch.Tensor, boundary: float, half: float) -> torch.Tensor:
    """0 before ``boundary - half``, 1 after ``boundary + half``, raised cosine between (step if half=0)."""
    if half <= 0:
        return (x >= boundary).to(torch.float32)
    t = ((x - (boundary - half)) / (2 * half)).clamp(0, 1)
    return 0.5 - 0.5 * torch.cos(math.pi * t)


def axis_weights(
    tiles: tuple[AxisTile, ...], win: int, scale: int, overlap: int, margin: int
) -> list[torch.Tensor]:
    """Per tile, the HR weight of each output pixel of its window along this axis."""
    u = (torch.arange(win * scale, dtype=torch.float64) + 0.5) / scale
    half = overlap - margin
    out = []
    for i, t in enumerate(tiles):
        x = u + t.start
        w = torch.ones_like(x)
        if i > 0:
            w = w * _ramp(x, t.c0, half)
        if i < len(tiles) - 1:
            w = w * (1 - _ramp(x, t.c1, half))
        out.append(w.to(torch.float32))
    return out


def make_plan(
    height: int,
    width: int,
    *,
    mult: int,
    radius: int,
    tile: int | None,
    overlap: int | None,
    bytes_per_px: int,
    budget: int,
    batch_size: int | None,
    on_cpu: bool,
) -> TilePlan:
    """How an LR image of this size is tiled. ``tile=None``: the whole image when its activations
    (``bytes_per_px`` per LR pixel) fit ``budget`` and neither side exceeds :data:`MAX_AUTO_SIDE`, else
    the largest square window that fits both (each axis split on its own);
    ``batch_size=None``: 1 on the CPU, else as many windows as fit the budget (at most 16)."""
    hp, wp = _round_up(height, mult), _round_up(width, mult)
    if tile is None:
        overlap = overlap if overlap is not None else default_overlap(radius)
        if hp * wp * bytes_per_px <= budget and max(hp, wp) <= MAX_AUTO_SIDE:
            tile = 0  # the whole image fits
        else:
            side = int(math.sqrt(budget / bytes_per_px)) - 2 * overlap - mult
            tile = max(32, min(MAX_AUTO_SIDE, side - side % 8))
    elif overlap is None:
        overlap = default_overlap(radius, tile)
    margin = min(overlap, radius)
    win_h, rows = axis_tiles(hp, tile, overlap, mult)
    win_w, cols = axis_tiles(wp, tile, overlap, mult)
    bs = batch_size
    if bs is None:
        bs = 1 if on_cpu else int(max(1, min(16, budget // max(1, win_h * win_w * bytes_per_px))))
    return TilePlan(hp, wp, win_h, win_w, overlap, margin, rows, cols, bs)


def blend_tiles(
    x: torch.Tensor,
    plan: TilePlan,
    scale: int,
    run: Callable[[torch.Tensor], torch.Tensor],
    *,
    device: torch.device,
    progress: bool | Callable[[int, int], None] = False,
    sink: Callable[[int, torch.Tensor], None] | None = None,
) -> torch.Tensor | None:
    """The weighted blend of ``run`` over the windows of ``plan`` of a (C, H, W) image padded to the plan's
    size; accumulated on ``device`` (where ``run`` returns its outputs). Returns (C', H s, W s).

    With ``sink``, the output is streamed instead: only one window's height of rows is held, and each block
    of finished rows goes to ``sink(row0, rows)`` (top to bottom, normalised exactly as the whole result
    would be); returns None. Memory is then bounded by the window, not the image.

    ``progress``: True for a tile progress bar, or a function called with (tiles done, tiles in all) after
    each batch of tiles (a service's progress record; what it raises stops the blend)."""
    s = scale
    wy = axis_weights(plan.rows, plan.win_h, s, plan.overlap, plan.margin)
    wx = axis_weights(plan.cols, plan.win_w, s, plan.overlap, plan.margin)
    sum_y = torch.zeros(plan.height * s)
    sum_x = torch.zeros(plan.width * s)
    for i, r in enumerate(plan.rows):
        sum_y[r.start * s : (r.start + plan.win_h) * s] += wy[i]
    for j, col in enumerate(plan.cols):
        sum_x[col.start * s : (col.start + plan.win_w) * s] += wx[j]
    sum_y, sum_x = sum_y.to(device), sum_x.to(device)

    def normalise(block: torch.Tensor, row0: int) -> torch.Tensor:
        n = block.shape[1]
        for r0 in range(0, n, 256):  # row blocks: no full-size weight-sum temporary
            r1 = min(n, r0 + 256)
            block[:, r0:r1] /= (sum_y[row0 + r0 : row0 + r1, None] * sum_x[None, :]).clamp_min(1e-12)
        return block

    band = plan.win_h * s
    a0 = 0  # streaming: ``out`` holds output rows [a0, a0 + band)

    def advance(new_a0: int) -> None:
        """Rows above ``new_a0`` are final (later windows start lower): hand them over, shift the rest up."""
        nonlocal a0
        n = min(new_a0 - a0, band)
        sink(a0, normalise(out[:, :n].clone(), a0))
        out[:, : band - n] = out[:, n:].clone()
        out[:, band - n :] = 0
        a0 = new_a0

    jobs = [(i, j) for i in range(len(plan.rows)) for j in range(len(plan.cols))]
    out = None
    bar = None
    report = progress if callable(progress) else None
    if progress and report is None:
        bar = progress_bar(len(jobs), "tiles")
    try:
        for k in range(0, len(jobs), plan.batch_size):
            chunk = jobs[k : k + plan.batch_size]
            batch = torch.stack(
                [
                    x[:, plan.rows[i].start : plan.rows[i].start + plan.win_h,
                      plan.cols[j].start : plan.cols[j].start + plan.win_w]
                    for i, j in chunk
                ]
            )  # fmt: skip
            sr = run(batch)
            if out is None:
                height = plan.height * s if sink is None else band
                out = torch.zeros(sr.shape[1], height, plan.width * s, device=device)
            for (i, j), tile_out in zip(chunk, sr):
                y0, x0 = plan.rows[i].start * s, plan.cols[j].start * s
                if sink is not None:
                    if y0 > a0:
                        advance(y0)
                    y0 -= a0
                wgt = (wy[i][:, None] * wx[j][None, :]).to(device)
                out[:, y0 : y0 + tile_out.shape[1], x0 : x0 + tile_out.shape[2]] += tile_out * wgt
            if bar is not None:
                bar.update(len(chunk))
            if report is not None:
                report(k + len(chunk), len(jobs))
    finally:
        if bar is not None:
            bar.close()
    if sink is None:
        return normalise(out, 0)
    sink(a0, normalise(out[:, : plan.height * s - a0], a0))
    return None


LOG_EVERY_S = 30.0
"""Seconds between progress lines where stderr is not a terminal (a log file has no progress bar)."""


class _LogLines:
    """tqdm's ``update``/``close`` as a line every :data:`LOG_EVERY_S` seconds: done, elapsed, time left."""

    def __init__(self, total: int, desc: str) -> None:
        self.total, self.desc, self.n = total, desc, 0
        self._clock = time.monotonic
        self.start = self.last = self._clock()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = self._clock()
        if now - self.last >= LOG_EVERY_S and self.n < self.total:
            self.last = now
            spent = now - self.start
            left = spent / self.n * (self.total - self.n)
            print(
                f"srlab: {self.desc} {self.n}/{self.total} ({100 * self.n / self.total:.0f}%), "
                f"{spent:.0f} s elapsed, about {left:.0f} s left",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        pass


def progress_bar(total: int, desc: str):
    """A tqdm bar on a terminal, else periodic log lines (:class:`_LogLines`)."""
    if sys.stderr.isatty():
        return tqdm(total=total, desc=desc, unit="tile", leave=False)
    return _LogLines(total, desc)
