"""A study as data: one YAML file (``configs/studies/*.yaml`` or a user's own) checked against
:class:`StudySpec`.

A spec names the scale, the protocols, the test roles (which data set or folder, how its images are cut),
the models -- each a training recipe (a ``configs/*.yaml`` name plus overrides, trained once per protocol's
degradation or once), a pretrained reference (a zoo name or a weights file, and how its output reaches the
study's scale) or an interpolation baseline -- the published numbers beside which ours are printed, the
figures, and ``deviations``: every point where the study cannot be followed or contradicts itself, with the
reason. Unknown keys and bad values are one-line :class:`~srlab.errors.ConfigError` messages naming the
file, the key path and the closest valid key.

``srlab reproduce NAME`` takes a bundled spec by name (``quick``, ``study``, ``papers``) or a path;
``--set key.path=value`` changes one value (``roles.natural.crop=256``). A loaded spec is frozen: the
study's first record, read by every stage and changed by none.
"""

from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from srlab.atomic import check_name
from srlab.errors import ConfigError
from srlab.eval.protocols import get_protocol
from srlab.train.config import parse_override
from srlab.train.config_errors import error_message
from srlab.yamlio import read_yaml

__all__ = [
    "Deviation",
    "Figures",
    "ModelSpec",
    "Published",
    "Reference",
    "Role",
    "Samples",
    "StudySpec",
    "TrainRecipe",
    "apply_spec_overrides",
    "bundled_specs",
    "load_spec",
    "spec_from_dict",
    "studies_dir",
]


