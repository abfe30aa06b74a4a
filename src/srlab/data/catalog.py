"""The known image data sets, as data: names, sources, expected counts and the folder layouts they come in.

Each :class:`DatasetSpec` lists the official page, a direct download where one exists, the expected image
count and the folder layouts it is usually found in (``Set5/HR``, ``Set5/GTmod12``, ``benchmark/Set5/HR``,
SelfExSR's ``Set5/image_SRF_2/*_HR.png``, a flat ``Set5/``, ...). A set with ``made_from`` is derived from
another (the study's DIV2K centre crops, the first 1000 FFHQ thumbnails): :mod:`srlab.data.prepare` makes it.
Finding a set on disk is :mod:`srlab.data.find`; downloading one is :mod:`srlab.data.fetch`. How a protocol
uses a set (the study's centre crop at evaluation) is :mod:`srlab.eval.protocols`' business, not the catalogue's.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from srlab.errors import DataError

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "Layout",
    "benchmark_layouts",
    "get_spec",
    "unknown_set",
    "where_to_get",
]


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
    note: str = ""
    made_from: str | None = None  # the catalogued set ``srlab data prepare`` makes this one from

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


def benchmark_layouts(*names: str) -> tuple[Layout, ...]:
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
        note="academic research use only; the study's authors made it with OpenCV from DIV2K_train_HR",
        made_from="DIV2K_train_HR",
    )
)
for _size in (128, 256):
    _register(
        DatasetSpec(
            f"DIV2K_valid_crop{_size}",
            f"{_size}x{_size} centre crops of DIV2K valid 0801-0900 (x = W//2 - {_size // 2}, y = H//2 - "
            f"{_size // 2}); the study's notebook tested on the 128 ones, its text says 256",
            100,
            "https://data.vision.ee.ethz.ch/cvl/DIV2K/",
            aliases=(f"div2k_valid_crop{_size}",),
            layouts=(Layout(f"DIV2K_valid_crop{_size}"),),
            note="academic research use only",
            made_from="DIV2K_valid_HR",
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
_FFHQ_URL = "https://github.com/NVlabs/ffhq-dataset (thumbnails128x128 folder, Google Drive)"
_register(
    DatasetSpec(
        "FFHQ_thumbnails128x128",
        "FFHQ 128x128 thumbnails, all 70000 faces (in 00000/, 01000/, ... sub-folders)",
        70000,
        _FFHQ_URL,
        aliases=("FFHQ", "thumbnails128x128", "ffhq128"),
        layouts=(
            Layout("thumbnails128x128", recursive=True),
            Layout("ffhq/thumbnails128x128", recursive=True),
            Layout("FFHQ/thumbnails128x128", recursive=True),
            Layout("ffhq-dataset/thumbnails128x128", recursive=True),
        ),
        note="CC BY-NC-SA 4.0 (images under their Flickr licences); no direct archive URL",
    )
)
_register(
    DatasetSpec(
        "FFHQ_thumbnails128",
        "the first 1000 FFHQ 128x128 thumbnails, 00000-00999 (the study's face test images)",
        1000,
        _FFHQ_URL,
        aliases=("FFHQ1000", "ffhq_thumbnails128_first1000"),
        layouts=(Layout("FFHQ_thumbnails128"),),
        note="CC BY-NC-SA 4.0 (images under their Flickr licences)",
        made_from="FFHQ_thumbnails128x128",
    )
)
_register(
    DatasetSpec(
        "selfie2anime",
        "selfie2anime testB: 100 anime faces, 256x256 (U-GAT-IT; the study's anime test images)",
        100,
        "https://github.com/taki0112/UGATIT (selfie2anime, Google Drive)",
        aliases=("selfie2anime_testB",),
        # the zip holds selfie2anime/{trainA,trainB,testA,testB} (B = anime); UGATIT reads dataset/selfie2anime
        layouts=(
            Layout("selfie2anime/testB"),
            Layout("selfie2anime/selfie2anime/testB"),
            Layout("dataset/selfie2anime/testB"),
            Layout("selfie2anime_testB"),
            Layout("testB"),
        ),
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
        layouts=benchmark_layouts("Set5", "set5"),
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
        layouts=benchmark_layouts("Set14", "set14"),
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
        layouts=benchmark_layouts("B100", "BSD100", "BSDS100", "bsd100"),
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
        layouts=benchmark_layouts("Urban100", "urban100"),
    )
)
_register(
    DatasetSpec(
        "Manga109",
        "Manga109: 109 manga volume covers (Matsui et al.)",
        109,
        "http://www.manga109.org/en/ (request access)",
        layouts=benchmark_layouts("Manga109", "manga109"),
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


def where_to_get(spec: DatasetSpec) -> str:
    """One phrase saying how to obtain a set: ``srlab data prepare`` for a set made from another,
    ``srlab data fetch`` where it has a direct URL, else its page."""
    if spec.made_from:
        src = DATASETS[spec.made_from]
        return f"`srlab data prepare {spec.name}` makes it from {src.name} ({where_to_get(src)})"
    if spec.download:
        return f"`srlab data fetch {spec.name}` downloads it ({spec.download}); official page {spec.url}"
    return f"get it from {spec.url}"


def unknown_set(name: str) -> DataError:
    """The error for a name that is not in the catalogue (with the closest known name)."""
    names = [n for s in DATASETS.values() for n in s.names]
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return DataError(
        f"unknown data set {name!r}{hint}; known: {', '.join(DATASETS)}; "
        f"or point at a folder with --set-path {name}=FOLDER"
    )
