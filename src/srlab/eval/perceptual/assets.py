"""The weight files of the perceptual metrics: where they come from, their hashes, where srlab keeps them.

Each :class:`Asset` is one published file with its URL and SHA-256 (full digests where the file could be
hashed from a PyPI release of its publisher; torchvision's backbones carry the 8-hex-digit prefix their file
names give, as the zoo's VGG19 does). :func:`require` returns a verified local path, looking in order at

1. srlab's weights cache (:func:`srlab.weights.download.cache_dir`, under ``$SRLAB_CACHE``);
2. a copy already on the machine: torch hub's ``checkpoints/`` folder for torchvision backbones, the
   installed ``lpips`` / ``DISTS_pytorch`` / ``basicsr`` package for the heads and the NIQE parameters
   (found without importing the package: ``lpips`` and ``DISTS_pytorch`` import torchvision);
3. a download into the cache (hash-checked, atomic; :func:`srlab.weights.download.download`).

Offline, one :class:`~srlab.errors.WeightsError` line names the metric, the file, its URL and the exact
path to save it as.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from srlab.errors import WeightsError
from srlab.weights.download import cache_dir, download, sha256_file

__all__ = ["ASSETS", "Asset", "local_copies", "require"]


@dataclass(frozen=True)
class Asset:
    name: str
    filename: str  # the name in srlab's cache (the publisher's, or pyiqa's hash-suffixed one)
    description: str
    url: str
    sha256: str  # full hex digest, or a prefix (torchvision)
    license: str
    size: int | None = None
    package: tuple[str, str] | None = None  # (installed package, file inside it) that holds a copy
    torch_hub: bool = False  # torchvision backbone: may already sit in torch hub's checkpoints/


_TV = "BSD-3-Clause (torchvision)"
ASSETS: dict[str, Asset] = {
    a.name: a
    for a in (
        Asset(
            "alexnet",
            "alexnet-owt-7be5be79.pth",
            "torchvision's ImageNet AlexNet (IMAGENET1K_V1): the LPIPS-alex backbone",
            "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
            "7be5be79",
            _TV,
            torch_hub=True,
        ),
        Asset(
            "vgg16",
            "vgg16-397923af.pth",
            "torchvision's ImageNet VGG16 (IMAGENET1K_V1): the LPIPS-vgg and DISTS backbone",
            "https://download.pytorch.org/models/vgg16-397923af.pth",
            "397923af",
            _TV,
            torch_hub=True,
        ),
        Asset(
            "lpips-alex",
            "LPIPS_v0.1_alex-df73285e.pth",
            "LPIPS v0.1 linear heads for AlexNet (Zhang et al. 2018)",
            "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/alex.pth",
            "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
            "BSD-2-Clause (richzhang/PerceptualSimilarity)",
            size=6009,
            package=("lpips", "weights/v0.1/alex.pth"),
        ),
        Asset(
            "lpips-vgg",
            "LPIPS_v0.1_vgg-a78928a0.pth",
            "LPIPS v0.1 linear heads for VGG16 (Zhang et al. 2018)",
            "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/vgg.pth",
            "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
            "BSD-2-Clause (richzhang/PerceptualSimilarity)",
            size=7289,
            package=("lpips", "weights/v0.1/vgg.pth"),
        ),
        Asset(
            "dists",
            "DISTS_weights-f5e65c96.pth",
            "DISTS alpha/beta weights (Ding et al. 2020)",
            "https://github.com/dingkeyan93/DISTS/raw/master/DISTS_pytorch/weights.pt",
            "f5e65c96230b7f6ca995691647d482237e4cab8a50c5c4a5784f219ef0748218",
            "MIT (dingkeyan93/DISTS)",
            size=12288,
            package=("DISTS_pytorch", "weights.pt"),
        ),
        Asset(
            "niqe",
            "niqe_pris_params.npz",
            "NIQE pristine-image model (mu, cov) and 7x7 window of the MATLAB release (Mittal et al. 2013), "
            "as BasicSR stores it",
            "https://github.com/XPixelGroup/BasicSR/raw/master/basicsr/metrics/niqe_pris_params.npz",
            "2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296",
            "Apache-2.0 (BasicSR); parameters from LIVE's NIQE release",
            package=("basicsr", "metrics/niqe_pris_params.npz"),
        ),
    )
}


def _matches(asset: Asset, path: Path) -> bool:
    if asset.size is not None and path.stat().st_size != asset.size:
        return False
    return sha256_file(path).startswith(asset.sha256.lower())


def local_copies(asset: Asset) -> list[Path]:
    """Existing copies outside srlab's cache (torch hub checkpoints, installed packages); unverified."""
    out: list[Path] = []
    if asset.torch_hub:
        hub = os.environ.get("TORCH_HOME")
        base = Path(hub) if hub else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "torch"
        out.append(base / "hub" / "checkpoints" / asset.filename)
    if asset.package:
        pkg, rel = asset.package
        try:  # find_spec of a top-level name locates the package without running its __init__
            spec = importlib.util.find_spec(pkg)
        except (ImportError, ValueError):
            spec = None
        for loc in (spec.submodule_search_locations or []) if spec else []:
            out.append(Path(loc) / rel)
    return [p for p in out if p.is_file()]


def require(name: str, *, metric: str, progress: bool = True) -> Path:
    """A verified local path of asset ``name`` (cache, a local copy, else a download into the cache).

    Raises one-line :class:`WeightsError` naming ``metric``, the file, its URL and where to put it.
    """
    asset = ASSETS[name]
    dest = cache_dir() / asset.filename
    if dest.is_file():
        if _matches(asset, dest):
            return dest
        raise WeightsError(
            f"{metric}: {dest} does not match {asset.name} (size or sha256 {asset.sha256[:16]}); delete it "
            f"and run the command again to download {asset.url}"
        )
    for p in local_copies(asset):
        if _matches(asset, p):
            return p
    try:
        return download(asset.url, dest, sha256=asset.sha256, size=asset.size, progress=progress)
    except WeightsError as exc:
        raise WeightsError(f"{metric} needs {asset.filename} ({asset.description}): {exc}") from None
