"""Training checkpoints: atomic writes, RNG states as plain types, and finding the latest one.

A checkpoint is a ``torch.save`` mapping of tensors and plain Python types only, so that
``torch.load(weights_only=True)`` reads it: model/optimizer/scaler state dicts, the RNG states of torch
(CPU and CUDA), numpy and Python's ``random``, the position (stage, iteration) and bookkeeping. Files are
written to a temporary name in the same folder, fsynced and renamed over the target (:mod:`srlab.atomic`), so a
crash never leaves a partial checkpoint; a checkpoint whose model weights are not finite is refused.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from srlab.atomic import move, write_stream
from srlab.errors import SrlabError
from srlab.runtime import cuda_rng_state, set_cuda_rng_state
from srlab.train.config import TrainConfig, config_to_dict

FORMAT = "srlab-train-checkpoint"
VERSION = 1
_NAME = re.compile(r"^ckpt_s(\d+)_(.+)_(\d{8})\.pt$")

__all__ = [
    "FORMAT",
    "atomic_save",
    "capture_rng",
    "check_resume",
    "checkpoint_name",
    "find_latest",
    "find_resume",
    "list_checkpoints",
    "load_checkpoint",
    "load_resume",
    "restore_rng",
]


def capture_rng() -> dict[str, Any]:
    """RNG states of torch (CPU, CUDA), numpy and random, as tensors and plain types."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    out: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(np_state[0]),
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {"version": int(py_state[0]), "state": list(py_state[1]), "gauss": py_state[2]},
    }
    cuda = cuda_rng_state()
    if cuda is not None:
        out["cuda"] = cuda
    return out


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    set_cuda_rng_state(state.get("cuda"))


def _nonfinite_tensor(sd: dict, prefix: str = "") -> str | None:
    for k, v in sd.items():
        if isinstance(v, torch.Tensor) and v.is_floating_point() and not bool(torch.isfinite(v).all()):
            return prefix + k
    return None


def atomic_save(obj: dict, path: Path | str, *, check_finite: tuple[str, ...] = ("models",)) -> Path:
    """``torch.save`` to a temporary file beside ``path`` then rename it into place.

    Every state dict under the ``check_finite`` keys must be finite, else :class:`SrlabError` (nothing is
    written): a NaN checkpoint is never produced.
    """
    path = Path(path)
    for key in check_finite:
        group = obj.get(key) or {}
        for name, sd in group.items():
            if isinstance(sd, dict):
                bad = _nonfinite_tensor(sd)
                if bad:
                    raise SrlabError(f"refusing to write {path.name}: {name} weight {bad} is not finite")
    write_stream(path, lambda fh: torch.save(obj, fh))
    return path


def checkpoint_name(stage_index: int, stage: str, iteration: int) -> str:
    return f"ckpt_s{stage_index}_{stage}_{iteration:08d}.pt"


def list_checkpoints(folder: Path | str) -> list[tuple[int, int, Path]]:
    """``(stage_index, iteration, path)`` of the checkpoints in ``folder``, oldest first."""
    d = Path(folder)
    if not d.is_dir():
        return []
    out = []
    for p in d.iterdir():
        m = _NAME.match(p.name)
        if m:
            out.append((int(m.group(1)), int(m.group(3)), p))
    return sorted(out)


def find_latest(folder: Path | str) -> Path | None:
    ck = list_checkpoints(folder)
    return ck[-1][2] if ck else None


def load_checkpoint(path: Path | str) -> dict:
    """Load a training checkpoint with ``weights_only=True``; SrlabError if it is not one."""
    p = Path(path)
    if not p.is_file():
        raise SrlabError(
            f"checkpoint {p} does not exist; use --resume auto or a path from runs/*/checkpoints"
        )
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds here
        raise SrlabError(
            f"{p}: not a readable srlab training checkpoint ({str(exc).splitlines()[0]})"
        ) from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise SrlabError(f"{p}: not an srlab training checkpoint (no '{FORMAT}' marker)")
    return obj


def find_resume(resume: str | Path | None, folder: Path) -> Path | None:
    """The checkpoint a run resumes from: ``resume`` = ``'auto'`` (the latest in ``folder``, None if there is
    none) or a path. Without ``resume``, a ``folder`` that holds checkpoints is an error: two runs never mix."""
    if resume:
        return find_latest(folder) if str(resume) == "auto" else Path(resume)
    if list_checkpoints(folder):
        raise SrlabError(
            f"{folder} already holds checkpoints of an earlier run; use --resume auto to continue it "
            "or --out DIR for a new run"
        )
    return None


def load_resume(
    resume: str | Path | None, folder: Path, warn: Callable[[str], None]
) -> tuple[Path, dict] | None:
    """``(path, checkpoint)`` to resume from, or None for a fresh start (see :func:`find_resume`).

    With ``'auto'``, an unreadable latest checkpoint (truncated, corrupt) is moved aside to
    ``NAME.unreadable`` with a warning and the one before it is tried, and so on; an explicit path is loaded
    as it is (SrlabError if unreadable).
    """
    path = find_resume(resume, folder)
    if path is None:
        return None
    if str(resume) != "auto":
        return path, load_checkpoint(path)
    for _si, _it, p in reversed(list_checkpoints(folder)):
        try:
            return p, load_checkpoint(p)
        except SrlabError as exc:
            aside = p.with_name(p.name + ".unreadable")
            move(p, aside)
            earlier = find_latest(folder)
            warn(
                f"warning: {exc}; moved it to {aside.name} and falling back to "
                + (earlier.name if earlier else "a fresh start (no earlier checkpoint)")
            )
    return None


def check_resume(ckpt: dict, path: Path, cfg: TrainConfig, world: int) -> str | None:
    """SrlabError unless ``ckpt`` was made by ``cfg``'s stages and model; a note when the number of processes
    differs (the data order then differs)."""
    names = cfg.stage_names()
    si, stage = int(ckpt["stage_index"]), ckpt["stage"]
    if si >= len(names) or names[si] != stage:
        raise SrlabError(
            f"{path}: checkpoint of stage {stage!r} (#{si}) but the config's stages are {names}; "
            "resume with the config that made it"
        )
    old = ckpt.get("config", {})
    if old.get("model") != config_to_dict(cfg)["model"]:
        raise SrlabError(f"{path}: checkpoint of a different model ({old.get('model')}); use its config")
    ws = int(ckpt.get("world_size", 1))
    if ws != world:
        return f"note: checkpoint made with {ws} processes, resuming with {world} (data order differs)"
    return None
