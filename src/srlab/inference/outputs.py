"""Where upscaled files go, and whether they may be written: the rules ``srlab upscale``,
:meth:`Upscaler.upscale_file <srlab.inference.upscaler.Upscaler.upscale_file>` and a service share.

- names: ``<stem><suffix>.<ext>`` (:func:`join_suffix`: Real-ESRGAN's joining rule; default suffix
  ``_x<scale>``; Real-ESRGAN's ``-n`` defaults in :data:`REALESRGAN_DEFAULTS`), the extension the input's
  (``same``; PNG for formats srlab does not write, and for transparency an extension cannot hold) or one
  asked for; one input and an ``out`` that names an image file: that file;
- trees: :func:`expand_inputs` records each file's path relative to what was named (the folder, with
  ``recursive`` its sub-folders too, or a glob's fixed folder), and :class:`OutputPlan` mirrors it under
  ``out``;
- :func:`check_target` decides, for every writer, that an input is never written over (not even with
  ``overwrite``), that two inputs of a batch do not share an output, and that an existing output is
  replaced only with ``overwrite`` (``--force``) or kept with ``skip_existing`` (:class:`Skipped`).

Nothing here upscales or imports torch. The final write is still the no-clobber :func:`srlab.atomic.publish`
underneath :func:`srlab.imaging.io.write_image`, so a file that appears meanwhile is not replaced either.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from srlab.errors import ConfigError

__all__ = [
    "ALPHA_EXTS",
    "MEDIA_EXTS",
    "OUT_EXTS",
    "REALESRGAN_DEFAULTS",
    "OutputPlan",
    "OutputRules",
    "Skipped",
    "check_target",
    "expand_inputs",
    "join_suffix",
    "outside_output",
]

OUT_EXTS = ("png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff")
# single-file outputs of video and animated inputs (srlab.inference.video / .animated; not imported here)
MEDIA_EXTS = ("gif", "apng", "mp4", "m4v", "mkv", "mov", "webm", "avi")
ALPHA_EXTS = (".png", ".webp", ".tif", ".tiff", ".bmp")  # the output formats that keep transparency
# Real-ESRGAN's inference_realesrgan.py names and sizes outputs with these (``-n``: its scripts find their
# files where they expect them)
REALESRGAN_DEFAULTS = {"suffix": "out", "outscale": 4.0}


class Skipped(Exception):
    """An output that ``skip_existing`` keeps (found once the input is decoded and its name is final)."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path


def join_suffix(suffix: str) -> str:
    """Real-ESRGAN's rule: a suffix that starts with a letter or digit is joined with ``_`` (``out`` ->
    ``name_out``); one that starts otherwise (``_x4``, ``-sr``, ``.up``) is used as it is."""
    return f"_{suffix}" if suffix[:1].isalnum() else suffix


def check_suffix(suffix: str) -> None:
    """Refuse a suffix that could leave the output folder (path separators, ``..``) or is not a name."""
    seps = {"/", "\\", os.sep, os.altsep} - {None}
    if any(c in suffix for c in seps) or ".." in suffix or "\0" in suffix:
        raise ConfigError(
            f"--suffix {suffix!r} must not contain path separators or '..' (outputs stay inside -o); "
            "use a plain suffix such as _x2"
        )


@dataclass(frozen=True)
class OutputRules:
    """How outputs are named and when they may be written. ``suffix``: added to the stem (``None``:
    ``_x<scale>``); ``ext``: ``'same'`` (``'auto'`` is Real-ESRGAN's name for it) or one of
    :data:`OUT_EXTS`; ``force``: replace existing outputs (never inputs); ``skip_existing``: keep them."""

    suffix: str | None = None
    ext: str = "same"
    force: bool = False
    skip_existing: bool = False

    def __post_init__(self) -> None:
        if self.skip_existing and self.force:
            raise ConfigError("--skip-existing keeps existing outputs and --force replaces them; pass one")
        if self.suffix is not None:
            check_suffix(self.suffix)
        if self.ext == "auto":
            object.__setattr__(self, "ext", "same")
        if self.ext != "same" and self.ext not in OUT_EXTS:
            raise ConfigError(f"--ext {self.ext!r}: use one of {', '.join(OUT_EXTS)} or same")

    def suffix_for(self, scale: float) -> str:
        if self.suffix is not None:
            return join_suffix(self.suffix)
        return f"_x{int(scale) if float(scale).is_integer() else f'{scale:g}'}"


