"""Training configuration: a typed schema (pydantic), YAML files, ``base:`` inheritance, dotted overrides.

A config file is a YAML mapping checked against :class:`TrainConfig`; every unknown key is a
:class:`~srlab.errors.ConfigError` naming the key (as a dotted path) and the closest valid one, and every bad
value one naming its path, the value and what is expected. Values are converted to the field's type where
that is unambiguous (``1e-4`` -- a string to YAML 1.1 -- becomes a float, ``1e5`` an int where an int is
expected; a list becomes a tuple) and refused otherwise.

- ``base: other.yaml`` (relative to the file) deep-merges the file onto another one (mappings merge, lists
  and scalars replace).
- Overrides ``key.sub=value`` (the value parsed as YAML) apply after loading; ``*`` matches every key of a
  mapping (``stages.*.iterations=100``). An override naming an unknown key fails like a file would.
- ``quick:`` holds overrides (a mapping of dotted keys to values) applied before the command line's own
  when ``--quick`` is given: a short CPU budget for a recipe.

``stages`` is a mapping (in YAML order) of stage name -> :class:`StageConfig`; a stage of kind ``psnr``
trains the generator alone with pixel (and optionally perceptual) losses, a stage of kind ``gan`` adds a
discriminator and the adversarial loss. ``init`` names an earlier stage (its final generator) or a weights
file to start from; by default a stage continues from the generator the previous stage left. In a gan stage
``d_first: true`` updates the discriminator before the generator each iteration (the study's order);
``keep`` names the generator weights a stage exports (``last``, or ``best_train_loss``:
:mod:`srlab.train.keep`).
"""

from __future__ import annotations

import copy
import difflib
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from srlab.atomic import check_name
from srlab.data.degradations.options import RealESRGANOptions
from srlab.data.sources import TrainFolders
from srlab.errors import ConfigError
from srlab.train.config_errors import error_message, is_section
from srlab.train.config_limits import check_values
from srlab.yamlio import YamlSyntaxError, load_yaml, read_yaml

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


# ------------------------------------------------------------------------------------------ value types
def _number(kind: str):
    def check(value: Any) -> Any:
        # YAML reads true/false as bools, which pydantic would take as 1/0: a bool where a number is
        # expected is a mistake. YAML 1.1 reads 1e5 as a string; as an int it is unambiguous.
        if isinstance(value, bool):
            raise PydanticCustomError(f"{kind}_type", "not a number")
        if kind == "int" and isinstance(value, str):
            try:
                f = float(value.replace("_", ""))
            except ValueError:
                return value
            return int(f) if f.is_integer() else value
        return value

    return BeforeValidator(check)


Int = Annotated[int, _number("int")]
Float = Annotated[float, _number("float")]
# YAML 1.1 reads an unquoted `off` (runtime.amp=off) as false
_YAML_OFF = BeforeValidator(lambda v: "off" if v is False else v)


