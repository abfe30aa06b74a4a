"""Device faults while tiling, handled per tile batch: out of memory, and fp16/bf16 overflow.

:class:`TileRunner` is the ``run`` that :func:`~srlab.inference.tiling.blend_tiles` calls for each batch
of windows (and the one call of an untiled image):

- **out of memory** (``torch.OutOfMemoryError``, or a RuntimeError saying "out of memory", as MPS
  raises): the batch is redone window by window, each window cut into tiles of half the tile size,
  with the same context (``overlap``) and the same blend, recursively down to :data:`MIN_TILE`; below
  that the error goes up. Where the context covers the receptive radius the result is the same up to
  float rounding (the blend is exact there, see :mod:`srlab.inference.tiling`). The smaller size is
  remembered (:attr:`FaultState.tile_cap`): later batches and images are planned with it and do not
  fail again. PyTorch's caching allocator releases its cached blocks and retries before raising, so
  nothing is emptied here; the exception (and the frames that hold the batch's tensors) is dropped
  before the retry.
- **overflow** in fp16/bf16 (the "black image" of Real-ESRGAN's issue tracker: an activation past
  fp16's 65504 becomes inf, then NaN): each tile's output is checked for non-finite values and for
  values beyond :data:`SATURATED` (64x white: no image model outputs that; an overflow that saturated
  inside the network instead of reaching inf); such tiles alone are redone in fp32
  (``Engine.run(..., fp32=True)``), so the result is the fp32 result there and the fast path elsewhere.

What happened is said once per image (:meth:`FaultState.report`, as warnings, which ``srlab upscale``
prints as ``note:`` lines).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from srlab.inference.tiling import blend_tiles, make_plan

__all__ = ["MIN_TILE", "SATURATED", "FaultState", "TileRunner", "is_out_of_memory"]

MIN_TILE = 32
"""The smallest tile (LR pixels, without context) an out-of-memory retry goes down to."""

SATURATED = 64.0
"""A reduced-precision output value beyond this (images live in [0, 1]) marks its tile as overflowed."""


def is_out_of_memory(exc: BaseException) -> bool:
    oom = getattr(torch, "OutOfMemoryError", None)
    if oom is not None and isinstance(exc, oom):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


@dataclass
class FaultState:
    """What went wrong so far, per :class:`~srlab.inference.upscaler.Upscaler`."""

    tile_cap: int | None = None  # the tile size that fit after an out-of-memory error
    oom_from: int | None = None  # the failing window side, for the message (cleared by report)
    tiles: int = 0  # tiles run since the last report
    redone: int = 0  # of which redone in fp32
    precision: str = ""
    events: list[str] = field(default_factory=list)

    def report(self) -> None:
        """Warn about what happened since the last call (one line per kind), then forget it."""
        if self.oom_from is not None:
            warnings.warn(
                f"out of device memory with {self.oom_from}-pixel windows: retried with {self.tile_cap}-pixel "
                "tiles (same blend; later images start there)",
                stacklevel=3,
            )
        if self.redone:
            warnings.warn(
                f"{self.redone} of {self.tiles} tile(s) overflowed in {self.precision} (non-finite or "
                "saturated output): redone in fp32",
                stacklevel=3,
            )
        self.oom_from, self.tiles, self.redone = None, 0, 0


def _round_up(n: int, mult: int) -> int:
    return -(-n // mult) * mult


class TileRunner:
    """``runner(batch)`` -> the engine's output for a batch of windows, with the faults above handled.

    ``overlap``: the tile plan's context, kept for the smaller tiles of a retry (with the descriptor's
    receptive radius and size multiple); ``prep``: turns a sliced batch into the float input (e.g. uint8
    -> [0, 1]); ``keep``: outputs stay on the device (see ``Engine.run``).
    """

    def __init__(
        self,
        engine,
        state: FaultState,
        *,
        overlap: int,
        keep: bool = False,
        prep: Callable[[torch.Tensor], torch.Tensor] | None = None,
        floor: int = MIN_TILE,
    ) -> None:
        d = engine.descriptor
        self.engine, self.state, self.overlap = engine, state, overlap
        self.scale, self.radius, self.mult = (
            int(d.scale),
            int(d.receptive_radius),
            max(1, int(d.size_multiple)),
        )
        self.keep, self.prep, self.floor = keep, prep or (lambda b: b), floor
        state.precision = engine.precision

    def _fits_cap(self, side: int) -> bool:
        cap = self.state.tile_cap
        return cap is None or side <= _round_up(cap + 2 * self.overlap + self.mult - 1, self.mult)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        side = max(batch.shape[-2:])
        if not self._fits_cap(side):
            return self._subtiled(batch, self.state.tile_cap)
        try:
            return self._checked(batch)
        except Exception as exc:  # noqa: BLE001 - only out-of-memory is handled; the rest goes up as it is
            if not is_out_of_memory(exc):
                raise
            core = max(self.mult, side - 2 * self.overlap)
            if core <= self.floor:
                raise
        # outside the except block: the traceback, and the tensors its frames hold, are gone
        tile = max(self.floor, core // 2)
        if self.state.tile_cap is None or tile < self.state.tile_cap:
            self.state.tile_cap = tile
        if self.state.oom_from is None:
            self.state.oom_from = side
        return self._subtiled(batch, self.state.tile_cap)

    def _checked(self, batch: torch.Tensor) -> torch.Tensor:
        y = self.engine.run(self.prep(batch), keep=self.keep)
        self.state.tiles += len(batch)
        if not self.engine.reduced_precision:
            return y
        flat = y.flatten(1)
        bad = ~torch.isfinite(flat).all(1) | (flat.abs().amax(1) > SATURATED)
        idx = bad.nonzero().flatten().tolist()
        if idx:
            y[idx] = self.engine.run(self.prep(batch[idx]), keep=self.keep, fp32=True)
            self.state.redone += len(idx)
        return y

    def _subtiled(self, batch: torch.Tensor, tile: int) -> torch.Tensor:
        """Each window of ``batch`` as tiles of ``tile`` LR pixels, blended back to the window's output."""
        h, w = batch.shape[-2:]
        plan = make_plan(
            h,
            w,
            mult=self.mult,
            radius=self.radius,
            tile=tile,
            overlap=self.overlap,
            bytes_per_px=1,
            budget=1,
            batch_size=len(batch),
            on_cpu=False,
        )
        device = self.engine.device if self.keep else torch.device("cpu")
        outs = [blend_tiles(win, plan, self.scale, self, device=device) for win in batch]
        return torch.stack(outs)
