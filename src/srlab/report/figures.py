"""Report figures (PNG): comparison panels with zoomed insets, training curves, per-image distributions.

matplotlib is an optional dependency (the ``report`` extra): it is imported inside each function, with the
non-interactive Agg backend, so importing this module costs nothing. Inputs are plain numpy arrays and
lists -- this module knows nothing about models or data sets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from srlab.atomic import atomic_path
from srlab.errors import SrlabError

__all__ = [
    "Tile",
    "choose_inset",
    "is_validation_series",
    "save_distribution",
    "save_panel",
    "save_training_curves",
]

# Colour-blind-safe palette (Okabe & Ito) for the curves and distributions.
_PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]


def _save(fig, path: str | Path, dpi: int) -> Path:
    """Write ``fig`` to ``path`` (creating its folder) and close it."""
    import matplotlib.pyplot as plt

    out = Path(path)
    try:
        with atomic_path(out, suffix=out.suffix) as tmp:
            fig.savefig(tmp, dpi=dpi)
    finally:
        plt.close(fig)
    return out


def _plt():
    try:
        import matplotlib
    except ImportError:  # pragma: no cover - depends on the environment
        raise SrlabError(
            "figures need matplotlib: pip install 'srlab[report]' (or pip install matplotlib)"
        ) from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


@dataclass
class Tile:
    """One column of a panel: a label, an image (HxW or HxWxC uint8) and a caption (e.g. PSNR / SSIM)."""

    label: str
    image: np.ndarray
    caption: str = ""


def _as_rgb_uint8(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img)
    if a.dtype != np.uint8:
        if np.issubdtype(a.dtype, np.floating):
            a = np.clip(np.round(a * 255.0 if a.max() <= 1.0 else a), 0, 255).astype(np.uint8)
        else:
            a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    return a[:, :, :3]


def _nearest_to(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Nearest-neighbour resize (for showing an LR image at the HR size, pixels visible as blocks)."""
    if img.shape[:2] == (h, w):
        return img
    ys = np.minimum((np.arange(h) * img.shape[0]) // h, img.shape[0] - 1)
    xs = np.minimum((np.arange(w) * img.shape[1]) // w, img.shape[1] - 1)
    return img[ys][:, xs]


def _trailing_mean(y: np.ndarray, k: int) -> np.ndarray:
    """Mean over the last ``k`` values (fewer at the start), so the curve has no edge artefacts."""
    c = np.concatenate([[0.0], np.cumsum(y)])
    i = np.arange(1, len(y) + 1)
    lo = np.maximum(0, i - k)
    return (c[i] - c[lo]) / (i - lo)


def choose_inset(hr: np.ndarray, size: int | None = None) -> tuple[int, int, int, int]:
    """A square region ``(top, left, height, width)`` of ``hr`` with the most detail (gradient energy).

    ``size`` defaults to a quarter of the shorter side (at least 8 pixels). Deterministic.
    """
    a = _as_rgb_uint8(hr).astype(np.float64).mean(axis=2)
    h, w = a.shape
    s = int(size or max(8, min(h, w) // 4))
    s = min(s, h, w)
    gy = np.abs(np.diff(a, axis=0, append=a[-1:, :]))
    gx = np.abs(np.diff(a, axis=1, append=a[:, -1:]))
    e = gy + gx
    # Sum of energy in every s x s window through an integral image; stride s/4 keeps it cheap.
    ii = np.pad(e.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    step = max(1, s // 4)
    best, best_yx = -1.0, (0, 0)
    for y in range(0, h - s + 1, step):
        for x in range(0, w - s + 1, step):
            v = ii[y + s, x + s] - ii[y, x + s] - ii[y + s, x] + ii[y, x]
            if v > best:
                best, best_yx = v, (y, x)
    return best_yx[0], best_yx[1], s, s


def save_panel(
    path: str | Path,
    tiles: Sequence[Tile],
    box: tuple[int, int, int, int],
    *,
    title: str = "",
    footnote: str = "",
    dpi: int = 110,
) -> Path:
    """A side-by-side panel: top row the whole images with the inset box drawn, bottom row the inset.

    Every tile is shown at the size of the largest one (smaller ones -- the LR input -- are enlarged with
    nearest neighbour so their pixels stay visible), so ``box`` = ``(top, left, height, width)`` is in the
    coordinates of the largest image and marks the same region in every column.
    """
    plt = _plt()
    from matplotlib.patches import Rectangle

    imgs = [_as_rgb_uint8(t.image) for t in tiles]
    H = max(i.shape[0] for i in imgs)
    W = max(i.shape[1] for i in imgs)
    imgs = [_nearest_to(i, H, W) for i in imgs]
    top, left, bh, bw = box
    n = len(imgs)
    col_w = 2.3
    img_h = col_w * H / W
    fig_h = img_h + col_w * bh / bw + 0.9 + (0.35 if title else 0) + (0.3 if footnote else 0)
    fig, axes = plt.subplots(
        2,
        n,
        figsize=(col_w * n, fig_h),
        gridspec_kw={"height_ratios": [img_h, col_w * bh / bw]},
        squeeze=False,
    )
    for j, (tile, img) in enumerate(zip(tiles, imgs)):
        ax = axes[0][j]
        ax.imshow(img, interpolation="nearest")
        ax.add_patch(
            Rectangle((left - 0.5, top - 0.5), bw, bh, fill=False, edgecolor="#ff2020", linewidth=1.4)
        )
        ax.set_title(tile.label, fontsize=9)
        ax.set_axis_off()
        ax = axes[1][j]
        ax.imshow(img[top : top + bh, left : left + bw], interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        for side in ax.spines.values():
            side.set_edgecolor("#ff2020")
        ax.set_xlabel(tile.caption, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    if footnote:
        fig.text(0.5, 0.01, footnote, ha="center", va="bottom", fontsize=7, color="#444444", wrap=True)
    fig.tight_layout(rect=(0, 0.03 if footnote else 0, 1, 1))
    return _save(fig, path, dpi)


def is_validation_series(name: str) -> bool:
    """True for validation metrics (``val_psnr``, ``gan val_psnr``), False for losses (``psnr l_pix``)."""
    return name.split()[-1].lower().startswith("val")


def save_training_curves(
    path: str | Path,
    runs: Mapping[str, Mapping[str, tuple[Sequence[float], Sequence[float]]]],
    *,
    title: str = "Training curves",
    dpi: int = 110,
) -> Path:
    """Training losses and validation PSNR against iteration.

    ``runs`` maps a run label to ``{series name: (iterations, values)}``. Series whose name's last word
    starts with ``val`` (``val_psnr``, ``gan val_psnr``) go to the validation panel; all others are plotted
    as losses (log scale when positive).
    """
    plt = _plt()
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(11, 4.2))
    color_of: dict[str, str] = {}
    any_loss = any_val = False
    for i, (run, series) in enumerate(runs.items()):
        color_of[run] = _PALETTE[i % len(_PALETTE)]
        styles = ["-", "--", ":", "-."]
        k = 0
        for name, (xs, ys) in series.items():
            xs_a = np.asarray(xs, dtype=np.float64)
            ys_a = np.asarray(ys, dtype=np.float64)
            ok = np.isfinite(ys_a)
            if not ok.any():
                continue
            if is_validation_series(name):
                ax_val.plot(xs_a[ok], ys_a[ok], "-o", ms=3, color=color_of[run], label=f"{run}: {name}")
                any_val = True
            else:
                y = ys_a[ok]
                if len(y) > 50:  # light smoothing for readability; raw values stay in the logs
                    y = _trailing_mean(y, max(1, len(y) // 50))
                ax_loss.plot(xs_a[ok], y, styles[k % 4], lw=1.1, color=color_of[run], label=f"{run}: {name}")
                k += 1
                any_loss = True
    ax_loss.set_title("training losses", fontsize=10)
    ax_loss.set_xlabel("iteration")
    if any_loss:
        try:
            ax_loss.set_yscale("log")
        except ValueError:  # pragma: no cover - non-positive values
            pass
        ax_loss.legend(fontsize=6.5, loc="upper right")
    else:
        ax_loss.text(0.5, 0.5, "no loss logged", ha="center", transform=ax_loss.transAxes)
    ax_val.set_title("validation PSNR (dB)", fontsize=10)
    ax_val.set_xlabel("iteration")
    if any_val:
        ax_val.legend(fontsize=6.5, loc="lower right")
    else:
        ax_val.text(0.5, 0.5, "no validation logged", ha="center", transform=ax_val.transAxes)
    for ax in (ax_loss, ax_val):
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _save(fig, path, dpi)


def save_distribution(
    path: str | Path,
    data: Mapping[str, Sequence[float]],
    *,
    title: str = "",
    ylabel: str = "PSNR (dB)",
    dpi: int = 110,
) -> Path:
    """Per-image values per model: a box plot with every image drawn as a point (deterministic jitter)."""
    plt = _plt()
    labels = [k for k, v in data.items() if len(v)]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(labels) + 2), 4.2))
    if labels:
        vals = [np.asarray(data[k], dtype=np.float64) for k in labels]
        ax.boxplot(vals, showfliers=False, widths=0.5, medianprops={"color": "#222222"})
        for i, v in enumerate(vals):
            # golden-ratio jitter: deterministic, evenly spread
            jit = ((np.arange(len(v)) * 0.618034) % 1.0 - 0.5) * 0.3
            ax.scatter(
                np.full(len(v), i + 1.0) + jit,
                v,
                s=12,
                alpha=0.75,
                color=_PALETTE[i % len(_PALETTE)],
                zorder=3,
            )
            ax.text(i + 1, np.nanmax(v), f"{np.nanmean(v):.2f}", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(1, len(labels) + 1))
        ax.set_xticklabels(labels, rotation=20, ha="right", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no data", ha="center", transform=ax.transAxes)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path, dpi)
