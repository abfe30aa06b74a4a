"""Downloading a catalogued data set into the data root, with safe archive extraction.

Only sets with a direct archive URL can be fetched; the others raise :class:`srlab.errors.DataError` saying
where to get them. Archives are checked against the catalogue's sha256 where one is published, and zip/tar
members that would land outside the data root, links and special files are refused.
"""

from __future__ import annotations

import os
import tarfile
import zipfile
from pathlib import Path

from srlab.data.catalog import get_spec, unknown_set
from srlab.data.find import Dataset, find_dataset, resolve_data_root
from srlab.errors import DataError, WeightsError

__all__ = ["fetch_dataset"]


def _safe_members(names: list[str], dest: Path, archive: Path) -> None:
    root = dest.resolve()
    for n in names:
        target = (dest / n).resolve()
        if not (target == root or root in target.parents):
            raise DataError(f"{archive}: refusing to extract {n!r} outside {dest}; the archive is unsafe")


def _extract(archive: Path, dest: Path) -> None:
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
    from srlab.weights.download import download, sha256_file

    spec = get_spec(name)
    if spec is None:
        raise unknown_set(name)
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
