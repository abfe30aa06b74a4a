"""Image-folder training sets, decoded once and held in memory.

:class:`SRTrainSet` reads a folder of HR images (and optionally a folder of matching LR images), keeps the
decoded pixels in memory as uint8 and serves ``(lr, hr)`` pairs of float32 CHW arrays in [0, 1]:

- **LR**: synthesised from HR by a named degradation of :mod:`srlab.imaging.resize` (``bicubic`` = MATLAB
  ``imresize``, ``study`` = the study's bilinear) on the whole image once, optionally rounded to uint8 (the
  standard protocol), or read from a paired LR folder (same file stem, optionally with an ``x{s}`` suffix;
  each LR exactly the modcropped HR / scale, else :class:`~srlab.errors.DataError`);
  or, with ``lr_on_device=True``, left to :func:`synthesize_lr` on the batch (on the GPU).
- **Sampling** (``mode``): ``random`` crops (aligned to the scale, LR cut from the whole-image LR),
  ``center`` crops (the study protocol: HR = centre crop, LR made from the crop), ``subimages`` (the SRCNN
  paper: every ``crop``-sized window on a ``stride`` grid is one item) or ``full`` images.
- **Augmentation**: horizontal/vertical flips and transposition (with flips: all 8 rotations/reflections).
- **Colour**: ``rgb`` or ``y`` (MATLAB BT.601 luma of the RGB images; LR luma from the rounded RGB LR).
- **Pre-upsampled inputs** (``pre_upsample='bicubic'|'bilinear'``): the LR of each whole image is
  interpolated back to the HR size once and items are cut from it (SRCNN paper's sub-images; train with
  ``SRCNN.forward_upsampled``).
- **Bad data**: unreadable files are skipped and counted (:attr:`SRTrainSet.skipped`); images smaller than
  the crop are skipped or padded (symmetric) per ``small``; a missing or empty folder is one
  :class:`~srlab.errors.DataError`.

Items are addressed by position in an endless *stream*: :class:`SampleStream` maps stream position ``p`` to
epoch ``p // N`` and to the item at ``p % N`` of that epoch's permutation (a pure function of seed and epoch),
and per-item randomness (crop position, flips) comes from a generator seeded by ``(seed, p)``. The data order
is therefore a pure function of ``(seed, iteration)``: resuming and multi-process sharding need no state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from srlab.data.pairs import PairedFiles, find_pairs
from srlab.errors import DataError, ImageError
from srlab.imaging.color import rgb_to_y
from srlab.imaging.io import read_image
from srlab.imaging.resize import get_degradation, quantize, upsample

MODES = ("random", "center", "subimages", "full")
# the degradation made batch-wise by srlab.data.degradations (not a fixed resize of srlab.imaging.resize)
REALESRGAN = "realesrgan"

__all__ = [
    "MODES",
    "REALESRGAN",
    "SRTrainSet",
    "SampleStream",
    "item_rng",
    "stack_items",
    "load_rgb_uint8",
    "synthesize_lr",
]


def load_rgb_uint8(path: Path) -> np.ndarray:
    """Decode an image to HxWx3 uint8 (grey replicated, 16 bit reduced, alpha dropped). ImageError if bad."""
    px = read_image(path).pixels
    if px.dtype == np.uint16:
        px = ((px.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if px.ndim == 2:
        px = px[:, :, None]
    if px.shape[2] == 1:
        px = np.repeat(px, 3, axis=2)
    return np.ascontiguousarray(px[:, :, :3])


def _check_pair(hr: np.ndarray, lr: np.ndarray, scale: int, hr_path: Path, lr_path: Path) -> np.ndarray:
    """The HR modcropped to a multiple of ``scale``; DataError unless ``lr`` is exactly that size / scale.

    Anything else (an LR folder of HR-sized images, another scale, a resized or cropped copy) would train on
    misaligned pairs, so it is refused rather than cropped to fit.
    """
    h, w = hr.shape[0] // scale, hr.shape[1] // scale
    if lr.shape[:2] != (h, w):
        raise DataError(
            f"LR image {lr_path} is {lr.shape[1]}x{lr.shape[0]}, expected {w}x{h} (HR {hr_path.name} "
            f"{hr.shape[1]}x{hr.shape[0]} / {scale} after modcrop); a paired LR folder must hold the HR images "
            "downscaled by the scale: check data.train_lr and scale"
        )
    return hr[: h * scale, : w * scale]


def _rgb_to_y(a: np.ndarray) -> np.ndarray:
    """MATLAB rgb2ycbcr luma of HxWx3 (0-255 scale, float64 math) -> HxW float32 on the 0-255 scale."""

    t = torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))).to(torch.float64)
    return rgb_to_y(t)[0].numpy().astype(np.float32)


def _degrade_whole(hr: np.ndarray, scale: int, degradation: str, quantize_lr: bool) -> np.ndarray:
    """HR HxWx3 uint8 -> LR HxWx3 (uint8 when rounded, else float32 on the 0-255 scale), in float64."""

    deg = get_degradation(degradation)
    t = torch.from_numpy(np.ascontiguousarray(hr.transpose(2, 0, 1))).to(torch.float64)[None]
    lr = deg(t, scale)[0]
    if quantize_lr:
        return quantize(lr).to(torch.uint8).numpy().transpose(1, 2, 0).copy()
    return lr.to(torch.float32).numpy().transpose(1, 2, 0).copy()


def _upsample_whole(lr: np.ndarray, scale: int, method: str) -> np.ndarray:
    """LR HxWxC (0-255) -> interpolated (sH)x(sW)xC float32, as the model's own upsampler would do."""

    t = torch.from_numpy(np.ascontiguousarray(lr.transpose(2, 0, 1))).to(torch.float64)[None]
    return upsample(t, scale, method)[0].to(torch.float32).numpy().transpose(1, 2, 0).copy()


