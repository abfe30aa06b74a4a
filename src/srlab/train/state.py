"""Where a training run stands: :class:`TrainResult` (the whole run) and :class:`StageState` (one stage)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from srlab.train.config import StageConfig
    from srlab.train.recipes import StageRunner

__all__ = ["StageState", "TrainResult"]


@dataclass
class TrainResult:
    """What a run produced: per-stage summaries (iterations, best validation, export path), the final model
    once every stage is done, and the last checkpoint written."""

    out_dir: Path
    model_path: Path | None = None
    completed: bool = False
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    last_checkpoint: Path | None = None


@dataclass
class StageState:
    """One stage in progress: its position, its optimisation state and the best validation so far.

    ``best`` is empty until a validation ran, then holds the metric, value, PSNR, SSIM, iteration, set and
    protocol of the best one (what checkpoints and exports record).
    """

    index: int
    name: str
    cfg: StageConfig
    runner: StageRunner
    result: TrainResult
    iteration: int = 0
    best: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> dict[str, Any]:
        """This stage's entry in ``result.stages``."""
        return self.result.stages.setdefault(self.name, {})
