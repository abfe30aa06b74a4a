"""The one writer: every file srlab writes goes through this module (images via the imaging codecs,
weights, ONNX exports, checkpoints, downloads, prepared data, results, reports, figures), and it is the only
module that makes temporary files or renames them into place (``tests/test_architecture.py`` holds that).

A file is written to a temporary name in the target folder and renamed into place, so a crash never leaves
half a file under the real name. ``tempfile.mkstemp`` creates that temporary file mode 0600 whatever the
umask; the finished file gets the mode the user's umask asks for (0644 under the usual 022), as ``open()``
would give. Without ``overwrite`` an existing target, also one that appeared while the file was written, is
refused (:func:`publish`).

Two levels: :func:`staged` and :func:`write_stream` raise plain ``OSError`` (``FileExistsError`` for a
refused overwrite) so that a layer with its own error wording (imaging, training) words it; :func:`atomic_path`,
:func:`write_bytes`, :func:`write_text` and :func:`write_json` raise one :class:`~srlab.errors.SrlabError` line.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from srlab.errors import SrlabError
from srlab.serialize import dumps

__all__ = [
    "atomic_path",
    "check_name",
    "check_writable",
    "file_mode",
    "move",
    "open_staged",
    "publish",
    "remove_stale_temps",
    "scratch_dir",
    "scratch_file",
    "staged",
    "write_bytes",
    "write_json",
    "write_stream",
    "write_text",
]


def _umask() -> int:
    # /proc reads the umask without changing it (os.umask can only read by setting, racing other threads)
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Permissions a newly created file gets from ``open()``: 0o666 minus the umask."""
    return 0o666 & ~_umask()


def publish(tmp: str | os.PathLike, dst: str | os.PathLike, *, overwrite: bool) -> None:
    """Put the finished file ``tmp`` in place as ``dst``. With ``overwrite`` a rename; without it an existing
    ``dst``, also one that appeared while ``tmp`` was written, raises FileExistsError: a hard link is
    atomic and fails if the name is taken (on a file system without hard links: a last check, then the
    rename). After a link ``tmp`` still exists; the caller deletes it as it does on failure."""
    if overwrite:
        os.replace(tmp, dst)
        return
    try:
        os.link(tmp, dst)
    except FileExistsError:
        raise
    except OSError:  # no hard links on this file system
        if os.path.exists(dst):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dst)) from None
        os.replace(tmp, dst)


_NAME = re.compile(r"[^/\\\x00-\x1f.][^/\\\x00-\x1f]{0,99}")


def check_name(text: str, what: str) -> str:
    """``text`` if it is a plain name that may become one path component (no ``/`` or ``\\``, no control
    character, not starting with a dot, at most 100 characters), else a ValueError naming ``what``: names read
    from files (study specs, training configs) never climb out of the folder they are put in."""
    if not isinstance(text, str) or not _NAME.fullmatch(text):
        shown = repr(text)[:60]
        raise ValueError(
            f"{what} {shown} is not a plain name (no '/' or '\\', not starting with '.', at most 100 "
            "characters); it becomes a folder name"
        )
    return text


def move(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Rename ``src`` to ``dst`` in one step (e.g. an unreadable checkpoint set aside)."""
    os.replace(src, dst)


@contextlib.contextmanager
def staged(
    path: str | os.PathLike, *, suffix: str = ".tmp", overwrite: bool = True, fsync: bool = False
) -> Iterator[Path]:
    """A temporary path beside ``path`` (hidden: ``.NAME.XXXX<suffix>``). When the block ends without error
    the file gets :func:`file_mode`, is fsynced if asked, and is published onto ``path``; on any error,
    Ctrl-C included, it is deleted. OSErrors propagate as they are (FileExistsError: ``path`` exists and
    ``overwrite`` is false)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, file_mode())
        if fsync:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        publish(tmp, path, overwrite=overwrite)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def open_staged(
    path: str | os.PathLike, *, overwrite: bool = True, suffix: str = ".tmp", fsync: bool = True
) -> Iterator[IO[bytes]]:
    """A binary file handle on a temporary file beside ``path``; when the block ends without error it is
    flushed, fsynced and published onto ``path`` (see :func:`staged`), otherwise deleted. An OSError without
    a file name gets ``path`` as its file name."""
    try:
        with staged(path, suffix=suffix, overwrite=overwrite) as tmp:
            with open(tmp, "wb") as fh:
                yield fh
                fh.flush()
                if fsync:
                    os.fsync(fh.fileno())
    except OSError as exc:
        if not exc.filename and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
        raise


