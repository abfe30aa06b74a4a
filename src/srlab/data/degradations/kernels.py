"""Blur kernels of Real-ESRGAN's degradation model, as normalised (k, k) float64 numpy arrays.

With ``Σ = R(θ) diag(σx², σy²) R(θ)ᵀ`` and ``q(x) = xᵀ Σ⁻¹ x`` over the integer grid centred on the middle
tap (``k`` odd):

- Gaussian: ``exp(-q/2)``; isotropic when ``σx = σy`` (θ is then irrelevant);
- generalized Gaussian: ``exp(-0.5 q**β)`` (the paper's form: β = 1 is the Gaussian -- the Mahalanobis
  distance to the power 2β = 2 -- smaller β heavier tails, larger β flatter tops);
- plateau: ``1 / (1 + q**β)``;
- sinc (circular low-pass, "jinc"): ``ωc J1(ωc r) / (2π r)`` with the centre tap ``ωc² / (4π)``, the ideal
  low-pass of cut-off ``ωc`` (radians per pixel) sampled on the grid, used for ringing and overshoot.

Every kernel is divided by its sum. :func:`pad_kernel` centres a kernel in a larger zero field (Real-ESRGAN
pads every kernel to 21 so a batch shares one size).
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = [
    "KERNEL_TYPES",
    "covariance",
    "gaussian_kernel",
    "generalized_gaussian_kernel",
    "pad_kernel",
    "plateau_kernel",
    "sinc_kernel",
]

KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")


def _check_size(size: int) -> int:
    size = int(size)
    if size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be a positive odd number, not {size}")
    return size


def covariance(sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """The 2x2 covariance ``R(θ) diag(σx², σy²) R(θ)ᵀ`` (x = columns, y = rows; θ counter-clockwise)."""
    c, s = math.cos(theta), math.sin(theta)
    rot = np.array([[c, -s], [s, c]])
    return rot @ np.diag([sigma_x**2, sigma_y**2]) @ rot.T


def _quadratic(size: int, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """``q = xᵀ Σ⁻¹ x`` at every tap of a (size, size) grid centred on the middle tap."""
    size = _check_size(size)
    if sigma_x <= 0 or sigma_y <= 0:
        raise ValueError(f"kernel sigmas must be > 0, not ({sigma_x}, {sigma_y})")
    r = size // 2
    ax = np.arange(-r, r + 1, dtype=np.float64)
    xx, yy = np.meshgrid(ax, ax)  # xx varies along columns, yy along rows
    inv = np.linalg.inv(covariance(sigma_x, sigma_y, theta))
    return inv[0, 0] * xx * xx + (inv[0, 1] + inv[1, 0]) * xx * yy + inv[1, 1] * yy * yy


def _normalised(k: np.ndarray) -> np.ndarray:
    return k / k.sum()


def gaussian_kernel(
    size: int, sigma_x: float, sigma_y: float | None = None, theta: float = 0.0
) -> np.ndarray:
    """Anisotropic (or, with ``sigma_y`` None, isotropic) Gaussian."""
    sy = sigma_x if sigma_y is None else sigma_y
    return _normalised(np.exp(-0.5 * _quadratic(size, sigma_x, sy, theta)))


def generalized_gaussian_kernel(
    size: int, sigma_x: float, sigma_y: float | None, theta: float, beta: float
) -> np.ndarray:
    """Generalized Gaussian ``exp(-0.5 q**β)``; β = 1 is :func:`gaussian_kernel`."""
    sy = sigma_x if sigma_y is None else sigma_y
    return _normalised(np.exp(-0.5 * np.power(_quadratic(size, sigma_x, sy, theta), beta)))


def plateau_kernel(size: int, sigma_x: float, sigma_y: float | None, theta: float, beta: float) -> np.ndarray:
    """Plateau-shaped ``1 / (1 + q**β)``."""
    sy = sigma_x if sigma_y is None else sigma_y
    return _normalised(1.0 / (1.0 + np.power(_quadratic(size, sigma_x, sy, theta), beta)))


def _j1(x: np.ndarray) -> np.ndarray:
    """Bessel function of the first kind, order 1 (torch's implementation; scipy is not a dependency)."""

    return torch.special.bessel_j1(torch.from_numpy(np.asarray(x, dtype=np.float64))).numpy()


def sinc_kernel(size: int, cutoff: float) -> np.ndarray:
    """Circular low-pass (2-D sinc / jinc) of cut-off ``cutoff`` in radians per pixel (0 < cutoff <= π)."""
    size = _check_size(size)
    if not 0 < cutoff <= math.pi + 1e-9:
        raise ValueError(f"sinc cut-off must be in (0, pi], not {cutoff}")
    r = size // 2
    ax = np.arange(-r, r + 1, dtype=np.float64)
    xx, yy = np.meshgrid(ax, ax)
    rho = np.hypot(xx, yy)
    safe = np.where(rho == 0, 1.0, rho)
    k = cutoff * _j1(cutoff * safe) / (2 * math.pi * safe)
    k[rho == 0] = cutoff**2 / (4 * math.pi)  # the limit of the expression at r -> 0
    return _normalised(k)


def pad_kernel(kernel: np.ndarray, size: int) -> np.ndarray:
    """``kernel`` (k, k), k odd, centred in a (size, size) zero field (size >= k, odd)."""
    size = _check_size(size)
    k = kernel.shape[0]
    if kernel.shape != (k, k) or k % 2 == 0 or k > size:
        raise ValueError(f"cannot pad a {kernel.shape} kernel to {size}x{size}")
    p = (size - k) // 2
    return np.pad(kernel, ((p, p), (p, p)))