class _Section(BaseModel):
    """A config mapping: unknown keys are errors; an empty YAML section (null) means its defaults."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    @model_validator(mode="before")
    @classmethod
    def _null_sections(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for key, value in data.items():
            f = cls.model_fields.get(key)
            if f is not None:
                out[key] = _null_as_empty(f.annotation, value)
        return out


def _null_as_empty(tp: Any, value: Any) -> Any:
    """``None`` -> ``{}`` for a section or mapping that cannot be null (also for the values of a mapping of
    sections: ``stages: {train: null}``)."""
    if is_section(tp) or typing.get_origin(tp) is dict:
        if value is None:
            return {}
        if isinstance(value, dict) and typing.get_origin(tp) is dict and is_section(typing.get_args(tp)[1]):
            return {k: {} if v is None else v for k, v in value.items()}
    return value


# ------------------------------------------------------------------------------------------------ schema
class ModelConfig(_Section):
    """A network from the model registry: a preset or architecture name plus hyper-parameters.

    Any trainable family: srlab's own or a spandrel-backed one (``swinir``, ``hat``, ``swinir-light-x2``, ...;
    `srlab models` lists them). ``hparams`` are checked against the network's constructor when it is built:
    an unknown key is one error naming it and the valid ones."""

    name: str = "srcnn"
    hparams: dict[str, Any] = Field(default_factory=dict)


class DataConfig(_Section):
    """Training data (paths relative to the data root unless absolute)."""

    # an HR folder (or a folder of _HR/_LR{s} pairs, or one with an LR sibling), or a weighted list of them
    train: TrainFolders = "T91"
    train_lr: str | None = None  # paired LR folder (same stems); None = found by layout, or synthesised
    # srlab.imaging.resize name: bicubic (MATLAB) | study (bilinear, no AA); or realesrgan (data.degradations:
    # random second-order blur/resize/noise/JPEG per sample, made on the batch)
    degradation: str = "bicubic"
    # with degradation realesrgan: its options (None = the published defaults; a config written before the
    # option existed thus resumes unchanged)
    realesrgan: RealESRGANOptions | None = None
    quantize_lr: bool = True  # round the LR to uint8 (standard protocol); the study kept it float
    mode: Literal["random", "center", "subimages", "full"] = "random"
    crop: Int = 128  # HR crop / sub-image size
    stride: Int = 0  # sub-image stride (0 = crop)
    color: Literal["rgb", "y"] = "rgb"
    flip: bool = True
    rot90: bool = True
    small: Literal["skip", "pad"] = "skip"  # images smaller than the crop
    pre_upsample: Literal["bicubic", "bilinear"] | None = None  # SRCNN: train forward_upsampled on these
    # with pre_upsample: convolutions without padding, the loss on the centre they reach (the SRCNN paper's
    # 33 -> 21 sub-images); no border pixel is learnt from padding, and no padding is computed
    unpadded: bool = False
    lr_on_device: bool = False  # synthesise LR batch-wise on the training device
    max_images: Int = 0  # 0 = all
    shuffle: bool = True


class ValConfig(_Section):
    """Validation during training (PSNR/SSIM through srlab.eval.metrics under the protocol)."""

    set: str | None = "Set5"  # a known set name or a folder of HR images; None = no validation
    protocol: Literal["standard", "study"] = "standard"
    # study protocol's HR centre crop: None = the protocol's default for the set, 0 = whole images
    hr_crop: Int | None = None
    every: Int = 1000  # iterations (0 = only at the end of each stage)
    max_images: Int = 0
    samples: Int = 2  # SR images written per validation
    metric: Literal["psnr", "ssim"] = "psnr"  # what "best" tracks
    ssim: bool = True  # also compute SSIM (slow on large images on CPU)


class OptimConfig(_Section):
    type: Literal["adam", "adamw", "sgd"] = "adam"
    lr: Float = 1e-4
    betas: tuple[Float, Float] = (0.9, 0.999)
    eps: Float = 1e-8
    weight_decay: Float = 0.0
    momentum: Float = 0.9  # sgd
    param_lr: dict[str, Float] = Field(default_factory=dict)  # parameter-name prefix -> lr (SRCNN paper)
    fused: bool | None = None  # None = fused on CUDA


class ScheduleConfig(_Section):
    type: Literal["constant", "multistep", "step", "cosine"] = "constant"
    milestones: list[Int] = Field(default_factory=list)  # multistep
    step_size: Int = 0  # step: multiply by gamma every step_size iterations
    gamma: Float = 0.5
    eta_min: Float = 0.0  # cosine floor
    warmup: Int = 0  # linear warm-up iterations


class LossConfig(_Section):
    pixel: Literal["l1", "mse", "charbonnier", "none"] = "l1"
    pixel_weight: Float = 1.0
    perceptual: Literal["vgg19", "none"] = "none"
    perceptual_weight: Float = 1.0
    perceptual_layers: dict[str, Float] = Field(default_factory=lambda: {"conv5_4": 1.0})
    perceptual_normalize: bool = True  # ImageNet mean/std on the VGG input
    perceptual_criterion: Literal["l1", "mse", "charbonnier"] = "l1"
    perceptual_weights: str | None = None  # None = the zoo's ImageNet VGG19; a path; or "random" (explicit)
    # ragan: relativistic average, both terms halved (BasicSR); ragan_sum: the same two terms summed, the
    # discriminator's means not detached (the study's code); vanilla: non-relativistic; lsgan: least squares
    gan: Literal["ragan", "ragan_sum", "vanilla", "lsgan", "none"] = "none"
    gan_weight: Float = 5e-3


class StageConfig(_Section):
    kind: Literal["psnr", "gan"] = "psnr"
    iterations: Int = 1000
    batch_size: Int = 16
    init: str | None = None  # earlier stage name or weights file; None = continue with the current G
    optim: OptimConfig = Field(default_factory=OptimConfig)
    optim_d: OptimConfig = Field(default_factory=OptimConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    schedule_d: ScheduleConfig | None = None  # None = same as schedule
    losses: LossConfig = Field(default_factory=LossConfig)
    discriminator: ModelConfig = Field(
        default_factory=lambda: ModelConfig(name="vgg_discriminator", hparams={"input_size": 128})
    )
    ema: Float = 0.0  # EMA decay of the generator (0 = off); validation/export use the EMA when on
    grad_clip: Float = 0.0  # max global grad norm (0 = off)
    skip_nonfinite: bool = False  # skip steps whose loss is NaN/inf instead of stopping
    d_first: bool = False  # gan: update D (on G's detached output) before G each iteration, as the study did
    # the generator weights the stage exports: its last, or those with the lowest total training loss
    keep: Literal["last", "best_train_loss"] = "last"


class LogConfig(_Section):
    every: Int = 10  # iterations between scalar log rows
    tensorboard: bool = True  # when the tensorboard package is installed
    progress: bool = True


class CheckpointConfig(_Section):
    every: Int = 1000  # iterations (0 = only at stage ends)
    keep: Int = 3  # latest checkpoints kept (0 = all)


class RuntimeConfig(_Section):
    device: str = "auto"  # srlab.runtime.resolve_device: auto | cpu | cuda | cuda:N | mps
    # srlab.runtime.resolve_precision(training=True): auto = bf16 (or fp16) autocast on CUDA, fp32 elsewhere
    amp: Annotated[Literal["auto", "bf16", "fp16", "off"], _YAML_OFF] = "auto"
    # NHWC activations and weights: None/true = on CUDA; true also on the CPU, where it speeds up the
    # oneDNN convolutions of small convnets (SRCNN) but not every model
    channels_last: bool | None = None
    cudnn_benchmark: bool = True
    compile: bool = False  # torch.compile the generator (and D)
    # torch.compile mode (srlab.runtime.COMPILE_MODES): reduce-overhead = CUDA graphs (D outputs are cloned,
    # steps marked)
    compile_mode: Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] = (
        "default"
    )
    fused_blocks: bool = False  # RRDBNet dense blocks without concatenations (same function and parameters)
    threads: Int = 0  # CPU threads (0 = torch's default)
    stop_after: Int = 0  # stop after this many iterations in this invocation (0 = run to the end)


class TrainConfig(_Section):
    name: str = ""
    description: str = ""
    scale: Int = 2
    seed: Int = 0
    protocol: Literal["standard", "study"] = "standard"  # the evaluation protocol the model is meant for
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    val: ValConfig = Field(default_factory=ValConfig)
    stages: dict[str, StageConfig] = Field(default_factory=lambda: {"train": StageConfig()})
    log: LogConfig = Field(default_factory=LogConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    quick: dict[str, Any] = Field(default_factory=dict)  # overrides applied by --quick
    notes: str = ""

    def stage_names(self) -> list[str]:
        return list(self.stages)


def config_from_dict(data: dict) -> TrainConfig:
    """Validate a plain mapping against the schema (unknown keys and bad values raise ConfigError)."""
    if not isinstance(data, dict):
        raise ConfigError("a training config must be a YAML mapping")
    data = {k: v for k, v in data.items() if k != "base"}
    try:
        cfg = TrainConfig.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        # an unknown key (a typo) is the likeliest cause of the rest: name it first
        first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        raise ConfigError(error_message(first, TrainConfig)) from None
    _check(cfg)
    return cfg


def config_to_dict(cfg: TrainConfig) -> dict:
    """The config as plain YAML/JSON-able types (tuples become lists)."""
    return cfg.model_dump(mode="json")


def _check(cfg: TrainConfig) -> None:
    if cfg.name:
        try:
            check_name(cfg.name, "name")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
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
            raise ConfigError(f"{p}: a gan stage needs losses.gan (ragan, ragan_sum, vanilla or lsgan)")
        if st.kind == "psnr" and st.losses.gan != "none":
            raise ConfigError(f"{p}: losses.gan is set but the stage kind is psnr; use kind: gan")
        if st.losses.pixel == "none" and st.losses.perceptual == "none" and st.kind == "psnr":
            raise ConfigError(f"{p}.losses: no loss is enabled (pixel and perceptual are both none)")
        if not 0.0 <= st.ema < 1.0:
            raise ConfigError(f"{p}.ema must be in [0, 1), not {st.ema}")
        if st.d_first and st.kind != "gan":
            raise ConfigError(f"{p}.d_first is set but the stage kind is {st.kind} (no discriminator)")
        if st.keep == "best_train_loss" and st.ema > 0:
            raise ConfigError(
                f"{p}: keep: best_train_loss picks generator weights by their training loss, but with ema the "
                "stage exports the EMA (which has no training loss); set ema: 0 or keep: last"
            )
    _check_data(cfg)
    check_values(cfg)
    if cfg.data.pre_upsample and cfg.data.lr_on_device:
        raise ConfigError("data.pre_upsample and data.lr_on_device exclude each other")
    if cfg.data.unpadded and not cfg.data.pre_upsample:
        raise ConfigError("data.unpadded trains SRCNN's unpadded convolutions: it needs data.pre_upsample")
    if cfg.data.unpadded and any(st.kind == "gan" for st in cfg.stages.values()):
        raise ConfigError("data.unpadded is for PSNR stages: a discriminator needs full-size outputs")


def _check_data(cfg: TrainConfig) -> None:
    d = cfg.data
    if isinstance(d.train, list):
        if not d.train:
            raise ConfigError("data.train: the list of training folders is empty")
        for i, src in enumerate(d.train):
            if not src.weight > 0:
                raise ConfigError(f"data.train[{i}].weight must be > 0, not {src.weight}")
        if d.train_lr:
            raise ConfigError("data.train_lr is for a single folder; give each folder of data.train its 'lr'")
    if d.realesrgan is not None and d.degradation != "realesrgan":
        raise ConfigError(f"data.realesrgan is set but data.degradation is {d.degradation!r}, not realesrgan")
    if d.degradation == "realesrgan":
        if d.train_lr or (isinstance(d.train, list) and any(s.lr for s in d.train)):
            raise ConfigError("data.degradation realesrgan makes the LR itself: remove the paired LR folder")
        if d.pre_upsample:
            raise ConfigError("data.degradation realesrgan excludes data.pre_upsample")
        if d.color != "rgb":
            raise ConfigError("data.degradation realesrgan degrades colour images: set data.color rgb")
        if d.mode != "full" and d.crop % cfg.scale:
            raise ConfigError(
                f"data.crop {d.crop} must be a multiple of the scale {cfg.scale} (LR = crop / scale)"
            )


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
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"{path}: circular 'base:' chain")
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    data = read_yaml(path) or {}
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
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not key=value (e.g. stages.train.iterations=200)")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = load_yaml(raw, source=f"override {key}") if raw.strip() else None
    except YamlSyntaxError:
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


def has_quick(name_or_path: str | Path) -> bool:
    """Whether a recipe has a ``quick:`` section (what ``--quick`` applies)."""
    return bool(_read_yaml(find_config(name_or_path)).get("quick"))


def load_config(
    name_or_path: str | Path,
    overrides: list[str] | dict[str, Any] | None = None,
    *,
    quick: bool = False,
) -> tuple[TrainConfig, dict]:
    """Load, merge, override and validate a config. Returns ``(config, raw mapping)``.

    ``name`` defaults to the file's stem. ``quick=True`` applies the file's ``quick:`` overrides first.
    ``overrides``: ``key=value`` strings (the CLI's, values parsed as YAML) or a ``{key: value}`` mapping of
    values as they are (:func:`apply_overrides`).
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