class _S(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Samples(_S):
    """Data without a data root: scikit-image's bundled sample images (public domain / CC0)."""

    train: list[str]  # whole images, random training patches
    val: list[str]  # validation crops
    test: list[str]  # the natural role: crops of these (held out of training)
    test_crop: int = 128
    crops_per_image: int = 3  # the centre crop, then quadrant centres
    val_crops: int = 2
    test_images: int = 0  # how many of ``test`` (0 = all)
    train_images: int = 0  # how many of ``train`` (0 = all)


class DataSpec(_S):
    train: list[str] = Field(default_factory=list)  # training set (catalogue names, the first found)
    val: list[str] = Field(default_factory=lambda: ["Set5"])  # validation during training (never a role)
    samples: Samples | None = None  # used when no data root is given


class Role(_S):
    """A test role: the images a table column is measured on."""

    title: str
    study_set: str = ""  # what the study (or the user's reference) used, printed beside this run's set
    sets: list[str] = Field(default_factory=list)  # catalogue names: every one found is used
    path: str | None = None  # or a folder of images (relative to the spec file)
    fallback: list[str] = Field(default_factory=list)  # used (and said) when none of ``sets`` is found
    crop: int = 0  # HR centre crop (the study's x = W//2 - crop//2); 0 = whole images
    crop_options: list[int] = Field(default_factory=list)  # other crops the study's sources mention
    first: int = 0  # only the first N images in name order (0 = all)
    max_images: int = 0  # at most N images, evenly spaced (0 = all)

    @model_validator(mode="after")
    def _one_source(self) -> Role:
        if not self.sets and not self.path:
            raise ValueError("a role needs 'sets' (data set names) or 'path' (a folder)")
        if min(self.crop, self.first, self.max_images) < 0:
            raise ValueError("crop, first and max_images must be >= 0")
        return self


class TrainRecipe(_S):
    """A model srlab trains: a recipe from ``configs/`` plus overrides (dotted keys, as on the command
    line of ``srlab train``; a mapping value replaces the whole section)."""

    recipe: str
    overrides: dict[str, Any] = Field(default_factory=dict)
    per_protocol: bool = True  # one run per protocol, on its degradation; else one run on ``protocol``'s
    protocol: str = "study"
    data: list[str] = Field(default_factory=list)  # its training set (default: the spec's data.train)
    # config keys set to the protocol's interpolation (SRCNN's input upsampling, pre-upsampled patches)
    interpolation_keys: list[str] = Field(default_factory=list)
    init: Literal["random", "interpolator"] = "random"  # interpolator: see srlab.study.plan.identity_init
    # validations per run (val.every = longest stage // N, with checkpoint and log spacing); 0 = the recipe's
    val_points: int = 0
    rows: dict[str, str]  # exported stage -> row key (the row's title is ``titles[row]`` or the model's)
    titles: dict[str, str] = Field(default_factory=dict)


class Reference(_S):
    """A model srlab does not train: a zoo name or a weights file."""

    weights: str  # zoo name or path (relative to the spec file)
    fallback: list[str] = Field(default_factory=list)  # zoo names tried in order when ``weights`` is not here
    # the LR it is given: the float LR, or the LR saved as an 8-bit PNG (rounded to uint8) as the study did
    input: Literal["float", "png8"] = "float"
    output: Literal["float", "png8"] = "float"  # png8: its output rounded to 8 bits before any resize
    # how its output reaches the study's scale: none (it works at that scale), matlab (bicubic imresize,
    # antialiased) or study (the study's bilinear resize, no antialias)
    resize: Literal["none", "matlab", "study"] = "none"


class ModelSpec(_S):
    """One entry of ``models``: exactly one of ``interpolation``, ``train`` and ``pretrained``."""

    title: str
    interpolation: Literal["bilinear", "bicubic"] | None = None
    train: TrainRecipe | None = None
    pretrained: Reference | None = None
    notes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_kind(self) -> ModelSpec:
        kinds = [k for k in ("interpolation", "train", "pretrained") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                "a model is exactly one of 'interpolation', 'train' or 'pretrained'"
                + (f" (this one has {' and '.join(kinds)})" if kinds else "")
            )
        return self

    @property
    def kind(self) -> str:
        return "interpolation" if self.interpolation else "train" if self.train else "pretrained"


class Published(_S):
    """Numbers printed beside ours: row key -> role -> [PSNR dB, SSIM (0-1)]."""

    note: str = ""
    rows: dict[str, dict[str, tuple[float, float]]] = Field(default_factory=dict)
    # row key -> the metric that is not comparable (marked with a dagger, the reason in ``not_comparable_why``)
    not_comparable: dict[str, Literal["psnr", "ssim"]] = Field(default_factory=dict)
    not_comparable_why: str = ""


class Figures(_S):
    panels: bool = True  # one image of each role through every model, zoomed insets
    curves: bool = True  # training losses and validation PSNR
    distributions: bool = True  # per-image PSNR per role


class Deviation(_S):
    """A point where the study cannot be followed or contradicts itself."""

    what: str
    source: str = ""  # what the study's text / code says
    here: str  # what this spec does
    why: str


class StudySpec(_S):
    name: str  # a name, not a path: the report folder is reports/<name>
    title: str = ""
    summary: str = ""
    scale: int = 2
    protocols: list[str] = Field(default_factory=lambda: ["study", "standard"])
    nominal_minutes: float = 60.0  # what the iteration counts are sized for (--budget scales them)
    nominal_hardware: str = "a 2-core CPU"
    needs_data_root: bool = True  # False: without --data-root, data.samples is used
    notice: str = ""  # said loudly at the top of the plan and the report (what kind of run this is)
    data: DataSpec = Field(default_factory=DataSpec)
    roles: dict[str, Role]
    models: dict[str, ModelSpec]
    published: Published | None = None
    figures: Figures = Field(default_factory=Figures)
    deviations: list[Deviation] = Field(default_factory=list)
    _source: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _consistent(self) -> StudySpec:
        check_name(self.name, "name")
        for key in (*self.models, *self.roles):
            check_name(key, "model/role key")
        if self.scale < 1:
            raise ValueError(f"scale must be >= 1, not {self.scale}")
        if not self.protocols:
            raise ValueError("protocols: at least one protocol is needed")
        for p in self.protocols:
            get_protocol(p)  # a ConfigError naming the known protocols
        if not self.roles:
            raise ValueError("roles: at least one test role is needed")
        if not self.models:
            raise ValueError("models: at least one model is needed")
        rows: dict[str, str] = {}
        for key, m in self.models.items():
            for row in self.model_rows(key):
                if row in rows:
                    raise ValueError(f"row {row!r} is made by both models.{rows[row]} and models.{key}")
                rows[row] = key
            if m.train:
                if not m.train.per_protocol:
                    get_protocol(m.train.protocol)
                if not m.train.rows:
                    raise ValueError(f"models.{key}.train.rows: name at least one stage -> row")
        if self.published:
            for row in self.published.rows:
                if row not in rows:
                    close = difflib.get_close_matches(row, list(rows), n=1)
                    hint = f"; did you mean {close[0]!r}?" if close else f" (rows: {', '.join(rows)})"
                    raise ValueError(f"published.rows.{row}: no model makes this row{hint}")
        return self

    # ------------------------------------------------------------------------------------------ helpers
    @property
    def source(self) -> Path | None:
        return self._source

    def resolve_path(self, p: str) -> Path:
        """A path of the spec: relative ones count from the spec file's folder."""
        q = Path(p).expanduser()
        if q.is_absolute() or self._source is None:
            return q
        return (self._source.parent / q).resolve()

    def model_rows(self, key: str) -> list[str]:
        m = self.models[key]
        return list(m.train.rows.values()) if m.train else [key]

    def row_title(self, row: str) -> str:
        for key, m in self.models.items():
            if m.train and row in m.train.rows.values():
                return m.train.titles.get(row, m.title)
            if row == key:
                return m.title
        return row

    def row_order(self) -> list[str]:
        return [row for key in self.models for row in self.model_rows(key)]

    def protocols_of(self, key: str) -> list[str]:
        t = self.models[key].train
        if t is None:
            return list(self.protocols)
        return list(self.protocols) if t.per_protocol else [t.protocol]


# ------------------------------------------------------------------------------------------------ loading
def studies_dir() -> Path:
    """The bundled specs (``configs/studies/`` at the repository root, linked into the package)."""
    return Path(__file__).resolve().parents[1] / "configs" / "studies"


def bundled_specs() -> list[str]:
    return sorted(p.stem for p in studies_dir().glob("*.yaml"))


def _find(name_or_path: str | Path) -> Path:
    p = Path(name_or_path).expanduser()
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise ConfigError(f"study spec {p} does not exist")
        return p
    name = str(name_or_path)
    cand = studies_dir() / f"{name}.yaml"
    if cand.is_file():
        return cand
    known = bundled_specs()
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(
        f"study {name!r} not found{hint}; bundled: {', '.join(known)}, or a path to a .yaml file"
    )


def _dotted(loc: tuple) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def spec_from_dict(data: Any, source: Path | None = None) -> StudySpec:
    """Validate a mapping; errors are one line: ``FILE: key.path: what is wrong``."""

    where = f"{source.name}: " if source else ""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}a study spec must be a YAML mapping")
    try:
        spec = StudySpec.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        if first["type"] == "value_error":
            ctx = first.get("ctx") or {}
            msg = str(ctx.get("error", first["msg"]))
            loc = _dotted(tuple(first["loc"]))
            line = f"{loc}: {msg}" if loc else msg
        else:
            line = error_message(first, StudySpec).replace("unknown config key", "unknown key")
        raise ConfigError(where + line) from None
    except ConfigError as exc:  # a validator's own ConfigError (an unknown protocol)
        raise ConfigError(where + str(exc)) from None
    spec._source = source.resolve() if source else None
    return spec


