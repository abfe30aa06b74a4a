"""NIQE (Mittal, Soundararajan and Bovik 2013, "Making a 'Completely Blind' Image Quality Analyzer").

No reference image: lower is better. The MATLAB release's computation as BasicSR reproduces it
(``basicsr/metrics/niqe.py``, which matches MATLAB R2021a to 1e-6 on its test image): the Y channel
(MATLAB ``rgb2ycbcr``) rounded to integers, cropped to whole 96x96 blocks; at two scales (the second made
with MATLAB's antialiased bicubic ``imresize`` by 1/2) the locally normalised luminance (7x7 Gaussian
window, replicated borders) of each block gives 18 AGGD features (shape, scale, and the same for the four
neighbour products); the distance between the MVG fitted to the blocks and the pristine MVG
(:mod:`srlab.eval.perceptual.assets`, ``niqe``) is the score.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache

import numpy as np
import torch

from srlab.errors import WeightsError
from srlab.eval.perceptual.assets import require
from srlab.imaging.resize import imresize

__all__ = ["BLOCK", "NIQE", "niqe"]

BLOCK = 96


@lru_cache(maxsize=1)
def _gamma_table() -> tuple[np.ndarray, np.ndarray]:
    gam = np.arange(0.2, 10.001, 0.001)
    lg = np.vectorize(math.lgamma)
    r = np.exp(2 * lg(2 / gam) - lg(1 / gam) - lg(3 / gam))
    return gam, r


def _aggd(block: np.ndarray) -> tuple[float, float, float]:
    """Asymmetric generalised Gaussian fit (moment matching on the grid 0.2:0.001:10): alpha, beta_l, beta_r."""
    b = block.ravel()
    gam, r_gam = _gamma_table()
    left = math.sqrt(np.mean(b[b < 0] ** 2))
    right = math.sqrt(np.mean(b[b > 0] ** 2))
    g = left / right
    rhat = np.mean(np.abs(b)) ** 2 / np.mean(b**2)
    rnorm = (rhat * (g**3 + 1) * (g + 1)) / ((g**2 + 1) ** 2)
    alpha = float(gam[np.argmin((r_gam - rnorm) ** 2)])
    k = math.sqrt(math.gamma(1 / alpha) / math.gamma(3 / alpha))
    return alpha, left * k, right * k


def _features(block: np.ndarray) -> list[float]:
    alpha, bl, br = _aggd(block)
    feat = [alpha, (bl + br) / 2]
    for shift in ((0, 1), (1, 0), (1, 1), (1, -1)):
        alpha, bl, br = _aggd(block * np.roll(block, shift, axis=(0, 1)))
        mean = (br - bl) * (math.gamma(2 / alpha) / math.gamma(1 / alpha))
        feat += [alpha, mean, bl, br]
    return feat


def _filter(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """scipy.ndimage.convolve(x, w, mode='nearest') for a symmetric odd window."""
    r = w.shape[0] // 2
    p = np.pad(x, r, mode="edge")
    h, wd = x.shape
    out = np.zeros_like(x)
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            out += w[i, j] * p[i : i + h, j : j + wd]
    return out


class NIQE:
    """The pristine model (``mu`` (36,), ``cov`` (36, 36)) and the 7x7 window; call it on a Y image."""

    def __init__(self, mu: np.ndarray, cov: np.ndarray, window: np.ndarray) -> None:
        self.mu = np.asarray(mu, np.float64).reshape(-1)
        self.cov = np.asarray(cov, np.float64)
        self.window = np.asarray(window, np.float64)
        if self.mu.shape != (36,) or self.cov.shape != (36, 36) or self.window.shape != (7, 7):
            raise WeightsError("NIQE parameters must be mu (36,), cov (36, 36) and a 7x7 window")

    @classmethod
    def load(cls, path: str | os.PathLike) -> NIQE:
        """From BasicSR's ``niqe_pris_params.npz`` (read without pickles)."""
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls(z["mu_pris_param"], z["cov_pris_param"], z["gaussian_window"])
        except (OSError, ValueError, KeyError) as exc:
            raise WeightsError(
                f"{path}: not BasicSR's niqe_pris_params.npz ({type(exc).__name__}: {exc}); delete it and run "
                "the command again to download it"
            ) from None

    def __call__(self, y: np.ndarray) -> float:
        """NIQE of a Y (or grey) image (H, W) on 0-255, already rounded. ValueError below two 96x96 blocks."""

        # Single precision, as MATLAB's niqe computes (the image is converted to single): in float64 the
        # AGGD grid search lands on other grid points for some blocks and the score moves by ~4e-4.
        img = np.asarray(y, np.float64).astype(np.float32)
        nh, nw = img.shape[0] // BLOCK, img.shape[1] // BLOCK
        if nh * nw < 2:
            raise ValueError(
                f"NIQE needs at least two {BLOCK}x{BLOCK} blocks; the image is {img.shape[1]}x{img.shape[0]}"
            )
        img = img[: nh * BLOCK, : nw * BLOCK]
        feats = []
        for scale in (1, 2):
            mu = _filter(img.astype(np.float64), self.window).astype(np.float32)
            sq = _filter((img * img).astype(np.float64), self.window).astype(np.float32)
            sigma = np.sqrt(np.abs(sq - mu * mu))
            norm = (img - mu) / (sigma + 1)
            bs = BLOCK // scale
            feats.append(
                np.array(
                    [
                        _features(norm[ih * bs : (ih + 1) * bs, iw * bs : (iw + 1) * bs])
                        for iw in range(nw)
                        for ih in range(nh)
                    ]
                )
            )
            if scale == 1:
                t = torch.from_numpy(img / np.float32(255.0))
                img = (imresize(t, 0.5, antialias=True).numpy() * 255.0).astype(np.float32)
        dist = np.concatenate(feats, axis=1)
        mu_d = np.nanmean(dist, axis=0)
        cov_d = np.cov(dist[~np.isnan(dist).any(axis=1)], rowvar=False)
        inv = np.linalg.pinv((self.cov + cov_d) / 2)
        d = self.mu - mu_d
        return float(np.sqrt(d @ inv @ d))


def niqe(y: np.ndarray, path: str | os.PathLike | None = None) -> float:
    """NIQE of a rounded Y image with the published parameters (downloaded on first use)."""

    return NIQE.load(path or require("niqe", metric="NIQE"))(y)
