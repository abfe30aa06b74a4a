"""Atomic file writes with the permissions a plain ``open()`` would give (images, weights, ONNX exports,
checkpoints: every file srlab writes).

A file is written to a temporary name in the
target folder and renamed into place, so a crash never leaves half a file under the real name.
``tempfile.mkstemp`` creates that temporary file mode 0600 whatever the umask; :func:`atomic_path` sets
the mode the user's umask asks for (0644 under the usual 022) before the rename, as ``open()`` would.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from srlab.errors import SrlabError

__all__ = ["atomic_path", "file_mode", "publish"]


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


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = ".tmp") -> Iterator[str]:
    """A temporary file name beside ``path``; when the block ends without error the file gets
    :func:`file_mode` and is renamed onto ``path``, otherwise it is deleted.

    A ``path`` that is a folder, a parent that cannot be created and a failed write (disk full, read-only)
    are one :class:`~srlab.errors.SrlabError` line each.
    """
    path = Path(path)
    if path.is_dir():
        raise SrlabError(f"{path}: is a folder; give a file name to write")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    except OSError as exc:
        raise SrlabError(
            f"{path}: cannot write there ({exc.strerror or exc}); choose another folder"
        ) from None
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except OSError as exc:
        if exc.errno is None:
            raise
        raise SrlabError(f"{path}: writing failed ({exc.strerror or exc}); nothing was written") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