def apply_spec_overrides(data: dict, overrides: dict[str, Any] | list[str]) -> dict:
    """Set ``key.path=value`` items in a raw spec mapping. Under a training recipe's ``overrides`` the rest
    of the path is one dotted key (``models.srcnn.train.overrides.stages.train.iterations=3``)."""

    out = copy.deepcopy(data)
    items = overrides.items() if isinstance(overrides, dict) else (parse_override(o) for o in overrides)
    for key, value in items:
        parts = key.split(".")
        if "overrides" in parts[:-1]:
            j = parts.index("overrides")
            parts = [*parts[: j + 1], ".".join(parts[j + 1 :])]
        node: Any = out
        for i, head in enumerate(parts[:-1]):
            if isinstance(node, list):
                try:
                    node = node[int(head)]
                except (ValueError, IndexError):
                    raise ConfigError(f"--set {key}: {head!r} is not an index of the list there") from None
            elif isinstance(node, dict):
                node = node.setdefault(head, {})
            else:
                raise ConfigError(f"--set {key}: {'.'.join(parts[:i])!r} is a value, not a section")
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: {'.'.join(parts[:-1])!r} is not a section")
        node[parts[-1]] = copy.deepcopy(value)
    return out


def use_trained(data: dict, trained: dict[str, str]) -> dict:
    """Replace trained models of a raw spec by models srlab ships (``{"srcnn": "srcnn-study-x2-recipe"}``):
    each becomes a pretrained reference to that name, so the report uses the released weights instead of
    training a demonstration model."""
    out = copy.deepcopy(data)
    models = out.get("models") if isinstance(out.get("models"), dict) else {}
    for key, name in trained.items():
        entry = models.get(key)
        if not isinstance(entry, dict) or "train" not in entry:
            known = ", ".join(k for k, v in models.items() if isinstance(v, dict) and "train" in v)
            raise ConfigError(
                f"--use-trained {key}={name}: {key!r} is not a trained model of this spec ({known})"
            )
        rows = (entry.get("train") or {}).get("rows") or {}
        if len(rows) > 1:
            raise ConfigError(
                f"--use-trained {key}: it exports {len(rows)} rows ({', '.join(rows.values())}); one only"
            )
        title = str(entry.get("title", key))
        models[key] = {
            "title": f"{title}, srlab release {name}",
            "pretrained": {"weights": name},
            "notes": [
                f"the weights srlab ships as {name} (`srlab weights info {name}`), not trained by this run"
            ],
        }
    return out


def load_spec(
    name_or_path: str | Path,
    overrides: dict[str, Any] | list[str] | None = None,
    trained: dict[str, str] | None = None,
) -> StudySpec:
    """A bundled spec by name or a YAML file, with ``key.path=value`` overrides applied before validation
    (and ``trained`` models replaced by shipped ones, :func:`use_trained`)."""

    path = _find(name_or_path)
    data = read_yaml(path)  # bounded: alias bombs, deep nesting and huge files are one line
    if overrides and isinstance(data, dict):
        data = apply_spec_overrides(data, overrides)
    if trained and isinstance(data, dict):
        data = use_trained(data, trained)
    return spec_from_dict(data, path)
