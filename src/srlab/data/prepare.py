"""Making the derived sets of the catalogue (``made_from``) from their originals: ``srlab data prepare NAME``.

- ``DIV2K_train_crop128``: the 128x128 centre crop of each of the 800 DIV2K training images, at the study's
  OpenCV position ``x = W//2 - 64, y = H//2 - 64`` (:func:`srlab.eval.protocols.centre_crop`);
- ``DIV2K_valid_crop128`` / ``DIV2K_valid_crop256``: the same of DIV2K valid 0801-0900 (the study's notebook
  tested on the 128 ones, its text says 256);
- ``FFHQ_thumbnails128``: the first 1000 of FFHQ's 128x128 thumbnails (00000-00999), copied whole.

Output is PNG (lossless, so a crop is pixel-for-pixel the source's pixels), named by the source's stem, written
atomically into ``DATA_ROOT/NAME/`` (or ``out``). A hidden ``.srlab-prepare.json`` records what was made, so a
second run is a no-op that says so and an interrupted one resumes. A file already there that this code did
not write is kept when its pixels are what would be written and refused otherwise (``force`` replaces it).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from srlab.atomic import write_json
from srlab.data.catalog import DATASETS, get_spec, unknown_set
from srlab.data.find import Dataset, find_dataset, from_folder, resolve_data_root
from srlab.errors import DataError, SrlabError
from srlab.serialize import loads

__all__ = [
    "RECIPES",
    "PrepareResult",
    "Recipe",
    "make_images",
    "make_pixels",
    "prepare",
    "recipe_for",
    "select_sources",
]

MANIFEST = ".srlab-prepare.json"


@dataclass(frozen=True)
class Recipe:
    """How a derived set is made: which images of ``source`` (``first`` N in natural order, or all) and what
    is done to each (a centre crop of ``crop`` pixels, or a whole copy that must be ``size`` x ``size``)."""

    name: str
    source: str
    crop: int | None = None
    first: int | None = None
    size: int | None = None

    def describe(self) -> str:
        which = f"the first {self.first} images" if self.first else "the images"
        if self.crop:
            c2 = self.crop // 2
            return (
                f"{self.crop}x{self.crop} centre crops (x = W//2 - {c2}, y = H//2 - {c2}) of {which} of "
                f"{self.source}"
            )
        return f"{which} of {self.source}, copied whole"

    def to_dict(self) -> dict:
        return {"name": self.name, "source": self.source, "crop": self.crop, "first": self.first}


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe("DIV2K_train_crop128", "DIV2K_train_HR", crop=128),
        Recipe("DIV2K_valid_crop128", "DIV2K_valid_HR", crop=128),
        Recipe("DIV2K_valid_crop256", "DIV2K_valid_HR", crop=256),
        Recipe("FFHQ_thumbnails128", "FFHQ_thumbnails128x128", first=1000, size=128),
    )
}


@dataclass
class PrepareResult:
    name: str
    out_dir: Path
    files: list[Path]
    written: int = 0
    kept: int = 0
    recipe: Recipe | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def nothing_to_do(self) -> bool:
        return self.written == 0


def recipe_for(name: str) -> Recipe:
    """The recipe of a derived set (name or alias), or a DataError naming the sets that can be prepared."""
    spec = get_spec(name)
    if spec is None:
        raise unknown_set(name)
    if spec.name not in RECIPES:
        raise DataError(
            f"{spec.name} is not made from another set, so there is nothing to prepare; "
            f"`srlab data prepare` makes {', '.join(RECIPES)}"
        )
    return RECIPES[spec.name]


def select_sources(recipe: Recipe, source: Dataset) -> list[Path]:
    """The source images a recipe uses, in the order the set numbers them."""
    files = list(source.files)
    return files[: recipe.first] if recipe.first else files


def _target_name(path: Path) -> str:
    return f"{path.stem}.png"


def make_pixels(recipe: Recipe, path: Path):
    """The pixels ``recipe`` writes for the source image ``path`` (uint8 HxWxC), or a one-line error."""
    import numpy as np

    from srlab.eval.protocols import centre_crop, read_hr

    try:
        px, _ = read_hr(path)
    except SrlabError as exc:
        raise DataError(
            f"{exc}; replace the file with a good copy of {recipe.source} and run again"
        ) from None
    h, w = px.shape[:2]
    if recipe.crop:
        if h < recipe.crop or w < recipe.crop:
            raise DataError(
                f"{path}: {w}x{h}, smaller than the {recipe.crop}x{recipe.crop} centre crop; this is not a "
                f"{recipe.source} image (point --source at the full-size originals)"
            )
        return np.ascontiguousarray(centre_crop(px, recipe.crop))
    if recipe.size and (h, w) != (recipe.size, recipe.size):
        raise DataError(
            f"{path}: {w}x{h}, not a {recipe.size}x{recipe.size} image of {recipe.source}; "
            f"point --source at the {recipe.size}x{recipe.size} thumbnails"
        )
    return px


def _same_pixels(path: Path, px) -> bool:
    import numpy as np

    from srlab.eval.protocols import read_hr

    try:
        old, _ = read_hr(path)
    except SrlabError:
        return False
    return old.shape == px.shape and bool(np.array_equal(old, px))


def _read_manifest(out: Path) -> dict:
    try:
        return loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _complete(recipe: Recipe, out: Path) -> int:
    """How many images a finished earlier run left in ``out`` (0 when it is not finished or was changed)."""
    manifest = _read_manifest(out)
    files = manifest.get("files", {})
    want = DATASETS[recipe.name].count
    if manifest.get("recipe") != recipe.to_dict() or not files or (want and len(files) < want):
        return 0
    for n, size in files.items():
        p = out / n
        if not p.is_file() or p.stat().st_size != size:
            return 0
    return len(files)


def _write_manifest(out: Path, recipe: Recipe, source_dir: Path | None, done: dict[str, int]) -> None:
    doc = {"recipe": recipe.to_dict(), "source": str(source_dir) if source_dir else None, "files": done}
    write_json(out / MANIFEST, doc)


def _unwritable(out: Path, exc: OSError) -> DataError:
    return DataError(f"cannot write into {out} ({exc.strerror or exc}); choose another --out or --data-root")


def make_images(
    recipe: Recipe,
    sources: Sequence[Path],
    out_dir: str | os.PathLike,
    *,
    force: bool = False,
    progress: bool = True,
    source_dir: Path | None = None,
    name_of: Callable[[Path], str] = _target_name,
) -> PrepareResult:
    """Write ``recipe``'s image for each of ``sources`` into ``out_dir``; see the module doc for what is
    kept, refused and recorded. Returns what was written and kept."""
    from tqdm import tqdm

    from srlab.imaging.io import write_image

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unwritable(out, exc) from None
    names = [name_of(p) for p in sources]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DataError(f"two source images would both be written as {out / dupes[0]}; rename one of them")
    manifest = _read_manifest(out)
    same_recipe = manifest.get("recipe") == recipe.to_dict()
    done: dict[str, int] = dict(manifest.get("files", {})) if same_recipe else {}
    res = PrepareResult(recipe.name, out, [out / n for n in names], recipe=recipe)
    try:
        bar = tqdm(
            list(zip(sources, names)), desc=recipe.name, unit="img", disable=None if progress else True
        )
        for src, name in bar:
            target = out / name
            if not force and target.is_file() and done.get(name) == target.stat().st_size:
                res.kept += 1
                continue
            px = make_pixels(recipe, src)
            if target.exists() and not force:
                if not _same_pixels(target, px):
                    raise DataError(
                        f"{target} exists and is not {recipe.describe()} of {src.name}; "
                        "pass --force to replace it, or choose another --out folder"
                    )
                res.kept += 1
            else:
                try:
                    write_image(target, px, overwrite=True)
                except OSError as exc:
                    raise _unwritable(out, exc) from None
                res.written += 1
            done[name] = target.stat().st_size
    finally:
        try:
            _write_manifest(out, recipe, source_dir, done)
        except OSError:  # an unwritable folder was already reported
            pass
    return res


def prepare(
    name: str,
    data_root: str | os.PathLike | None = None,
    *,
    source: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    force: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> PrepareResult:
    """Make the derived set ``name`` (``DIV2K_train_crop128``, ``DIV2K_valid_crop128``, ``DIV2K_valid_crop256``,
    ``FFHQ_thumbnails128``) from its originals.

    ``source``: the originals' folder (default: the source set found under the data root); ``out``: where to
    write (default ``DATA_ROOT/NAME``, where :func:`srlab.data.find.find_dataset` looks). Raises DataError
    (one line, naming the file and the fix) for missing, corrupt or wrong-size originals and for files in the
    way.
    """
    recipe = recipe_for(name)
    root = resolve_data_root(data_root)
    src_spec = DATASETS[recipe.source]
    out_dir = Path(out).expanduser() if out is not None else root / recipe.name
    have = _complete(recipe, out_dir)
    if have and not force:
        log(
            f"{recipe.name}: already prepared ({have} images in {out_dir}); nothing to do "
            "(--force makes them again)"
        )
        return PrepareResult(
            recipe.name,
            out_dir,
            sorted(out_dir / n for n in _read_manifest(out_dir)["files"]),
            kept=have,
            recipe=recipe,
        )
    if source is not None:
        src = from_folder(recipe.source, src_spec, Path(source).expanduser())
    else:
        try:
            src = find_dataset(recipe.source, root)
        except DataError as exc:
            raise DataError(f"{recipe.name} is made from {recipe.source}: {exc}") from None
    files = select_sources(recipe, src)
    want = recipe.first or src_spec.count
    notes = []
    if want and len(files) < want:
        notes.append(
            f"only {len(files)} of the {want} images of {recipe.source} are in {src.hr_dir}: "
            f"{recipe.name} will be incomplete"
        )
        log(f"{recipe.name}: warning: {notes[-1]}")
    res = make_images(recipe, files, out_dir, force=force, progress=progress, source_dir=src.hr_dir)
    res.notes += notes
    if res.nothing_to_do:
        log(
            f"{recipe.name}: already prepared ({len(res.files)} images in {out_dir}); nothing to do "
            "(--force makes them again)"
        )
    else:
        log(
            f"{recipe.name}: wrote {res.written} image{'s' * (res.written != 1)} to {out_dir}"
            + (f" ({res.kept} already there)" if res.kept else "")
            + f": {recipe.describe()} ({src.hr_dir})"
        )
    return res