def expand_inputs(
    specs: list[str], *, recursive: bool = False, rels: dict | None = None, notes: list | None = None
) -> tuple[list, list[str]]:
    """(files, problems): folders give their image files (:func:`srlab.imaging.files.list_images`, sub-folders
    too with ``recursive``), globs their image matches, named files themselves; each problem is one line.

    ``rels`` (a dict) receives each file's path relative to its root (the folder, the glob's fixed folder,
    or just the name of a named file): where its output goes under ``out``, and its shard key. ``notes``
    (a list) receives a line for each folder whose sub-folders were left out (no ``recursive``)."""
    from srlab.imaging.files import IMAGE_EXTENSIONS, glob_images, glob_root, has_magic, list_images

    files: list[Path] = []
    problems: list[str] = []
    seen: set = set()

    def add(p: Path, root: Path | None) -> None:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            files.append(p)
            if rels is not None:
                rels[p] = Path(p.name) if root is None else p.relative_to(root)

    for spec in specs:
        p = Path(spec)
        if p.is_dir():
            found = list_images(p, recursive=recursive)
            if not found:
                problems.append(
                    f"{p}: folder has no image files ({', '.join(IMAGE_EXTENSIONS)}); check the path"
                    + ("" if recursive else " (sub-folders need --recursive)")
                )
            elif notes is not None and not recursive:
                subs = [q for q in p.iterdir() if q.is_dir() and not q.name.startswith(".")]
                if subs:
                    notes.append(f"note: {p}: {len(subs)} sub-folder(s) left out; --recursive mirrors them")
            for q in found:
                add(q, p)
        elif p.exists() or p.is_symlink():
            add(p, None)  # named explicitly: read_image says what is wrong with it, if anything
        elif has_magic(spec):
            images, matched = glob_images(spec)
            if not matched:
                problems.append(f"{spec}: no file matches this pattern; check it")
            elif not images:
                problems.append(f"{spec}: matches no image file ({', '.join(IMAGE_EXTENSIONS)}); check it")
            root = glob_root(spec)
            for m in images:
                add(m, root)
        else:
            problems.append(f"{p}: no such file or folder; check the path")
    return files, problems


def outside_output(files: list, rels: dict, out: str, notes: list[str]) -> tuple[list, list[str]]:
    """Leave out the files inside ``out`` when ``out`` lies below the folder they were listed from (``photos
    -o photos/big -r``): a rerun would otherwise take the last run's outputs as inputs."""
    o = os.path.realpath(out)
    keep, dropped = [], 0
    for f in files:
        root = f.parents[len(rels[f].parts) - 1] if f in rels else f.parent
        inside = os.path.realpath(f).startswith(o + os.sep) and os.path.realpath(root) != o
        dropped += inside
        if not inside:
            keep.append(f)
    if dropped:
        notes = [*notes, f"note: {dropped} file(s) inside -o {out} left out (outputs of an earlier run)"]
    return keep, notes


class _Inputs:
    """The inputs a write must never replace: by resolved path, and by file identity (hard links too)."""

    def __init__(self, files) -> None:
        self.paths = {os.path.realpath(f) for f in files}
        self.ids = {i for i in map(_file_id, files) if i is not None}

    def __contains__(self, path) -> bool:
        if os.path.realpath(path) in self.paths:
            return True
        i = _file_id(path) if self.ids else None
        return i is not None and i in self.ids


