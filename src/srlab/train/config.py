"""Training configuration: a typed dataclass schema, YAML files, ``base:`` inheritance and dotted overrides.

A config file is a YAML mapping checked against :class:`TrainConfig`; every unknown key is a
:class:`~srlab.errors.ConfigError` naming the key (as a dotted path) and the closest valid one. Values are
coerced to the field's type where that is unambiguous (``1e-4`` -- a string to YAML 1.1 -- becomes a float;
a list becomes a tuple) and refused otherwise.

- ``base: other.yaml`` (relative to the file) deep-merges the file onto another one (mappings merge, lists
  and scalars replace).
- Overrides ``key.sub=value`` (the value parsed as YAML) apply after loading; ``*`` matches every key of a
  mapping (``stages.*.iterations=100``). An override naming an unknown key fails like a file would.
- ``quick:`` holds overrides (a mapping of dotted keys to values) applied before the command line's own
  when ``--quick`` is given: a short CPU budget for a recipe.

``stages`` is a mapping (in YAML order) of stage name -> :class:`StageConfig`; a stage of kind ``psnr``
trains the generator alone with pixel (and optionally perceptual) losses, a stage of kind ``gan`` adds a
discriminator and the adversarial loss. ``init`` names an earlier stage (its final generator) or a weights
file to start from; by default a stage continues from the generator the previous stage left.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from srlab.errors import ConfigError

__all__ = [
    "CheckpointConfig",
    "DataConfig",
    "LogConfig",
    "LossConfig",
    "ModelConfig",
    "OptimConfig",
    "RuntimeConfig",
    "ScheduleConfig",
    "StageConfig",
    "TrainConfig",
    "ValConfig",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "find_config",
    "load_config",
    "parse_override",
]


# ------------------------------------------------------------------------------------------------ schema
@dataclass
class ModelConfig:
    """A network from the model registry: a preset or architecture name plus hyper-parameters."""

    name: str = "srcnn"
    hparams: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataConfig:
    """Training data (paths relative to the data root unless absolute)."""

    train: str = "T91"  # HR folder
    train_lr: str | None = None  # paired LR folder (same stems); None = synthesise LR from HR
    degradation: str = "bicubic"  # srlab.imaging.resize name: bicubic (MATLAB) | study (bilinear, no AA)
    quantize_lr: bool = True  # round the LR to uint8 (standard protocol); the study kept it float
    mode: Literal["random", "center", "subimages", "full"] = "random"
    crop: int = 128  # HR crop / sub-image size
    stride: int = 0  # sub-image stride (0 = crop)
    color: Literal["rgb", "y"] = "rgb"
    flip: bool = True
    rot90: bool = True
    small: Literal["skip", "pad"] = "skip"  # images smaller than the crop
    pre_upsample: Literal["bicubic", "bilinear"] | None = None  # SRCNN: train forward_upsampled on these
    lr_on_device: bool = False  # synthesise LR batch-wise on the training device
    max_images: int = 0  # 0 = all
    shuffle: bool = True


@dataclass
class ValConfig:
    """Validation during training (PSNR/SSIM through srlab.metrics under the protocol)."""

    set: str | None = "Set5"  # a known set name or a folder of HR images; None = no validation
    protocol: Literal["standard", "study"] = "standard"
    every: int = 1000  # iterations (0 = only at the end of each stage)
    max_images: int = 0
    samples: int = 2  # SR images written per validation
    metric: Literal["psnr", "ssim"] = "psnr"  # what "best" tracks
    ssim: bool = True  # also compute SSIM (slow on large images on CPU)


@dataclass
class OptimConfig:
    type: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd
    param_lr: dict[str, float] = field(default_factory=dict)  # parameter-name prefix -> lr (SRCNN paper)
    fused: bool | None = None  # None = fused on CUDA


@dataclass
class ScheduleConfig:
    type: Literal["constant", "multistep", "step", "cosine"] = "constant"
    milestones: list[int] = field(default_factory=list)  # multistep
    step_size: int = 0  # step: multiply by gamma every step_size iterations
    gamma: float = 0.5
    eta_min: float = 0.0  # cosine floor
    warmup: int = 0  # linear warm-up iterations


@dataclass
class LossConfig:
    pixel: Literal["l1", "mse", "charbonnier", "none"] = "l1"
    pixel_weight: float = 1.0
    perceptual: Literal["vgg19", "none"] = "none"
    perceptual_weight: float = 1.0
    perceptual_layers: dict[str, float] = field(default_factory=lambda: {"conv5_4": 1.0})
    perceptual_normalize: bool = True  # ImageNet mean/std on the VGG input
    perceptual_criterion: Literal["l1", "mse", "charbonnier"] = "l1"
    perceptual_weights: str | None = None  # None = the zoo's ImageNet VGG19; a path; or "random" (explicit)
    gan: Literal["ragan", "vanilla", "none"] = "none"
    gan_weight: float = 5e-3


@dataclass
class StageConfig:
    kind: Literal["psnr", "gan"] = "psnr"
    iterations: int = 1000
    batch_size: int = 16
    init: str | None = None  # earlier stage name or weights file; None = continue with the current G
    optim: OptimConfig = field(default_factory=OptimConfig)
    optim_d: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    schedule_d: ScheduleConfig | None = None  # None = same as schedule
    losses: LossConfig = field(default_factory=LossConfig)
    discriminator: ModelConfig = field(
        default_factory=lambda: ModelConfig("vgg_discriminator", {"input_size": 128})
    )
    ema: float = 0.0  # EMA decay of the generator (0 = off); validation/export use the EMA when on
    grad_clip: float = 0.0  # max global grad norm (0 = off)
    skip_nonfinite: bool = False  # skip steps whose loss is NaN/inf instead of stopping


@dataclass
class LogConfig:
    every: int = 10  # iterations between scalar log rows
    tensorboard: bool = True  # when the tensorboard package is installed
    progress: bool = True


@dataclass
class CheckpointConfig:
    every: int = 1000  # iterations (0 = only at stage ends)
    keep: int = 3  # latest checkpoints kept (0 = all)


@dataclass
class RuntimeConfig:
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: Literal["auto", "bf16", "fp16", "off"] = "auto"  # auto: bf16 (or fp16) on CUDA, fp32 on CPU
    channels_last: bool = True  # on CUDA
    cudnn_benchmark: bool = True
    compile: bool = False  # torch.compile the generator (and D)
    # torch.compile mode: reduce-overhead = CUDA graphs (D outputs are cloned, steps marked)
    compile_mode: Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] = (
        "default"
    )
    fused_blocks: bool = False  # RRDBNet dense blocks without concatenations (same function and parameters)
    threads: int = 0  # CPU threads (0 = torch's default)
    stop_after: int = 0  # stop after this many iterations in this invocation (0 = run to the end)


@dataclass
class TrainConfig:
    name: str = ""
    description: str = ""
    scale: int = 2
    seed: int = 0
    protocol: Literal["standard", "study"] = "standard"  # the evaluation protocol the model is meant for
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    val: ValConfig = field(default_factory=ValConfig)
    stages: dict[str, StageConfig] = field(default_factory=lambda: {"train": StageConfig()})
    log: LogConfig = field(default_factory=LogConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    quick: dict[str, Any] = field(default_factory=dict)  # overrides applied by --quick
    notes: str = ""

    def stage_names(self) -> list[str]:
        return list(self.stages)


# ------------------------------------------------------------------------------------------- coercion
def _is_dataclass_type(tp) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _type_name(tp) -> str:
    if tp is type(None):
        return "null"
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        return getattr(origin, "__name__", str(origin))
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, path)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[-1] if len(errors) == 1 else _bad(path, value, tp)
    if origin is Literal:
        if value in args:
            return value
        if isinstance(value, str):
            close = difflib.get_close_matches(value, [str(a) for a in args], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
        else:
            hint = ""
        raise ConfigError(f"{path}: {value!r} is not one of {_type_name(tp)}{hint}")
    if _is_dataclass_type(tp):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise _bad(path, value, tp, "a mapping")
        return _build(tp, value, path)
    if origin is dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise _bad(path, value, tp, "a mapping")
        kt, vt = args or (str, Any)
        return {_coerce(k, kt, path): _coerce(v, vt, f"{path}.{k}") for k, v in value.items()}
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _bad(path, value, tp, "a list")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{path}: expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        et = args[0] if args else Any
        out = [_coerce(v, et, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off"):
            return value.lower() in ("true", "yes", "on")
        raise _bad(path, value, tp)
    if tp is int:
        if isinstance(value, bool):
            raise _bad(path, value, tp)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                f = float(value.replace("_", ""))
            except ValueError:
                raise _bad(path, value, tp) from None
            if f.is_integer():
                return int(f)
        raise _bad(path, value, tp)
    if tp is float:
        if isinstance(value, bool):
            raise _bad(path, value, tp)
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise _bad(path, value, tp) from None
        raise _bad(path, value, tp)
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise _bad(path, value, tp)
    raise ConfigError(f"{path}: unsupported type {tp!r}")  # pragma: no cover - schema bug


def _bad(path: str, value: Any, tp, what: str | None = None) -> ConfigError:
    return ConfigError(f"{path}: expected {what or _type_name(tp)}, got {value!r}")


def _build(cls, data: dict, path: str):
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            where = f"{path}.{key}" if path else str(key)
            close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.5)
            hint = f"; did you mean {(path + '.' if path else '') + close[0]!r}?" if close else ""
            valid = f" (valid keys here: {', '.join(names)})" if not close else ""
            raise ConfigError(f"unknown config key {where!r}{hint}{valid}")
        kwargs[key] = _coerce(value, hints[key], f"{path}.{key}" if path else key)
    return cls(**kwargs)


def config_from_dict(data: dict) -> TrainConfig:
    """Validate a plain mapping against the schema (unknown keys and bad values raise ConfigError)."""
    if not isinstance(data, dict):
        raise ConfigError("a training config must be a YAML mapping")
    data = {k: v for k, v in data.items() if k != "base"}
    cfg = _build(TrainConfig, data, "")
    _check(cfg)
    return cfg


def _plain(v):
    if dataclasses.is_dataclass(v):
        return {f.name: _plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def config_to_dict(cfg: TrainConfig) -> dict:
    """The config as plain YAML/JSON-able types (tuples become lists)."""
    return _plain(cfg)


def _check(cfg: TrainConfig) -> None:
    if cfg.scale < 1:
        raise ConfigError(f"scale must be >= 1, not {cfg.scale}")
    if not cfg.stages:
        raise ConfigError("stages: at least one stage is needed")
    names = list(cfg.stages)
    for i, (name, st) in enumerate(cfg.stages.items()):
        p = f"stages.{name}"
        if st.iterations < 1:
            raise ConfigError(f"{p}.iterations must be >= 1, not {st.iterations}")
        if st.batch_size < 1:
            raise ConfigError(f"{p}.batch_size must be >= 1, not {st.batch_size}")
        if st.init and st.init in cfg.stages and names.index(st.init) >= i:
            raise ConfigError(f"{p}.init: stage {st.init!r} does not come before {name!r}")
        if st.kind == "gan" and st.losses.gan == "none":
            raise ConfigError(f"{p}: a gan stage needs losses.gan (ragan or vanilla)")
        if st.kind == "psnr" and st.losses.gan != "none":
            raise ConfigError(f"{p}: losses.gan is set but the stage kind is psnr; use kind: gan")
        if st.losses.pixel == "none" and st.losses.perceptual == "none" and st.kind == "psnr":
            raise ConfigError(f"{p}.losses: no loss is enabled (pixel and perceptual are both none)")
        if not 0.0 <= st.ema < 1.0:
            raise ConfigError(f"{p}.ema must be in [0, 1), not {st.ema}")
    if cfg.data.pre_upsample and cfg.data.lr_on_device:
        raise ConfigError("data.pre_upsample and data.lr_on_device exclude each other")


# --------------------------------------------------------------------------------------------- loading
def _deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    import yaml

    path = path.resolve()
    if path in seen:
        raise ConfigError(f"{path}: circular 'base:' chain")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where} is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a training config must be a YAML mapping")
    base = data.get("base")
    if base:
        bp = Path(base)
        if not bp.is_absolute():
            bp = path.parent / bp
        data = _deep_merge(_read_yaml(bp, (*seen, path)), {k: v for k, v in data.items() if k != "base"})
    return data


def configs_dir() -> Path:
    """The packaged recipes (``configs/`` at the repository root, linked into the package)."""
    return Path(__file__).resolve().parents[1] / "configs"


def find_config(name_or_path: str | Path) -> Path:
    """A config path as given, or a packaged recipe by name (``srcnn_x2_paper`` or ``srcnn_x2_paper.yaml``)."""
    p = Path(name_or_path)
    if p.exists():
        return p
    for cand in (configs_dir() / p.name, configs_dir() / f"{p.name}.yaml"):
        if cand.exists():
            return cand
    known = sorted(q.stem for q in configs_dir().glob("*.yaml"))
    close = difflib.get_close_matches(p.stem, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(f"config {str(name_or_path)!r} not found{hint}; recipes: {', '.join(known)}")


def parse_override(text: str) -> tuple[str, Any]:
    """``'a.b=1e-4'`` -> ``('a.b', 1e-4)`` with the value parsed as YAML."""
    import yaml

    if "=" not in text:
        raise ConfigError(f"override {text!r} is not key=value (e.g. stages.train.iterations=200)")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key, value


def _set_path(data: dict, parts: list[str], value: Any, full: str) -> None:
    head, rest = parts[0], parts[1:]
    if head == "*":
        if not isinstance(data, dict) or not data:
            raise ConfigError(f"override {full!r}: '*' matches nothing here")
        for k in list(data):
            _set_path(data, [k, *rest], value, full)
        return
    if not rest:
        data[head] = copy.deepcopy(value)
        return
    nxt = data.get(head)
    if nxt is None:
        nxt = data[head] = {}
    if not isinstance(nxt, dict):
        raise ConfigError(f"override {full!r}: {head!r} is a value, not a section")
    _set_path(nxt, rest, value, full)


def apply_overrides(data: dict, overrides: list[str] | dict[str, Any]) -> dict:
    """Apply dotted overrides to a raw config mapping (validation happens afterwards)."""
    out = copy.deepcopy(data)
    items = overrides.items() if isinstance(overrides, dict) else (parse_override(o) for o in overrides)
    for key, value in items:
        if "stages" in out and key.startswith("stages.") and key.count(".") >= 2:
            # Naming a stage that does not exist is an error (a typo would otherwise add a stage).
            st = key.split(".")[1]
            if st != "*" and st not in out["stages"]:
                close = difflib.get_close_matches(st, list(out["stages"]), n=1)
                hint = f"; did you mean 'stages.{close[0]}'?" if close else ""
                raise ConfigError(f"unknown stage {st!r} in override {key!r}{hint}")
        _set_path(out, key.split("."), value, key)
    return out


def load_config(
    name_or_path: str | Path,
    overrides: list[str] | None = None,
    *,
    quick: bool = False,
) -> tuple[TrainConfig, dict]:
    """Load, merge, override and validate a config. Returns ``(config, raw mapping)``.

    ``name`` defaults to the file's stem. ``quick=True`` applies the file's ``quick:`` overrides first.
    """
    path = find_config(name_or_path)
    raw = _read_yaml(path)
    raw.setdefault("name", path.stem)
    if quick:
        q = raw.get("quick") or {}
        if not q:
            raise ConfigError(f"{path}: --quick given but the config has no 'quick:' section")
        if not isinstance(q, dict):
            raise ConfigError(f"{path}: 'quick:' must be a mapping of dotted keys to values")
        raw = apply_overrides(raw, q)
    if overrides:
        raw = apply_overrides(raw, overrides)
    try:
        cfg = config_from_dict(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path.name}: {exc}") from None
    return cfg, raw
