"""Finding data sets on disk: the data root, ``--set-path`` overrides and each catalogued layout.

:func:`find_dataset` searches the data root for the layouts of :mod:`srlab.data.catalog` and returns a
:class:`Dataset` with the HR files in natural order (:func:`srlab.imaging.files.list_images`, and the paired
LR folder when the layout has one), or raises :class:`srlab.errors.DataError` saying where to get the set.

Data root (:func:`resolve_data_root`): an explicit ``--data-root``; else ``$SRLAB_DATA_ROOT``; else the
user data folder ``srlab.runtime.cache_dir("data")`` (``$SRLAB_CACHE/data``, ``$XDG_CACHE_HOME/srlab/data`` or ``~/.cache/srlab/data``). Any set can be pointed at
a folder directly (``--set-path Set5=/x/y``); a name that is not in the catalogue then makes an ad-hoc set of
all images in that folder. A name may also be a folder relative to the data root (``selfie2anime/testB``):
it is the catalogued set whose layout that folder is, else an ad-hoc set of its images.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from srlab.data.catalog import DATASETS, DatasetSpec, benchmark_layouts, get_spec, unknown_set, where_to_get
from srlab.errors import DataError
from srlab.imaging.files import IMAGE_EXTENSIONS, list_images

__all__ = ["Dataset", "dataset_status", "find_dataset", "from_folder", "parse_set_paths", "resolve_data_root"]


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


def resolve_data_root(data_root: str | os.PathLike | None = None) -> Path:
    """``data_root`` if given; else ``$SRLAB_DATA_ROOT``; else the user data folder, the srlab cache's
    ``data/`` (``srlab.runtime.cache_dir("data")``: ``$SRLAB_CACHE/data``, else ``$XDG_CACHE_HOME/srlab/data``,
    else ``~/.cache/srlab/data``), where ``srlab data fetch`` puts what it downloads. No other folder (not
    the working directory's surroundings) is ever searched."""
    if data_root:
        return Path(data_root).expanduser()
    env = os.environ.get("SRLAB_DATA_ROOT")
    if env:
        return Path(env).expanduser()
    from srlab.runtime import cache_dir  # imports torch: only where the cache is the answer

    return cache_dir("data")


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


def from_folder(name: str, spec: DatasetSpec | None, folder: Path) -> Dataset:
    """A set given as a folder: its images, or those of a known sub-layout inside it (``HR/``, ``GTmod12/``, ...)."""
    if not folder.is_dir():
        raise DataError(f"--set-path {name}={folder}: no such folder")
    recursive = bool(spec and any(lo.recursive for lo in spec.layouts))
    files = list_images(folder, recursive=recursive)
    if files:
        return Dataset(spec.name if spec else name, folder, files, spec)
    for lo in spec.layouts if spec else benchmark_layouts(name):
        if "/" not in lo.hr:
            continue
        sub = folder / lo.hr.split("/", 1)[1]
        files = list_images(sub, lo.pattern, recursive=lo.recursive)
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
            return from_folder(name, spec, overrides[k].expanduser())
    root = resolve_data_root(data_root)
    if spec is None:
        return _relative_folder(name, root)
    for lo in spec.layouts:
        folder = root / lo.hr
        files = list_images(folder, lo.pattern, recursive=lo.recursive)
        if files:
            lr = str(root / lo.lr) if lo.lr else None
            return Dataset(spec.name, folder, files, spec, lr_pattern=lr)
    raise DataError(
        f"data set {spec.name} not found under {root} (looked for {', '.join(lo.hr for lo in spec.layouts[:4])}"
        f"{', ...' if len(spec.layouts) > 4 else ''}); {where_to_get(spec)}; "
        f"or use --data-root DIR / --set-path {spec.name}=FOLDER"
    )


def _relative_folder(name: str, root: Path) -> Dataset:
    """``name`` as a folder under the data root (``selfie2anime/testB``), or the unknown-set error."""
    rel = name.strip().strip("/")
    folder = root / rel
    if not rel or Path(rel).is_absolute() or ".." in Path(rel).parts or not folder.is_dir():
        raise unknown_set(name)
    low = Path(rel).as_posix().lower()
    for spec in DATASETS.values():
        for lo in spec.layouts:
            if lo.hr.lower() == low:
                files = list_images(folder, lo.pattern, recursive=lo.recursive)
                if files:
                    lr = str(root / lo.lr) if lo.lr else None
                    return Dataset(spec.name, folder, files, spec, lr_pattern=lr)
    files = list_images(folder)
    if not files:
        raise DataError(f"{folder}: no images ({', '.join(IMAGE_EXTENSIONS)}) in it")
    return Dataset(rel, folder, files)


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
