"""One run per output folder: the run-folder lock, stale temporary files, what a resume may change, and
write failures as one line.

- **Lock** (:class:`RunLock`): ``fcntl.flock`` on ``{out}/.train.lock``, which holds the holder's pid and
  host. The kernel drops the lock when the holder exits however it exits (``kill -9`` included), so a lock is
  never stale; the file itself stays (unlinking a lock file lets two processes lock two different inodes).
  Without ``fcntl`` (not POSIX) no lock is taken.
  Under DDP only rank 0 holds it (:func:`hold_run_folder`); its answer is shared with every rank.
- **Stale temporary files** (:func:`clean_stale_temps`): the ``.NAME.XXXX.tmp`` / ``.part`` files atomic
  writes leave behind when a process is killed mid-write. Only a process holding the lock removes them.
- **Resume checks** (:func:`resume_changes`): the seed, the data section, the stages (the recipe) and the
  training images themselves (a digest of what was loaded) must match the checkpoint's.
- **Write failures** (:func:`write_error`): an ``OSError`` (a full disk, a read-only folder) as one line naming
  the file and the last good checkpoint.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import time
from pathlib import Path
from typing import Any

from srlab.errors import SrlabError
from srlab.train.checkpoint import find_latest
from srlab.train.distributed import broadcast_object

try:
    import fcntl
except ImportError:  # not POSIX: no lock is taken
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "flat_keys",
    "LOCK_NAME",
    "RunLock",
    "clean_stale_temps",
    "hold_run_folder",
    "resume_changes",
    "review_resume",
    "write_error",
]

LOCK_NAME = ".train.lock"
# what srlab's atomic writes name their temporary files: ".{target}.{random}.tmp" (checkpoints, safetensors
# exports, config) and ".{target}.{random}.part" (images: validation samples)
_TEMP = re.compile(r"^\..+\.(tmp|part)$")
# the parts of a config that decide the weights a run produces (runtime, logging, checkpoints and validation
# settings may change between invocations)
_RECIPE_KEYS = ("seed", "scale", "data", "stages")
# where the images come from: another spelling of the same folder is no change when the images are the same
_PATH_KEYS = ("data.train", "data.train_lr")


class RunLock:
    """An exclusive, non-blocking lock on a run folder (see the module docstring); also a context manager."""

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock, or :class:`SrlabError` naming the pid that holds it."""
        if fcntl is None or self._fd is not None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_holder(fd)
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise SrlabError(
                f"{self.folder} is in use by another training ({holder}); wait for it to end, or train "
                "into another folder with --out DIR"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)  # an unheld lock file names nobody
        except OSError:
            pass
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    """``pid N on HOST`` from the lock file (the holder writes it just after locking: retry briefly)."""
    for _ in range(20):
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 256).decode(errors="replace").split()
        if text:
            return f"pid {text[0]}" + (f" on {text[1]}" if len(text) > 1 else "")
        time.sleep(0.05)
    return "pid unknown"


def hold_run_folder(folder: Path | str, *, rank: int, world: int) -> RunLock | None:
    """Rank 0 takes the folder's lock; every rank raises rank 0's refusal. Returns the held lock (rank 0)."""
    lock, refusal = None, None
    if rank == 0:
        lock = RunLock(folder)
        try:
            lock.acquire()
        except SrlabError as exc:
            lock, refusal = None, str(exc)
    refusal = broadcast_object(refusal, world)
    if refusal:
        raise SrlabError(refusal)
    return lock


def clean_stale_temps(out_dir: Path) -> list[Path]:
    """Remove the temporary files interrupted atomic writes left in the run folder (call with the lock held)."""
    removed = []
    for d in (out_dir, out_dir / "checkpoints", out_dir / "samples"):
        if not d.is_dir():
            continue
        for p in d.iterdir():
            if _TEMP.match(p.name) and p.is_file() and not p.is_symlink():
                try:
                    p.unlink()
                    removed.append(p)
                except FileNotFoundError:
                    pass
    return removed


def flat_keys(d: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config mapping as ``{"stages.train.lr": value, ...}``."""
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(flat_keys(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def resume_changes(
    old_cfg: dict, new_cfg: dict, old_data: str | None = None, new_data: str | None = None
) -> list[str]:
    """What differs between a checkpoint's run and this one: ``'seed 0 -> 3'``, ``'data.crop 16 -> 24'``,
    ``'training images differ (digest ...)'``; ``old_data``/``new_data`` are data-set digests (None: unknown)."""
    a = flat_keys({k: old_cfg.get(k) for k in _RECIPE_KEYS})
    b = flat_keys({k: new_cfg.get(k) for k in _RECIPE_KEYS})
    same_images = bool(old_data) and old_data == new_data
    out = [
        f"{k} {a.get(k)} -> {b.get(k)}"
        for k in dict.fromkeys([*a, *b])
        if a.get(k) != b.get(k) and not (same_images and k in _PATH_KEYS) and not _longer_stage(k, a, b)
    ]
    if old_data and new_data and old_data != new_data:
        out.append(f"training images differ (digest {old_data[:8]} -> {new_data[:8]})")
    return out


def _longer_stage(key: str, a: dict, b: dict) -> bool:
    """A stage given more iterations: training longer continues the run, it does not change what ran."""
    parts = key.split(".")
    if len(parts) != 3 or parts[0] != "stages" or parts[2] != "iterations":
        return False
    old, new = a.get(key), b.get(key)
    return isinstance(old, int) and isinstance(new, int) and new > old


def review_resume(
    ckpt: dict, path: Path, cfg: dict, digest: str | None, *, force: bool
) -> tuple[list[dict], str | None]:
    """``(forced resumes to record, a warning)`` for resuming ``cfg`` (a config dict) over data of ``digest``
    from ``ckpt``; :class:`SrlabError` when the seed, data or recipe changed and ``force`` is off."""
    forced = list(ckpt.get("forced_resumes") or [])
    changes = resume_changes(ckpt.get("config") or {}, cfg, (ckpt.get("data") or {}).get("digest"), digest)
    if not changes:
        return forced, None
    shown = ", ".join(changes[:4]) + (f" and {len(changes) - 4} more" if len(changes) > 4 else "")
    if not force:
        raise SrlabError(
            f"{path}: this run differs from the checkpoint's ({shown}); resume with the config and data that "
            "made it, or pass --force-resume to continue anyway (recorded in the run)"
        )
    forced.append(
        {
            "from": str(path),
            "iteration": int(ckpt.get("iteration", 0)),
            "changes": changes,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
    )
    return forced, f"warning: --force-resume: continuing from {path.name} despite {shown}"


def write_error(exc: OSError, out_dir: Path, ckpt_dir: Path) -> str:
    """One line for an OSError during training: the file, the reason, what to do, the last good checkpoint
    (the latest in ``ckpt_dir``: a failed write never replaces one)."""

    where = exc.filename or f"a file in {out_dir}"
    text = f"{where}: {exc.strerror or exc}"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        text += "; free space (or train into --out on another disk), then continue with --resume auto"
    elif exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
        text += "; make the folder writable or train into another --out"
    try:
        last = find_latest(ckpt_dir)
    except OSError:  # the folder itself cannot be read
        last = None
    if last is not None:
        return text + f"; the last good checkpoint is {last}"
    return text + "; no checkpoint was written"
