"""The hand-offs between the stages of a study: frozen records, each made by one stage from the records
before it and never changed afterwards (``Setup -> Inputs -> Plan -> Trained -> Scores -> Figures ->
Report``). ``reproduce.json`` is these records written out (:func:`to_json`); fields marked ``NOT_SAVED``
(pixel arrays, the per-image rows that ``eval/<protocol>/results.json`` already holds) stay in memory.

A record holding a dict or a list does not copy it: a stage builds its containers, hands them to the record
it returns, and no later stage changes them (assigning a field raises ``FrozenInstanceError``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from srlab.serialize import jsonable
from srlab.study.spec import StudySpec

__all__ = [
    "Figures",
    "Inputs",
    "KeptImage",
    "NOT_SAVED",
    "Plan",
    "ProtocolScores",
    "Report",
    "Run",
    "Scores",
    "Setup",
    "Study",
    "Trained",
    "to_json",
]

NOT_SAVED = {"saved": False}


@dataclass(frozen=True)
class Setup:
    """The spec and how this invocation runs it (report folder, data root, device, ``--budget``)."""

    spec: StudySpec = field(metadata=NOT_SAVED)
    out: Path
    data_root: Path | None
    device: str = "auto"
    budget: float | None = None
    quick: bool = False  # every recipe with its own `quick:` section (a CPU demonstration of any spec)
    progress: bool = False
    base_threads: int = 1
    log: Callable[[str], None] = field(default=print, repr=False, compare=False, metadata=NOT_SAVED)

    @property
    def factor(self) -> float:
        """``--budget``'s scale of every iteration count."""
        return self.budget / self.spec.nominal_minutes if self.budget else 1.0

    @property
    def scale(self) -> int:
        return self.spec.scale

    @property
    def protocols(self) -> list[str]:
        return list(self.spec.protocols)

    def say(self, msg: str) -> None:
        self.log(msg)


@dataclass(frozen=True)
class Inputs:
    """What the data root (or the spec's sample images) holds for the spec: ``roles`` (role -> dataset,
    path, n, source, ...), the training and validation sets, and everything missing with where to get it
    (``missing``: test roles; ``missing_inputs``: training sets and weights)."""

    roles: dict[str, dict]
    missing: tuple[dict, ...] = ()
    missing_inputs: tuple[dict, ...] = ()
    train_set: dict = field(default_factory=dict)
    train_sets: dict[str, dict] = field(default_factory=dict)
    val_set: str | None = None
    notes: tuple[str, ...] = ()
    seconds: float = 0.0


@dataclass(frozen=True)
class Run:
    """One training run: a recipe plus overrides (data, passed to the trainer as a dict), and which exported
    stage makes which table row."""

    key: str  # e.g. "srcnn_trained-study"
    model: str  # the spec's model key
    protocol: str  # the degradation it is trained on
    recipe: str  # config name in configs/ (or a path)
    overrides: dict[str, Any]
    outputs: dict[str, str]  # stage name -> row key ("srcnn", "esrgan_psnr", "esrgan_gan")
    identity_init: bool = False
    notes: tuple[str, ...] = ()
    train_set: str = ""  # the data set it trains on
    family: str = ""  # the network's architecture (registry name)
    per_protocol: bool = True  # trained once per protocol (False: once, shared by every protocol)
    quick: bool = False  # the recipe's `quick:` section applies first (then the spec's overrides)

    def label(self, row: str) -> str:
        return f"{row.replace('_', '-')}_trained-{self.protocol}"


@dataclass(frozen=True)
class Plan:
    """The training runs, every missing input (the inputs' plus the plan's own: ImageNet VGG19) and why the
    study cannot run (empty: it can)."""

    runs: tuple[Run, ...]
    missing_inputs: tuple[dict, ...] = ()
    blockers: tuple[str, ...] = ()
    can_run: bool = True
    seconds: float = 0.0


@dataclass(frozen=True)
class Trained:
    """Every model the study evaluates besides the interpolations: ``runs`` (one entry per training run),
    ``models`` (label -> checkpoint path, row, protocol, ...), the pretrained ``references`` (row -> what
    was prepared), which VGG19 weights the perceptual losses used, and what a reference lacked."""

    runs: tuple[dict, ...] = ()
    models: dict[str, dict] = field(default_factory=dict)
    references: dict[str, dict] = field(default_factory=dict)
    pretrained: dict | None = None  # the first prepared zoo reference
    perceptual: frozenset[str] = frozenset()
    missing_inputs: tuple[dict, ...] = ()
    notes: tuple[str, ...] = ()
    threads: tuple[dict, ...] = ()  # CPU threads chosen per run (see srlab.study.common.adapt_threads)
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class KeptImage:
    """One test image as the evaluation scored it, kept for the panels: HR (uint8 HWC, as prepared), LR and
    each model's SR (float64 HWC on 0-255, SR as scored)."""

    path: str
    hr: Any = field(repr=False, metadata=NOT_SAVED)
    lr: Any = field(repr=False, metadata=NOT_SAVED)
    sr: dict[str, Any] = field(repr=False, metadata=NOT_SAVED)


@dataclass(frozen=True)
class ProtocolScores:
    """One protocol's evaluation: per-image rows (also in ``files``), the results header and the images the
    panels show."""

    protocol: str
    rows: list[dict] = field(metadata=NOT_SAVED)
    header: dict = field(metadata=NOT_SAVED)
    files: dict[str, str]
    messages: list[str] = field(default_factory=list)
    kept: dict[str, KeptImage] = field(default_factory=dict)  # role -> its panel image
    seconds: float = 0.0


@dataclass(frozen=True)
class Scores:
    protocols: dict[str, ProtocolScores]
    threads: tuple[dict, ...] = ()


@dataclass(frozen=True)
class Figures:
    panels: dict[str, dict] = field(default_factory=dict)  # "role/protocol" -> {path, image, box}
    figures: tuple[dict, ...] = ()  # curves and distributions: {kind, protocol, [role], path}
    seconds: float = 0.0

    def paths(self) -> list[str]:
        return [f["path"] for f in self.figures] + [p["path"] for p in self.panels.values()]


@dataclass(frozen=True)
class Report:
    command: str
    tables: dict[str, Any]  # protocol -> the study-layout table (rows, cells, means)
    eval_commands: dict[str, str]
    table_files: dict[str, str]
    readme: dict[str, str]
    report_md: str
    report_html: str
    wall_s: float


@dataclass(frozen=True)
class Study:
    """The records made so far, read (never changed) by the stages that need several of them."""

    setup: Setup
    inputs: Inputs
    plan: Plan
    trained: Trained = field(default_factory=Trained)
    scores: Scores | None = None
    figures: Figures = field(default_factory=Figures)

    @property
    def spec(self) -> StudySpec:
        return self.setup.spec

    @property
    def models(self) -> dict[str, dict]:
        return self.trained.models

    def rows(self, protocol: str) -> list[dict]:
        assert self.scores is not None, "the study has not been evaluated"
        return self.scores.protocols[protocol].rows


def to_json(v: Any) -> Any:
    """A record (or anything holding records) as JSON-able values, without its ``NOT_SAVED`` fields."""
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {
            f.name: to_json(getattr(v, f.name))
            for f in dataclasses.fields(v)
            if f.metadata.get("saved", True)
        }
    if isinstance(v, dict):
        return {str(k): to_json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [to_json(x) for x in v]
    return jsonable(v)