def _file_id(path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if st.st_ino else None


def check_target(
    src,
    dst,
    *,
    overwrite: bool = False,
    skip_existing: bool = False,
    inputs: _Inputs | None = None,
    claimed: dict | None = None,
) -> Path:
    """``dst``, if ``src`` may be written there; else an ImageError saying why (or :class:`Skipped`).

    Never an input (``inputs``: the batch's, default ``src`` alone; not even with ``overwrite``); never
    the output of another input of the batch (``claimed``: resolved output path -> its input, updated);
    an existing file is kept with ``skip_existing`` and replaced only with ``overwrite``."""
    from srlab.imaging.io import ImageError

    dst = Path(dst)
    if dst in (_Inputs([src]) if inputs is None else inputs):
        raise ImageError(f"{src}: its output {dst} would overwrite an input file; use --suffix or another -o")
    if claimed is not None:
        key = os.path.realpath(dst)
        if key in claimed:
            raise ImageError(
                f"{src}: output {dst} is also the output of {claimed[key]}; rename one or use separate -o folders"
            )
        claimed[key] = src
    if dst.exists() and skip_existing:
        raise Skipped(dst)
    if dst.exists() and not overwrite:
        raise ImageError(
            f"{src}: output {dst} already exists; pass --skip-existing to keep it or --force to replace it"
        )
    return dst


class OutputPlan:
    """The outputs of one batch: ``files`` (with ``rels`` as :func:`expand_inputs` fills it) into ``out``
    under ``rules``, for a model of scale ``scale``. ``inputs``: every input of the job (default ``files``;
    with ``--shard``, all shards' inputs: no share may write over another's input either).

    ``paths[i]`` is where ``files[i]`` is planned to go; :meth:`claim` makes it final once the input is
    decoded, and refuses it (ImageError, or :class:`Skipped`) as :func:`check_target` says. An ``out`` that
    cannot be written (a file where a folder is needed, a file among its parents) is a ConfigError here,
    before any work."""

    def __init__(self, rules: OutputRules, files: list, out: str, *, scale: float, rels=None, inputs=None):
        self.rules, self.out = rules, str(out)
        self.paths = _plan(files, self.out, rules.suffix_for(scale), rules.ext, rels)
        self.single_file = len(self.paths) == 1 and self.paths[0] == Path(self.out)
        _check_out(self.out, len(files), self.single_file)
        self._inputs = _Inputs(files if inputs is None else inputs)
        self._claimed: dict = {}

    def resume(self, src, dst) -> bool:
        """With ``skip_existing``: whether the planned ``dst`` exists already (counted as skipped without
        decoding ``src``, so a finished folder costs no decoding). A second input with this output is
        still reported as a clash."""
        if not (self.rules.skip_existing and dst.exists()):
            return False
        key = os.path.realpath(dst)
        if dst in self._inputs or key in self._claimed:
            return False
        self._claimed[key] = src
        return True

    def claim(self, src, dst, img=None) -> Path:
        """The final output of ``src`` (planned: ``dst``) given its decoded ``img`` (None for videos and
        animations, which have their own formats): PNG where the planned extension would lose the
        transparency (``ext`` same, folder outputs, whether the folder exists yet or not). Refused as
        :func:`check_target` says."""
        dst = Path(dst)
        alpha = img is not None and img.alpha is not None
        if (
            alpha
            and self.rules.ext == "same"
            and not self.single_file
            and dst.suffix.lower() not in ALPHA_EXTS
        ):
            dst = dst.with_suffix(".png")  # a file named by the caller keeps its name (JPEG: flattened)
        return check_target(
            src,
            dst,
            overwrite=self.rules.force,
            skip_existing=self.rules.skip_existing,
            inputs=self._inputs,
            claimed=self._claimed,
        )

    def media(self, kind: str, src, dst) -> Path:
        """Where a video or animated ``src`` goes: ``out`` itself when it names the one output file, else
        the planned ``dst`` in the input's own format (a video keeps its container; an animation its format
        unless ``ext`` names another, which upscale_animation refuses when it cannot animate)."""
        if self.single_file or (kind == "animation" and self.rules.ext != "same"):
            return Path(dst)
        suffix = Path(src).suffix.lower()
        return Path(dst).with_suffix(".png" if suffix == ".apng" else suffix)


def _plan(files, out: str, suffix: str, ext: str, rels) -> list[Path]:
    """Output path per input: in the folder ``out`` (``<rel folder>/<stem><suffix>.<ext>``), or the file
    ``out`` for one input when it names an image or media file."""
    o = Path(out)
    as_file = (
        len(files) == 1
        and not o.is_dir()
        and not out.endswith(("/", "\\"))
        and o.suffix.lower().lstrip(".") in OUT_EXTS + MEDIA_EXTS
    )
    if as_file:
        return [o]
    result = []
    for f in files:
        e = ext
        if e == "same":
            e = f.suffix.lower().lstrip(".")
            if e not in OUT_EXTS:
                e = "png"
        sub = rels[f].parent if rels and f in rels else Path()
        result.append(o / sub / f"{f.stem}{suffix}.{e}")
    return result


def _check_out(out: str, n_files: int, as_file: bool) -> None:
    """Refuse up front an ``out`` that cannot be written: an existing file where a folder is needed, or a
    file among its parents (missing parents are fine: they are created)."""
    o = Path(out)
    if not as_file and o.exists() and not o.is_dir():
        raise ConfigError(
            f"-o {out}: is an existing file, but {n_files} input(s) need an output folder; "
            "name a folder (new or existing) instead"
        )
    for parent in o.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"-o {out}: {parent} is a file, not a folder; choose another output path")
            break