def write_stream(
    path: str | os.PathLike,
    write: Callable[[IO[bytes]], Any],
    *,
    overwrite: bool = True,
    suffix: str = ".tmp",
    fsync: bool = True,
) -> None:
    """``write(fh)`` into :func:`open_staged` ``(path)``: published whole, or not at all."""
    with open_staged(path, overwrite=overwrite, suffix=suffix, fsync=fsync) as fh:
        write(fh)


def _one_line(path: Path, exc: OSError) -> SrlabError:
    if isinstance(exc, FileExistsError):
        return SrlabError(f"{path}: already exists; pass --force to replace it, or choose another name")
    return SrlabError(f"{path}: writing failed ({exc.strerror or exc}); nothing was written")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = ".tmp", overwrite: bool = True) -> Iterator[str]:
    """:func:`staged` for writers that take a file name (safetensors, ONNX, matplotlib, Pillow), with a
    folder as ``path``, a parent that cannot be created and a failed write (disk full, read-only) one
    :class:`~srlab.errors.SrlabError` line each."""
    path = Path(path)
    if path.is_dir():
        raise SrlabError(f"{path}: is a folder; give a file name to write")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SrlabError(
            f"{path}: cannot write there ({exc.strerror or exc}); choose another folder"
        ) from None
    try:
        with staged(path, suffix=suffix, overwrite=overwrite) as tmp:
            yield str(tmp)
    except OSError as exc:
        if exc.errno is None:
            raise
        raise _one_line(path, exc) from None


def write_bytes(path: str | os.PathLike, data: bytes, *, overwrite: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically; one SrlabError line on failure."""
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
    return path


def write_text(path: str | os.PathLike, text: str, *, overwrite: bool = True) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically (newlines as given); one SrlabError line on failure."""
    return write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


def write_json(path: str | os.PathLike, obj: Any, *, overwrite: bool = True, indent: int | None = 1) -> Path:
    """``obj`` as JSON by the one rule (:mod:`srlab.serialize`), atomically, ending with a newline."""
    return write_text(path, dumps(obj, indent=indent) + "\n", overwrite=overwrite)


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that writes of ``path`` killed before they finished left beside it
    (:func:`staged`'s names: ``.NAME.XXXXXXXX.tmp`` / ``.part``, with any extension after). Call it when
    about to write ``path`` (a concurrent writer of the same name would be refused at publish anyway).
    Returns what was removed."""
    path = Path(path)
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.[a-z0-9_]{{8}}(\.tmp|\.part)(\.[A-Za-z0-9]{{1,8}})?$")
    removed = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for e in entries:
        if pattern.match(e.name) and e.is_file(follow_symlinks=False):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(e.path)
                removed.append(Path(e.path))
    return removed


def check_writable(folder: str | os.PathLike) -> Path:
    """Make ``folder`` (and its parents) and prove a file can be created in it, before long work whose
    results go there; one :class:`~srlab.errors.SrlabError` line otherwise. Leaves nothing behind."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=folder, prefix=".srlab-probe.", suffix=".tmp")
        try:
            os.write(fd, b"\0")
        finally:
            os.close(fd)
            os.unlink(name)
    except OSError as exc:
        raise SrlabError(
            f"{folder}: cannot write there ({exc.strerror or exc}); choose another folder"
        ) from None
    return folder


def scratch_file() -> IO[bytes]:
    """An anonymous temporary file (deleted when closed): scratch space, never a result."""
    return tempfile.TemporaryFile()


def scratch_dir(prefix: str = "srlab-") -> tempfile.TemporaryDirectory:
    """A temporary folder removed when the returned object is cleaned up: scratch space, never a result."""
    return tempfile.TemporaryDirectory(prefix=prefix)
