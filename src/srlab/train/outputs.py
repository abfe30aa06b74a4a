"""The files a training run writes in its output folder (rank 0 only).

- ``config.yaml``: the resolved config.
- ``{stage}.safetensors`` after each stage, ``best_{stage}.safetensors`` on each new best validation score
  and ``model.safetensors`` (the final stage's generator), written with :func:`srlab.weights.io.save_model`
  and metadata (arch, hparams, recipe, protocol, perceptual weights, iterations, best validation PSNR).
- ``checkpoints/ckpt_s{stage}_{name}_{iter}.pt`` (:mod:`srlab.train.checkpoint`): models (G, D, EMA),
  optimisers, scalers, RNG states of every rank, position and best metrics; the oldest beyond
  ``checkpoint.keep`` are deleted.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from srlab.atomic import write_stream, write_text
from srlab.errors import SrlabError
from srlab.serialize import jsonable
from srlab.train.checkpoint import (
    FORMAT,
    VERSION,
    atomic_save,
    checkpoint_name,
    list_checkpoints,
)
from srlab.train.config import TrainConfig, config_to_dict
from srlab.train.state import StageState
from srlab.weights.io import save_model
from srlab.weights.shipped import get_shipped, shipped_path

__all__ = ["RunOutputs"]


class RunOutputs:
    """Paths and writers of one run's files; ``world`` is the number of training processes."""

    def __init__(self, cfg: TrainConfig, out_dir: Path, *, world: int = 1) -> None:
        self.cfg = cfg
        self.out_dir = Path(out_dir)
        self.world = world
        self.ckpt_dir = self.out_dir / "checkpoints"
        self.final_path = self.out_dir / "model.safetensors"
        self.data_digest: str | None = None  # SRTrainSet.fingerprint() of the training data, once loaded
        self.forced_resumes: list[dict] = []  # resumes accepted with --force-resume despite a change

    def stage_path(self, name: str) -> Path:
        return self.out_dir / f"{name}.safetensors"

    def best_path(self, name: str) -> Path:
        return self.out_dir / f"best_{name}.safetensors"

    def checkpoint_path(self, stage: StageState) -> Path:
        return self.ckpt_dir / checkpoint_name(stage.index, stage.name, stage.iteration)

    # ------------------------------------------------------------------------------------------ files
    def write_config(self) -> None:
        text = yaml.safe_dump(config_to_dict(self.cfg), sort_keys=False)
        write_text(self.out_dir / "config.yaml", text)

    def metadata(self, stage: StageState) -> dict[str, Any]:
        """What an exported generator records about its training (read back by srlab.weights.io)."""
        cfg = self.cfg
        earlier = cfg.stage_names()[: stage.index]
        iters = {n: cfg.stages[n].iterations for n in earlier}
        iters[stage.name] = stage.iteration
        percep = {n: stage.result.stages.get(n, {}).get("perceptual_weights") for n in earlier}
        percep[stage.name] = stage.runner.perceptual_source
        best = stage.best
        return {
            "recipe": cfg.name,
            "config": config_to_dict(cfg),
            "protocol": cfg.protocol,
            "degradation": "paired LR folder" if cfg.data.train_lr else cfg.data.degradation,
            "training_data": config_to_dict(cfg)["data"]["train"],  # a folder or a weighted list
            "stage": stage.name,
            "iterations": iters,
            "perceptual_weights": percep,
            "ema": bool(stage.runner.ema is not None),
            "best_val": dict(best) if best else None,
            "best_val_psnr": best.get("psnr") if best else None,
            "trained_with": "srlab train",
            **({"kept": stage.summary["kept"]} if stage.summary.get("kept") else {}),
            **({"forced_resumes": list(self.forced_resumes)} if self.forced_resumes else {}),
        }

    def export(self, path: Path, model: nn.Module, stage: StageState) -> None:
        """Write ``model`` with :meth:`metadata`; a model with a non-finite weight is refused."""

        for k, v in model.state_dict().items():
            if v.is_floating_point() and not bool(torch.isfinite(v).all()):
                raise SrlabError(f"refusing to export {path.name}: weight {k} is not finite")
        try:
            save_model(path, model, metadata=self.metadata(stage))
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror or str(exc), exc.filename or str(path)) from None
        except Exception as exc:  # noqa: BLE001 - safetensors reports I/O errors as its own type
            code = re.search(r"os error (\d+)", str(exc))
            if code is None:
                raise
            n = int(code.group(1))
            raise OSError(n, os.strerror(n), str(path)) from None

    def init_path(self, stage: str, init: str) -> Path:
        """The weights a stage's ``init`` names: an earlier stage's export, a file, or a shipped model."""
        if init in self.cfg.stages:
            path = self.stage_path(init)
            if not path.exists():
                raise SrlabError(f"stage {stage}: init {init!r} needs {path}, which the earlier stage writes")
            return path
        path = Path(init).expanduser()
        if not path.exists() and get_shipped(init):  # a model srlab ships (srcnn-x2, ...)
            return shipped_path(init)
        return path

    def finish(self, last_stage: str) -> Path:
        """``model.safetensors``: a copy of the last stage's export (atomic: a kill leaves the old or the new)."""
        with open(self.stage_path(last_stage), "rb") as src:
            write_stream(self.final_path, lambda fh: shutil.copyfileobj(src, fh))
        return self.final_path

    # ------------------------------------------------------------------------------------ checkpoints
    def save_checkpoint(
        self, stage: StageState, generator: nn.Module, rngs: list[dict], *, items: int, done: bool
    ) -> Path:
        """Write the checkpoint of ``stage`` at its iteration (``rngs``: every rank's RNG states; ``items``:
        the training set's size), then prune old ones."""
        runner = stage.runner
        path = self.checkpoint_path(stage)
        models = {"g": generator.state_dict(), **runner.model_states()}
        summary = {k: dict(v) for k, v in stage.result.stages.items()}
        summary.setdefault(stage.name, {})["best"] = dict(stage.best) or None
        obj = {
            "format": FORMAT,
            "version": VERSION,
            "config": config_to_dict(self.cfg),
            "stage_index": stage.index,
            "stage": stage.name,
            "iteration": stage.iteration,
            "stage_done": done,
            "world_size": self.world,
            # where the data stream stands (a function of the iteration; recorded for the reader)
            "data": self.data_position(stage.index, stage.iteration, items),
            "models": models,
            "stage_state": runner.state_dict(),
            "rng": rngs,
            "summary": jsonable(summary),
            "perceptual_weights": runner.perceptual_source,
            "forced_resumes": list(self.forced_resumes),
            "time": time.time(),
        }
        atomic_save(obj, path)
        self.prune()
        return path

    def stream_offset(self, stage_index: int) -> int:
        """Stream positions consumed by the stages before ``stage_index``."""
        stages = list(self.cfg.stages.values())
        return sum(s.iterations * s.batch_size * self.world for s in stages[:stage_index])

    def data_position(self, stage_index: int, iteration: int, items: int) -> dict[str, int]:
        st = list(self.cfg.stages.values())[stage_index]
        pos = self.stream_offset(stage_index) + iteration * st.batch_size * self.world
        return {
            "seed": self.cfg.seed,
            **({"digest": self.data_digest} if self.data_digest else {}),
            "samples_seen": pos,
            "epoch": pos // items,
            "position_in_epoch": pos % items,
            "items": items,
        }

    def prune(self) -> None:
        keep = self.cfg.checkpoint.keep
        if keep <= 0:
            return
        for _si, _it, p in list_checkpoints(self.ckpt_dir)[:-keep]:
            try:
                p.unlink()
            except FileNotFoundError:
                pass
