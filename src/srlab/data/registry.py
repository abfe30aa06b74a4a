"""Known image data sets, where they live on disk, and where to get them.

Each :class:`DatasetSpec` lists the official page, a direct download where one exists, the expected image
count and the folder layouts it is usually found in (``Set5/HR``, ``Set5/GTmod12``, ``benchmark/Set5/HR``,
SelfExSR's ``Set5/image_SRF_2/*_HR.png``, a flat ``Set5/``, ...). :func:`find_dataset` searches the data root
for those layouts and returns a :class:`Dataset` with the sorted HR files (and the paired LR folder when the
layout has one), or raises :class:`srlab.errors.DataError` saying where to get the set.

Data root (:func:`resolve_data_root`): an explicit ``--data-root``; else ``$SRLAB_DATA_ROOT``; else
``../shared/data`` relative to the current directory if it exists; else ``~/.cache/srlab/data`` (honouring
``$XDG_CACHE_HOME``). Any set can be pointed at a folder directly (``--set-path Set5=/x/y``); a name that is
not in the registry then makes an ad-hoc set of all images in that folder.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from srlab.errors import DataError

__all__ = [
    "DATASETS",
    "IMAGE_EXTENSIONS",
    "Dataset",
    "DatasetSpec",
    "dataset_status",
    "default_cache_root",
    "fetch_dataset",
    "find_dataset",
    "get_spec",
    "list_images",
    "parse_set_paths",
    "resolve_data_root",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


@dataclass(frozen=True)
class Layout:
    """One place a set is found: ``hr`` relative to the data root, optional file-name glob and LR folder.

    ``lr`` may contain ``{s}`` (the scale); ``recursive`` searches sub-folders (FFHQ's 00000/ ... folders).
    """

    hr: str
    pattern: str = "*"
    lr: str | None = None
    recursive: bool = False


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    description: str
    count: int | None  # expected number of HR images (None: unknown)
    url: str  # official page (or the canonical source)
    download: str | None = None  # direct archive URL where one exists
    sha256: str | None = None  # of ``download``, where published
    archive_note: str = ""  # what the archive contains / how it is laid out
    aliases: tuple[str, ...] = ()
    layouts: tuple[Layout, ...] = ()
    role: str = "test"  # "test" or "train"
    study_crop: int | None = 128  # HR centre crop of the study protocol (None: the whole image)
    note: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


def _benchmark_layouts(*names: str) -> tuple[Layout, ...]:
    """The usual layouts of a small SR test set under any of its names."""
    out: list[Layout] = []
    for n in names:
        out += [
            Layout(f"{n}/HR", lr=f"{n}/LR_bicubic/X{{s}}"),
            Layout(f"benchmark/{n}/HR", lr=f"benchmark/{n}/LR_bicubic/X{{s}}"),
            Layout(f"{n}/GTmod12", lr=f"{n}/LRbicx{{s}}"),  # BasicSR's Set5/Set14
            Layout(f"{n}/GT"),
            Layout(f"{n}/original"),
            Layout(f"{n}/image_SRF_2", pattern="*_HR.*"),  # SelfExSR (x2 ground truth)
            Layout(f"{n}/image_SRF_4", pattern="*_HR.*"),
            Layout(n),  # flat folder of images
        ]
    return tuple(out)


_EDSR_BENCHMARK = "https://cv.snu.ac.kr/research/EDSR/benchmark.tar"
_EDSR_NOTE = "EDSR's benchmark.tar: benchmark/{Set5,Set14,B100,Urban100}/HR and LR_bicubic/X2..X4"

DATASETS: dict[str, DatasetSpec] = {}


def _register(spec: DatasetSpec) -> None:
    DATASETS[spec.name] = spec


_register(
    DatasetSpec(
        "DIV2K_train_HR",
        "DIV2K training set, 800 2K images (NTIRE 2017)",
        800,
        "https://data.vision.ee.ethz.ch/cvl/DIV2K/",
        download="http://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_train_HR.zip",
        archive_note="zip with DIV2K_train_HR/0001.png ... 0800.png",
        aliases=("DIV2K", "DIV2K_train"),
        layouts=(
            Layout("DIV2K_train_HR", lr="DIV2K_train_LR_bicubic/X{s}"),
            Layout("DIV2K/DIV2K_train_HR", lr="DIV2K/DIV2K_train_LR_bicubic/X{s}"),
            Layout("DIV2K/train/HR"),
        ),
        role="train",
        note="academic research use only",
    )
)
_register(
    DatasetSpec(
        "DIV2K_valid_HR",
        "DIV2K validation set, 100 2K images (0801-0900)",
        100,
        "https://data.vision.ee.ethz.ch/cvl/DIV2K/",
        download="http://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_valid_HR.zip",
        archive_note="zip with DIV2K_valid_HR/0801.png ... 0900.png",
        aliases=("DIV2K_valid", "DIV2K100"),
        layouts=(
            Layout("DIV2K_valid_HR", lr="DIV2K_valid_LR_bicubic/X{s}"),
            Layout("DIV2K/DIV2K_valid_HR", lr="DIV2K/DIV2K_valid_LR_bicubic/X{s}"),
            Layout("DIV2K/valid/HR"),
        ),
        note="academic research use only; the study's test images are its 128x128 centre crops",
    )
)
_register(
    DatasetSpec(
        "DIV2K_train_crop128",
        "128x128 centre crops of DIV2K train 0001-0800 (the study's training set, OpenCV x=W/2-64, y=H/2-64)",
        800,
        "https://github.com/Sheldonsu28/CSC413-Project",
        aliases=("div2k_crop128",),
        layouts=(Layout("DIV2K_train_crop128"), Layout("DIV2K_train_crop128/hr")),
        role="train",
        note="made from DIV2K train by the study's authors; or crop DIV2K_train_HR yourself",
    )
)
_register(
    DatasetSpec(
        "Flickr2K",
        "2650 2K images from Flickr (EDSR, NTIRE 2017)",
        2650,
        "https://github.com/LimBee/NTIRE2017",
        download="https://cv.snu.ac.kr/research/EDSR/Flickr2K.tar",
        archive_note="tar with Flickr2K/Flickr2K_HR/000001.png ... and Flickr2K_LR_bicubic/X2..X4",
        layouts=(
            Layout("Flickr2K/Flickr2K_HR", lr="Flickr2K/Flickr2K_LR_bicubic/X{s}"),
            Layout("Flickr2K_HR", lr="Flickr2K_LR_bicubic/X{s}"),
            Layout("Flickr2K/HR"),
            Layout("Flickr2K"),
        ),
        role="train",
    )
)
_register(
    DatasetSpec(
        "FFHQ_thumbnails128",
        "FFHQ 128x128 thumbnails, 70000 faces (the study's face test images)",
        70000,
        "https://github.com/NVlabs/ffhq-dataset (thumbnails128x128 folder, Google Drive)",
        aliases=("FFHQ", "thumbnails128x128", "ffhq128"),
        layouts=(
            Layout("thumbnails128x128", recursive=True),
            Layout("ffhq/thumbnails128x128", recursive=True),
            Layout("FFHQ/thumbnails128x128", recursive=True),
            Layout("FFHQ_thumbnails128", recursive=True),
        ),
        study_crop=None,
        note="CC BY-NC-SA 4.0 (images under their Flickr licences); no direct archive URL",
    )
)
_register(
    DatasetSpec(
        "selfie2anime",
        "selfie2anime testB: 100 anime faces, 256x256 (U-GAT-IT; the study's anime test images)",
        100,
        "https://github.com/taki0112/UGATIT (selfie2anime, Google Drive)",
        aliases=("selfie2anime_testB",),
        layouts=(Layout("selfie2anime/testB"), Layout("selfie2anime_testB"), Layout("testB")),
        study_crop=None,
        note="no direct archive URL; the study evaluated the whole 256x256 images (LR 128x128)",
    )
)
_register(
    DatasetSpec(
        "Set5",
        "Set5 (Bevilacqua et al., BMVC 2012): baby, bird, butterfly, head, woman",
        5,
        "http://people.rennes.inria.fr/Aline.Roumy/results/SR_BMVC12.html",
        download=_EDSR_BENCHMARK,
        archive_note=_EDSR_NOTE,
        layouts=_benchmark_layouts("Set5", "set5"),
    )
)
_register(
    DatasetSpec(
        "Set14",
        "Set14 (Zeyde et al., 2010)",
        14,
        "https://sites.google.com/site/romanzeyde/research-interests",
        download=_EDSR_BENCHMARK,
        archive_note=_EDSR_NOTE,
        layouts=_benchmark_layouts("Set14", "set14"),
        note="bridge is grayscale; some copies crop comic/ppt3/zebra to even sizes (modcrop makes them equal)",
    )
)
_register(
    DatasetSpec(
        "B100",
        "BSD100: the 100 BSDS300 test images (Martin et al., ICCV 2001)",
        100,
        "https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/bsds/",
        download=_EDSR_BENCHMARK,
        archive_note=_EDSR_NOTE,
        aliases=("BSD100", "BSDS100"),
        layouts=_benchmark_layouts("B100", "BSD100", "BSDS100", "bsd100"),
        note="originals are 481x321; copies cropped to 480x320 are exact x2/x4 ground truth but not x3",
    )
)
_register(
    DatasetSpec(
        "Urban100",
        "Urban100 (Huang et al., CVPR 2015): 100 urban scenes",
        100,
        "https://github.com/jbhuang0604/SelfExSR",
        download=_EDSR_BENCHMARK,
        archive_note=_EDSR_NOTE,
        layouts=_benchmark_layouts("Urban100", "urban100"),
    )
)
_register(
    DatasetSpec(
        "Manga109",
        "Manga109: 109 manga volume covers (Matsui et al.)",
        109,
        "http://www.manga109.org/en/ (request access)",
        layouts=_benchmark_layouts("Manga109", "manga109"),
        note="academic use by request; no direct archive URL",
    )
)
_register(
    DatasetSpec(
        "T91",
        "T91 (Yang et al., TIP 2010): SRCNN's 91 training images",
        91,
        "http://mmlab.ie.cuhk.edu.hk/projects/SRCNN.html",
        aliases=("yang91", "91-image"),
        layouts=(Layout("T91"), Layout("T91/HR"), Layout("yang91"), Layout("91-image")),
        role="train",
    )
)
_register(
    DatasetSpec(
        "General100",
        "General100 (Dong et al., FSRCNN, ECCV 2016): 100 training images",
        100,
        "http://mmlab.ie.cuhk.edu.hk/projects/FSRCNN.html",
        layouts=(Layout("General100"), Layout("General100/HR"), Layout("general100")),
        role="train",
    )
)
_register(
    DatasetSpec(
        "BSD200",
        "BSD200: the 200 BSDS300 training images (FSRCNN's extra training data)",
        200,
        "https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/bsds/",
        download="https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/bsds/BSDS300-images.tgz",
        archive_note="tgz with BSDS300/images/train/*.jpg (200) and test/*.jpg (100)",
        aliases=("BSDS200",),
        layouts=(
            Layout("BSD200"),
            Layout("BSD200/HR"),
            Layout("BSDS200"),
            Layout("BSDS300/images/train", "*.jpg"),
        ),
        role="train",
    )
)


def get_spec(name: str) -> DatasetSpec | None:
    """The spec of a known set by name or alias (case-insensitive), or None."""
    low = name.lower()
    for spec in DATASETS.values():
        if any(n.lower() == low for n in spec.names):
            return spec
    return None


@dataclass
class Dataset:
    """A set found on disk."""

    name: str
    hr_dir: Path
    files: list[Path]
    spec: DatasetSpec | None = None
    lr_pattern: str | None = None  # absolute LR folder with {s}, when the layout is paired
    extra: dict = field(default_factory=dict)

    @property
    def expected(self) -> int | None:
        return self.spec.count if self.spec else None

    @property
    def complete(self) -> bool:
        return self.expected is None or len(self.files) >= self.expected

    def lr_dir(self, scale: int) -> Path | None:
        """The paired LR folder for ``scale`` if the layout has one and it exists."""
        if not self.lr_pattern:
            return None
        p = Path(self.lr_pattern.format(s=scale))
        return p if p.is_dir() else None

    def __len__(self) -> int:
        return len(self.files)


def default_cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "srlab" / "data"


def resolve_data_root(data_root: str | os.PathLike | None = None) -> Path:
    """``data_root`` if given; else ``$SRLAB_DATA_ROOT``; else ``./../shared/data`` if present; else the cache."""
    if data_root:
        return Path(data_root).expanduser()
    env = os.environ.get("SRLAB_DATA_ROOT")
    if env:
        return Path(env).expanduser()
    shared = Path.cwd().parent / "shared" / "data"
    if shared.is_dir():
        return shared
    return default_cache_root()


def parse_set_paths(items: list[str] | None) -> dict[str, Path]:
    """``["Set5=/x/y", ...]`` -> ``{"Set5": Path("/x/y")}`` (also accepts comma-separated items)."""
    out: dict[str, Path] = {}
    for item in items or []:
        for part in str(item).split(","):
            if not part.strip():
                continue
            name, sep, path = part.partition("=")
            if not sep or not name.strip() or not path.strip():
                raise DataError(f"bad --set-path {part!r}; write NAME=FOLDER, e.g. Set5=/data/Set5/HR")
            out[name.strip()] = Path(path.strip()).expanduser()
    return out


def _natural_key(p: Path):
    import re

    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)] + [str(p)]


def list_images(folder: Path, pattern: str = "*", recursive: bool = False) -> list[Path]:
    """Image files (by extension) in ``folder`` matching ``pattern``, sorted by name (hidden files skipped)."""
    if not folder.is_dir():
        return []
    it = folder.rglob(pattern) if recursive else folder.glob(pattern)
    files = [
        p for p in it if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()
    ]
    return sorted(files, key=lambda p: (str(p.parent), _natural_key(p)))


def _where_to_get(spec: DatasetSpec) -> str:
    if spec.download:
        return f"`srlab data fetch {spec.name}` downloads it ({spec.download}); official page {spec.url}"
    return f"get it from {spec.url}"


def _unknown(name: str) -> DataError:
    names = [n for s in DATASETS.values() for n in s.names]
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return DataError(
        f"unknown data set {name!r}{hint}; known: {', '.join(DATASETS)}; "
        f"or point at a folder with --set-path {name}=FOLDER"
    )


def _from_folder(name: str, spec: DatasetSpec | None, folder: Path) -> Dataset:
    """A set given as a folder: its images, or those of a known sub-layout inside it (``HR/``, ``GTmod12/``, ...)."""
    if not folder.is_dir():
        raise DataError(f"--set-path {name}={folder}: no such folder")
    recursive = bool(spec and any(lo.recursive for lo in spec.layouts))
    files = list_images(folder, recursive=recursive)
    if files:
        return Dataset(spec.name if spec else name, folder, files, spec)
    for lo in spec.layouts if spec else _benchmark_layouts(name):
        if "/" not in lo.hr:
            continue
        sub = folder / lo.hr.split("/", 1)[1]
        files = list_images(sub, lo.pattern, lo.recursive)
        if files:
            return Dataset(spec.name if spec else name, sub, files, spec)
    raise DataError(f"--set-path {name}={folder}: no images ({', '.join(IMAGE_EXTENSIONS)}) in it")


def find_dataset(
    name: str,
    data_root: str | os.PathLike | None = None,
    *,
    set_paths: Mapping[str, str | os.PathLike] | None = None,
) -> Dataset:
    """Locate a set: an override in ``set_paths`` first, then each known layout under the data root.

    Raises :class:`DataError` naming the folders searched and where to get the set.
    """
    spec = get_spec(name)
    overrides = {k.lower(): Path(v) for k, v in (set_paths or {}).items()}
    keys = [n.lower() for n in (spec.names if spec else (name,))]
    for k in keys:
        if k in overrides:
            return _from_folder(name, spec, overrides[k].expanduser())
    if spec is None:
        raise _unknown(name)
    root = resolve_data_root(data_root)
    for lo in spec.layouts:
        folder = root / lo.hr
        files = list_images(folder, lo.pattern, lo.recursive)
        if files:
            lr = str(root / lo.lr) if lo.lr else None
            return Dataset(spec.name, folder, files, spec, lr_pattern=lr)
    raise DataError(
        f"data set {spec.name} not found under {root} (looked for {', '.join(lo.hr for lo in spec.layouts[:4])}"
        f"{', ...' if len(spec.layouts) > 4 else ''}); {_where_to_get(spec)}; "
        f"or use --data-root DIR / --set-path {spec.name}=FOLDER"
    )


def dataset_status(
    data_root: str | os.PathLike | None = None, *, set_paths: Mapping[str, str | os.PathLike] | None = None
) -> list[dict]:
    """One row per known set: name, status ('complete' | 'incomplete' | 'missing'), found/expected, path, source."""
    rows = []
    for spec in DATASETS.values():
        row = {"name": spec.name, "role": spec.role, "expected": spec.count, "url": spec.url}
        row["download"] = spec.download
        try:
            ds = find_dataset(spec.name, data_root, set_paths=set_paths)
        except DataError:
            row.update(status="missing", found=0, path=None)
        else:
            row.update(
                status="complete" if ds.complete else "incomplete", found=len(ds.files), path=str(ds.hr_dir)
            )
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------------------- fetch


def _safe_members(names: list[str], dest: Path, archive: Path) -> None:
    root = dest.resolve()
    for n in names:
        target = (dest / n).resolve()
        if not (target == root or root in target.parents):
            raise DataError(f"{archive}: refusing to extract {n!r} outside {dest}; the archive is unsafe")


def _extract(archive: Path, dest: Path) -> None:
    import tarfile
    import zipfile

    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            _safe_members(z.namelist(), dest, archive)
            z.extractall(dest)
        return
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            members = t.getmembers()
            _safe_members([m.name for m in members], dest, archive)
            bad = [m.name for m in members if not (m.isfile() or m.isdir())]
            if bad:
                raise DataError(
                    f"{archive}: links or special files in the archive ({bad[0]}, ...); extract it by hand"
                )
            if hasattr(tarfile, "data_filter"):  # Python >= 3.12 (and security backports)
                t.extractall(dest, members=members, filter="data")
            else:  # pragma: no cover
                t.extractall(dest, members=members)
        return
    raise DataError(f"{archive}: not a zip or tar archive; delete it and fetch again")


def fetch_dataset(
    name: str,
    data_root: str | os.PathLike | None = None,
    *,
    force: bool = False,
    keep_archive: bool = False,
    progress: bool = True,
    log=print,
) -> Dataset:
    """Download and extract a known set into the data root where it has a direct URL.

    Skips the download when the set is already complete (unless ``force``). The archive is checked against
    the spec's sha256 where one is published; otherwise its sha256 is printed so it can be pinned. Sets
    without a direct URL raise :class:`DataError` saying where to get them.
    """
    from srlab.errors import WeightsError
    from srlab.weights.download import download, sha256_file

    spec = get_spec(name)
    if spec is None:
        raise _unknown(name)
    root = resolve_data_root(data_root)
    if not force:
        try:
            ds = find_dataset(spec.name, root)
        except DataError:
            pass
        else:
            if ds.complete:
                log(f"{spec.name}: already complete ({len(ds)} images in {ds.hr_dir})")
                return ds
    if not spec.download:
        where = spec.layouts[0].hr if spec.layouts else spec.name
        raise DataError(
            f"{spec.name} has no direct download; get it from {spec.url} and put the images in {root / where}"
            f" (or pass --set-path {spec.name}=FOLDER)"
        )
    archive = root / "downloads" / spec.download.rstrip("/").rsplit("/", 1)[-1]
    if (
        archive.is_file()
        and not force
        and (spec.sha256 is None or sha256_file(archive).startswith(spec.sha256))
    ):
        log(f"{spec.name}: using the archive already downloaded at {archive}")
    else:
        log(f"{spec.name}: downloading {spec.download} -> {archive}")
        try:
            download(spec.download, archive, sha256=spec.sha256, progress=progress)
        except WeightsError as exc:
            raise DataError(str(exc)) from None
    digest = sha256_file(archive)
    log(
        f"{spec.name}: sha256 {digest}"
        + (" (matches the registry)" if spec.sha256 else " (no published checksum to compare; recorded here)")
    )
    log(f"{spec.name}: extracting into {root}" + (f" ({spec.archive_note})" if spec.archive_note else ""))
    _extract(archive, root)
    if not keep_archive:
        archive.unlink()
    ds = find_dataset(spec.name, root)
    state = "complete" if ds.complete else f"INCOMPLETE: {len(ds)} of {spec.count} images"
    log(f"{spec.name}: {len(ds)} images in {ds.hr_dir} ({state})")
    return ds