def synthesize_lr(
    hr,
    scale: int,
    degradation: str = "bicubic",
    *,
    quantize_lr: bool = True,
    color: str = "rgb",
):
    """Batch-wise LR synthesis on the batch's device: ``hr`` (N, 3, H, W) float in [0, 1] RGB.

    Returns ``(lr, hr)`` in the requested colour (``y`` converts both after degrading the RGB), [0, 1].
    """

    x = hr * 255.0
    lr = get_degradation(degradation)(x, scale)
    if quantize_lr:
        lr = quantize(lr)
    if color == "y":
        return rgb_to_y(lr) / 255.0, rgb_to_y(x) / 255.0
    return lr / 255.0, hr


@dataclass
class _Item:
    image: int
    y: int  # top-left in HR (or pre-upsampled) coordinates; -1 for random positions
    x: int


class SampleStream:
    """Endless stream of item indices: epoch ``e`` is a permutation of ``range(n)`` seeded by (seed, e).

    Position ``p`` of the stream is item ``perm(p // n)[p % n]``. Rank ``r`` of ``world`` processes takes,
    at step ``t`` with per-process batch ``b``, the positions ``t*b*world + r*b ... + b``.
    """

    def __init__(self, n: int, seed: int = 0, shuffle: bool = True) -> None:
        if n <= 0:
            raise DataError("the training set is empty")
        self.n, self.seed, self.shuffle = int(n), int(seed), bool(shuffle)
        self._epoch, self._perm = -1, np.arange(n)

    def permutation(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.n)
        if epoch != self._epoch:
            self._perm = np.random.default_rng([self.seed, epoch, 0x5EED]).permutation(self.n)
            self._epoch = epoch
        return self._perm

    def item(self, position: int) -> int:
        return int(self.permutation(position // self.n)[position % self.n])

    def positions(self, step: int, batch: int, rank: int = 0, world: int = 1) -> list[int]:
        start = (step * world + rank) * batch
        return list(range(start, start + batch))

    def epoch_of(self, step: int, batch: int, world: int = 1) -> tuple[int, int]:
        """(epoch, position within the epoch) of the first sample of global step ``step``."""
        p = step * batch * world
        return p // self.n, p % self.n


class SRTrainSet:
    """An in-memory super-resolution training set (see the module docstring)."""

    def __init__(
        self,
        hr_dir: Path | str,
        *,
        scale: int,
        lr_dir: Path | str | None = None,
        degradation: str = "bicubic",
        quantize_lr: bool = True,
        mode: str = "random",
        crop: int = 128,
        stride: int = 0,
        color: str = "rgb",
        flip: bool = True,
        rot90: bool = True,
        small: str = "skip",
        pre_upsample: str | None = None,
        lr_on_device: bool = False,
        max_images: int = 0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        if mode not in MODES:
            raise DataError(f"unknown data mode {mode!r}; use one of {', '.join(MODES)}")
        if color not in ("rgb", "y"):
            raise DataError(f"unknown colour {color!r}; use rgb or y")
        if small not in ("skip", "pad"):
            raise DataError(f"data.small must be 'skip' or 'pad', not {small!r}")
        if degradation == REALESRGAN:
            lr_on_device = True  # per-sample random degradations are made on the batch
        if lr_on_device and (lr_dir is not None or pre_upsample):
            raise DataError(
                "lr_on_device synthesises LR on the batch: it excludes a paired LR folder and pre_upsample"
            )
        self.scale, self.mode, self.crop = int(scale), mode, int(crop)
        self.stride = int(stride) or int(crop)
        self.color, self.flip, self.rot90, self.small = color, bool(flip), bool(rot90), small
        self.pre_upsample, self.lr_on_device = pre_upsample, bool(lr_on_device)
        self.degradation, self.quantize_lr = degradation, bool(quantize_lr)
        s = self.scale
        # Crops are cut at positions on the LR grid unless the inputs are pre-upsampled.
        self.align = 1 if pre_upsample else s
        if mode != "full" and self.crop % self.align:
            raise DataError(
                f"crop {self.crop} is not a multiple of the scale {s}; use a multiple (or pre_upsample)"
            )
        if mode == "subimages" and self.stride % self.align:
            raise DataError(f"stride {self.stride} is not a multiple of the scale {s}")
        say = log or (lambda _m: None)

        found = find_pairs(hr_dir, s, lr_dir)
        if found.paired and lr_dir is None and (self.lr_on_device or degradation != "bicubic"):
            # LR files found by layout are bicubic or real camera pairs: another degradation asked for by
            # name is made, not silently replaced by them
            say(f"data: {hr_dir} holds LR images ({found.layout}), unused: LR is made by {degradation}")
            found = PairedFiles(found.hr, [None] * len(found.hr), "hr only")
        self.paired, self.layout = found.paired, found.layout
        if self.paired and mode == "center" and self.crop % s:
            raise DataError(
                f"crop {self.crop} is not a multiple of the scale {s}: a paired LR cannot match it"
            )
        if self.paired:
            say(f"data: LR images from {found.layout}")
        hr_files, lr_files = found.hr, found.lr
        if max_images:
            hr_files, lr_files = hr_files[:max_images], lr_files[:max_images]

        self.hr: list[np.ndarray] = []  # HxWx3 uint8
        self.lr: list[np.ndarray | None] = []  # hxwx3 uint8 (or float32 when not rounded), None on device
        self.inp: list[np.ndarray] = []  # model inputs, float32 0-255, HxWxC (C = 1 for y)
        self.tgt: list[np.ndarray] = []  # targets (y: float32 0-255 HxWx1; rgb: the uint8 HR)
        self.names: list[str] = []
        self.skipped: dict[str, list[str]] = {"unreadable": [], "too small": [], "unpaired": []}
        for f, lp in zip(hr_files, lr_files):
            try:
                hr = load_rgb_uint8(f)
            except ImageError as exc:
                self.skipped["unreadable"].append(f"{f.name} ({str(exc).split(': ', 1)[-1]})")
                continue
            lr = None
            if self.paired:
                if lp is None:
                    self.skipped["unpaired"].append(f.name)
                    continue
                try:
                    lr = load_rgb_uint8(lp)
                except ImageError as exc:
                    self.skipped["unreadable"].append(f"{lp.name} ({str(exc).split(': ', 1)[-1]})")
                    continue
                hr = _check_pair(hr, lr, s, f, lp)
            hr, lr = self._fit(hr, f.name, lr)
            if hr is None:
                continue
            if not self.paired and not self.lr_on_device:
                hr = hr[: hr.shape[0] - hr.shape[0] % s, : hr.shape[1] - hr.shape[1] % s]
                lr = _degrade_whole(hr, s, degradation, quantize_lr)
            self.hr.append(hr)
            self.lr.append(lr)
            self.names.append(f.name)
        n_skip = sum(len(v) for v in self.skipped.values())
        if n_skip:
            detail = "; ".join(
                f"{k}: {len(v)} ({', '.join(v[:3])}{', ...' if len(v) > 3 else ''})"
                for k, v in self.skipped.items()
                if v
            )
            say(f"data: skipped {n_skip} of {len(hr_files)} images in {hr_dir} -- {detail}")
        if not self.hr:
            raise DataError(
                f"no usable training image in {hr_dir} ({n_skip} skipped: "
                + ", ".join(f"{len(v)} {k}" for k, v in self.skipped.items() if v)
                + "); check the folder and data.crop/data.small"
            )
        self._prepare_arrays()
        self.items = self._index()
        if not self.items:
            raise DataError(
                f"no {self.crop}x{self.crop} item fits in the images of {hr_dir}; lower data.crop"
            )
        say(
            f"data: {len(self.hr)} images from {hr_dir} ({self.nbytes() / 2**20:.1f} MiB in memory), "
            f"{len(self.items)} items ({self.mode}, crop {self.crop}, x{s}, {self.color}"
            + (
                f", LR {degradation} on the fly"
                if self.lr_on_device
                else f", LR {'paired' if self.paired else degradation}"
            )
            + ")"
        )

    # ------------------------------------------------------------------------------------------ loading
    def _fit(
        self, hr: np.ndarray, name: str, lr: np.ndarray | None = None
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Centre-crop (mode center), or skip/pad images smaller than the crop; a paired ``lr`` (HR/scale) gets
        the same crop or padding, on the LR grid, so the pair stays aligned."""
        c, h, w = self.crop, hr.shape[0], hr.shape[1]
        g = self.scale if lr is not None else 1  # the grid offsets snap to
        if self.mode == "full":
            return hr, lr
        if h < c or w < c:
            if self.small == "skip":
                self.skipped["too small"].append(f"{name} {w}x{h}")
                return None, None
            ph, pw = -(-max(0, c - h) // g) * g, -(-max(0, c - w) // g) * g
            top, left = ph // 2 - (ph // 2) % g, pw // 2 - (pw // 2) % g
            hr = np.pad(hr, ((top, ph - top), (left, pw - left), (0, 0)), mode="symmetric")
            if lr is not None:
                pads = ((top // g, (ph - top) // g), (left // g, (pw - left) // g), (0, 0))
                lr = np.pad(lr, pads, mode="symmetric")
            h, w = hr.shape[:2]
        if self.mode == "center":
            # OpenCV-style centre crop as the study made them: x = W/2 - c/2, y = H/2 - c/2 (on the LR grid
            # for a paired LR folder).
            y0, x0 = h // 2 - c // 2, w // 2 - c // 2
            y0, x0 = y0 - y0 % g, x0 - x0 % g
            hr = np.ascontiguousarray(hr[y0 : y0 + c, x0 : x0 + c])
            if lr is not None:
                lr = np.ascontiguousarray(lr[y0 // g : (y0 + c) // g, x0 // g : (x0 + c) // g])
        return hr, lr

    def _prepare_arrays(self) -> None:
        s = self.scale
        for i, (hr, lr) in enumerate(zip(self.hr, self.lr)):
            if self.lr_on_device:
                self.inp.append(np.empty((0, 0, 3), np.uint8))
                self.tgt.append(hr)
                continue
            src, tgt = lr, hr
            if self.color == "y":
                src, tgt = _rgb_to_y(lr)[:, :, None], _rgb_to_y(hr)[:, :, None]
            if self.pre_upsample:
                src = _upsample_whole(src, s, self.pre_upsample)
            self.inp.append(src)
            self.tgt.append(tgt)
            if src is not lr:  # the derived float arrays replace the RGB LR
                self.lr[i] = None

    def _index(self) -> list[_Item]:
        items: list[_Item] = []
        c, st = self.crop, self.stride
        for i, hr in enumerate(self.tgt):
            h, w = hr.shape[:2]
            if self.mode in ("random", "center", "full"):
                if self.mode == "random" and (h < c or w < c):
                    continue
                items.append(_Item(i, -1, -1))
            else:  # subimages
                ys = range(0, h - c + 1, st)
                xs = range(0, w - c + 1, st)
                items += [_Item(i, y, x) for y in ys for x in xs]
        return items

    def nbytes(self) -> int:
        arrays = {id(a): a for a in [*self.hr, *(a for a in self.lr if a is not None), *self.inp, *self.tgt]}
        return int(sum(a.nbytes for a in arrays.values()))

    def __len__(self) -> int:
        return len(self.items)

    def fingerprint(self) -> str:
        """A digest of what was loaded: the names, sizes and a regular sample of the pixels of every model
        input and target, and the item count -- a resumed run compares it to tell that its data changed."""

        h = hashlib.blake2b(digest_size=12)
        h.update(f"{len(self.items)}|{self.mode}|{self.scale}".encode())
        for name, inp, tgt in zip(self.names, self.inp, self.tgt):
            h.update(f"|{name}|{inp.shape}|{tgt.shape}|".encode())
            for a in (inp, tgt):
                h.update(np.ascontiguousarray(a[::4, ::4]).tobytes())
        return h.hexdigest()

    @property
    def channels(self) -> int:
        return 1 if self.color == "y" else 3

    # ----------------------------------------------------------------------------------------- sampling
    def get(self, index: int, rng: np.random.Generator | None = None) -> tuple[np.ndarray | None, np.ndarray]:
        """Item ``index`` as ``(lr, hr)`` float32 CHW arrays in [0, 1] (``lr`` is None with lr_on_device)."""
        it = self.items[index]
        tgt, inp = self.tgt[it.image], self.inp[it.image]
        c = self.crop
        up = 1 if self.pre_upsample else self.scale
        if self.mode == "random":
            h, w = tgt.shape[:2]
            rng = rng if rng is not None else np.random.default_rng()
            y = int(rng.integers(0, (h - c) // self.align + 1)) * self.align
            x = int(rng.integers(0, (w - c) // self.align + 1)) * self.align
        elif self.mode == "subimages":
            y, x = it.y, it.x
        else:  # center (cropped at load time) and full
            y, x, c = 0, 0, None
        if c is None:
            hr_crop, lr_crop = tgt, inp
        else:
            hr_crop = tgt[y : y + c, x : x + c]
            lr_crop = inp[y // up : (y + c) // up, x // up : (x + c) // up]
        if self.lr_on_device:
            lr_crop = None
        hr_crop, lr_crop = self._augment(hr_crop, lr_crop, rng)
        hr_t = np.ascontiguousarray(hr_crop.transpose(2, 0, 1), dtype=np.float32) / np.float32(255)
        lr_t = None
        if lr_crop is not None:
            lr_t = np.ascontiguousarray(lr_crop.transpose(2, 0, 1), dtype=np.float32) / np.float32(255)
        return lr_t, hr_t

    def _augment(self, hr, lr, rng):
        if not (self.flip or self.rot90):
            return hr, lr
        rng = rng if rng is not None else np.random.default_rng()
        r = rng.random(3)
        ops = []
        if self.flip and r[0] < 0.5:
            ops.append(lambda a: a[:, ::-1])
        if self.flip and r[1] < 0.5:
            ops.append(lambda a: a[::-1])
        if self.rot90 and r[2] < 0.5:
            ops.append(lambda a: a.transpose(1, 0, 2))
        for op in ops:
            hr = op(hr)
            lr = None if lr is None else op(lr)
        return hr, lr

    def batch(self, stream: SampleStream, positions: Sequence[int], seed: int = 0):
        """Stack the items at the given stream positions into ``(lr, hr)`` torch tensors (lr None on device)."""
        return stack_items([self.get(stream.item(p), item_rng(seed, p)) for p in positions])


def item_rng(seed: int, position: int) -> np.random.Generator:
    """The generator of the per-item randomness (crop, flips) of stream position ``position``."""
    return np.random.default_rng([int(seed), int(position), 0xC509])


def stack_items(items: Sequence[tuple[np.ndarray | None, np.ndarray]]):
    """``(lr, hr)`` CHW arrays -> batched torch tensors (lr None when the items have none)."""

    lrs, hrs = [a for a, _ in items], [b for _, b in items]
    if len({h.shape for h in hrs}) > 1:
        raise DataError(
            "images of different sizes cannot be batched in mode 'full'; use batch_size 1 or a crop mode"
        )
    hr_b = torch.from_numpy(np.stack(hrs))
    lr_b = None if lrs[0] is None else torch.from_numpy(np.stack(lrs))
    return lr_b, hr_b
