"""``--shard K/N``: split a batch between N independent workers by a stable hash of each item's path.

An item belongs to shard ``1 + (first 8 bytes of sha256(key), big-endian) mod N``, where the key is its
path relative to what the user named (the input folder or glob root for ``srlab upscale``; the data set
name and the path inside the set for ``srlab eval``), written with ``/``. The assignment depends on the
key alone, not on the list order or on which other files exist, so every worker computes it alone and
the same file always lands in the same shard: adding files to a folder moves no other file, and a rerun
of one failed shard redoes exactly its share. No worker talks to another; nothing here schedules.

Indices are 1-based (``1/4`` .. ``4/4``, as ``jest --shard`` or ``playwright --shard``). ``--shard auto``
reads the scheduler's variables: a SLURM job array (``SLURM_ARRAY_TASK_ID``, ``SLURM_ARRAY_TASK_COUNT``,
with ``SLURM_ARRAY_TASK_MIN`` and ``SLURM_ARRAY_TASK_STEP`` for arrays such as ``--array=1-16:2``), then
``torchrun`` / a Kubernetes indexed job (``RANK`` and ``WORLD_SIZE``; for Kubernetes set ``RANK`` from
``JOB_COMPLETION_INDEX`` and ``WORLD_SIZE`` from the job's completions).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from srlab.errors import ConfigError

__all__ = ["Shard", "parse_shard", "shard_of"]

T = TypeVar("T")
_ENV_HINT = (
    "set by a SLURM job array (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT) or torchrun (RANK, WORLD_SIZE)"
)


def shard_of(key: str, count: int) -> int:
    """The 1-based shard of ``key`` among ``count``."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()
    return 1 + int.from_bytes(digest[:8], "big") % count


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (1-based)."""

    index: int
    count: int

    def owns(self, key: str) -> bool:
        return shard_of(key, self.count) == self.index

    def select(self, items: Iterable[T], key: Callable[[T], str]) -> list[T]:
        """The items this shard owns, in their order."""
        return [it for it in items if self.owns(key(it))]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def to_dict(self) -> dict[str, int]:
        return {"index": self.index, "count": self.count}


def _int_env(env: Mapping[str, str], name: str) -> int | None:
    v = env.get(name)
    if v is None or not v.strip():
        return None
    try:
        return int(v)
    except ValueError:
        raise ConfigError(
            f"--shard auto: ${name} is {v!r}, not an integer; unset it or pass --shard K/N"
        ) from None


def _from_env(env: Mapping[str, str]) -> Shard:
    task, count = _int_env(env, "SLURM_ARRAY_TASK_ID"), _int_env(env, "SLURM_ARRAY_TASK_COUNT")
    if task is not None:
        if count is None:
            raise ConfigError(
                "--shard auto: SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not (SLURM before "
                "17.11?); pass --shard $((SLURM_ARRAY_TASK_ID + 1))/N instead"
            )
        lo = _int_env(env, "SLURM_ARRAY_TASK_MIN") or 0
        step = _int_env(env, "SLURM_ARRAY_TASK_STEP") or 1
        if step < 1 or (task - lo) % step:
            raise ConfigError(
                f"--shard auto: SLURM array task {task} is not min {lo} + a multiple of step {step}; "
                "use a regular --array range, or pass --shard K/N"
            )
        return _checked((task - lo) // step + 1, count, "SLURM_ARRAY_TASK_ID")
    rank, world = _int_env(env, "RANK"), _int_env(env, "WORLD_SIZE")
    if rank is not None and world is not None:
        return _checked(rank + 1, world, "RANK")
    raise ConfigError(f"--shard auto: no shard variables found ({_ENV_HINT}); pass --shard K/N instead")


def _checked(index: int, count: int, what: str) -> Shard:
    if count < 1:
        raise ConfigError(f"--shard: the number of shards must be >= 1, not {count}")
    if not 1 <= index <= count:
        raise ConfigError(
            f"--shard: index {index} (from {what}) is outside 1..{count}; shard indices are 1-based, "
            f"e.g. --shard 1/{count} .. {count}/{count}"
        )
    return Shard(index, count)


def parse_shard(text: str | None, env: Mapping[str, str] | None = None) -> Shard | None:
    """``"K/N"`` (1 <= K <= N), ``"auto"`` (from the environment, see the module text) or None/empty."""
    if text is None or not str(text).strip():
        return None
    text = str(text).strip()
    if text.lower() == "auto":
        return _from_env(os.environ if env is None else env)
    k, sep, n = text.partition("/")
    try:
        index, count = int(k), int(n)
    except ValueError:
        index = count = None
    if not sep or index is None:
        raise ConfigError(f"--shard {text!r}: expected K/N such as 1/4 (or auto)")
    return _checked(index, count, f"--shard {text}")
