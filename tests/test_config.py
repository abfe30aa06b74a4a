"""Training config schema: every packaged recipe loads, one-line messages for bad keys and values, YAML
loading with ``base:``, overrides, and plain round trips."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
import yaml

from srlab.errors import ConfigError
from srlab.train.config import (
    RuntimeConfig,
    TrainConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    configs_dir,
    load_config,
    parse_override,
)

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted(
    {p.name for p in (REPO / "configs").glob("*.yaml")} | {p.name for p in configs_dir().glob("*.yaml")}
)


@pytest.mark.parametrize("folder", [REPO / "configs", REPO / "src" / "srlab" / "configs"])
def test_every_config_file_loads_with_and_without_quick(folder):
    files = sorted(folder.glob("*.yaml"))
    assert files, folder
    for path in files:
        cfg, raw = load_config(path)
        assert cfg.name == path.stem and cfg.stage_names()
        again = config_from_dict(config_to_dict(cfg))  # the resolved config is a valid config
        assert again == cfg
        if raw.get("quick"):
            q, _ = load_config(path, quick=True)
            assert q.stage_names() == cfg.stage_names()


def _err(data: dict) -> str:
    with pytest.raises(ConfigError) as e:
        config_from_dict(data)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_unknown_keys_name_the_path_and_the_closest_key_or_list_the_valid_ones():
    assert _err({"stages": {"gan": {"optim": {"lrr": 1}}}}) == (
        "unknown config key 'stages.gan.optim.lrr'; did you mean 'stages.gan.optim.lr'?"
    )
    assert _err({"modle": {}}) == "unknown config key 'modle'; did you mean 'model'?"
    msg = _err({"zzz": 1})
    assert msg.startswith("unknown config key 'zzz' (valid keys here: name, description, scale,")
    assert _err({"stages": {"s": {"schedule_d": {"typ": "step"}}}}).endswith(
        "did you mean 'stages.s.schedule_d.type'?"
    )
    # an unknown key is reported before the bad values it may have caused
    assert _err({"scale": "x", "sede": 1}).startswith("unknown config key 'sede'")


def test_bad_values_name_the_path_the_value_and_what_is_expected():
    assert _err({"stages": {"gan": {"optim": {"lr": "fast"}}}}) == (
        "stages.gan.optim.lr: expected float, got 'fast'"
    )
    assert _err({"stages": {"t": {"iterations": "many"}}}) == "stages.t.iterations: expected int, got 'many'"
    assert _err({"stages": {"t": {"iterations": 1.5}}}) == "stages.t.iterations: expected int, got 1.5"
    assert _err({"stages": {"t": {"batch_size": True}}}) == "stages.t.batch_size: expected int, got True"
    assert _err({"stages": {"t": {"ema": False}}}) == "stages.t.ema: expected float, got False"
    assert _err({"data": 5}) == "data: expected a mapping, got 5"
    assert _err({"data": {"flip": "maybe"}}) == "data.flip: expected bool, got 'maybe'"
    assert _err({"val": {"set": ["Set5"]}}) == "val.set: expected str, got ['Set5']"
    assert (
        _err({"stages": {"t": {"optim": {"betas": [0.9]}}}})
        == "stages.t.optim.betas: expected 2 values, got 1"
    )
    assert _err({"stages": {"t": {"optim": {"betas": [0.9, "x"]}}}}) == (
        "stages.t.optim.betas[1]: expected float, got 'x'"
    )
    assert _err({"stages": {"t": {"schedule": {"milestones": [1, "b"]}}}}) == (
        "stages.t.schedule.milestones[1]: expected int, got 'b'"
    )
    assert _err({"stages": {"t": {"losses": {"perceptual_layers": {"pool3": "a"}}}}}) == (
        "stages.t.losses.perceptual_layers.pool3: expected float, got 'a'"
    )
    assert _err({"stages": {"t": {"optim": {"type": "adamx"}}}}) == (
        "stages.t.optim.type: 'adamx' is not one of 'adam' | 'adamw' | 'sgd' (did you mean 'adam'?)"
    )
    assert _err({"data": {"pre_upsample": "bicubik"}}) == (
        "data.pre_upsample: 'bicubik' is not one of 'bicubic' | 'bilinear' (did you mean 'bicubic'?)"
    )
    assert "did you mean" not in _err({"runtime": {"amp": 16}})


def test_values_are_converted_where_unambiguous():
    cfg = config_from_dict(
        {
            "stages": {
                "t": {"iterations": "1e5", "batch_size": 8.0, "optim": {"lr": "1e-4", "betas": [0, 1]}}
            },
            "data": {"train": 91, "flip": "no"},
        }
    )
    st = cfg.stages["t"]
    assert st.iterations == 100000 and isinstance(st.iterations, int) and st.batch_size == 8
    assert st.optim.lr == 1e-4 and st.optim.betas == (0.0, 1.0) and isinstance(st.optim.betas, tuple)
    assert cfg.data.train == "91" and cfg.data.flip is False
    # an empty YAML section means its defaults; a stage written as `train:` is a default stage
    cfg = config_from_dict(yaml.safe_load("val:\nstages:\n  train:\nmodel:\n  hparams:\n"))
    assert cfg.val.set == "Set5" and cfg.stages["train"].iterations == 1000 and cfg.model.hparams == {}


def test_value_rules_beyond_types():
    assert _err({"stages": {}}) == "stages: at least one stage is needed"
    assert _err({"stages": {"t": {"iterations": 0}}}) == "stages.t.iterations must be >= 1, not 0"
    assert "needs losses.gan" in _err({"stages": {"t": {"kind": "gan"}}})
    assert "does not come before" in _err({"stages": {"a": {"init": "b"}, "b": {}}})
    assert _err({"stages": {"t": {"ema": 1}}}) == "stages.t.ema must be in [0, 1), not 1.0"


def test_schema_choices_agree_with_the_runtime():
    from srlab import runtime

    hints = typing.get_type_hints(RuntimeConfig)
    assert typing.get_args(hints["compile_mode"]) == runtime.COMPILE_MODES
    for amp in typing.get_args(hints["amp"]):  # every config value is a precision the runtime takes
        import torch

        assert runtime.resolve_precision(amp, torch.device("cpu"), training=True) in ("fp32", "fp16", "bf16")


def test_base_files_merge_and_circular_chains_are_refused(tmp_path):
    (tmp_path / "a.yaml").write_text(
        yaml.safe_dump(
            {"scale": 3, "stages": {"t": {"iterations": 5, "batch_size": 2}}, "data": {"crop": 33}}
        )
    )
    (tmp_path / "b.yaml").write_text("base: a.yaml\nstages: {t: {iterations: 7}}\ndata: {color: y}\n")
    cfg, raw = load_config(tmp_path / "b.yaml")
    assert cfg.name == "b" and cfg.scale == 3 and "base" not in raw
    assert (cfg.stages["t"].iterations, cfg.stages["t"].batch_size) == (7, 2)
    assert (cfg.data.crop, cfg.data.color) == (33, "y")
    (tmp_path / "c.yaml").write_text("base: d.yaml\n")
    (tmp_path / "d.yaml").write_text("base: c.yaml\n")
    with pytest.raises(ConfigError, match="circular"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "e.yaml").write_text("scale: [1\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "e.yaml")
    (tmp_path / "f.yaml").write_text("stages: {t: {iteratons: 1}}\n")
    with pytest.raises(ConfigError, match=r"^f\.yaml: unknown config key 'stages\.t\.iteratons'"):
        load_config(tmp_path / "f.yaml")
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_overrides():
    assert parse_override("a.b=1e-4") == ("a.b", "1e-4")  # YAML 1.1: a string, converted by the schema
    assert parse_override("a=[1, 2]") == ("a", [1, 2]) and parse_override("a=") == ("a", None)
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("stages.train.iterations")
    raw = {"stages": {"p": {"iterations": 1}, "g": {"iterations": 2}}}
    out = apply_overrides(raw, ["stages.*.batch_size=3", "runtime.amp=off"])
    assert out["stages"]["p"]["batch_size"] == out["stages"]["g"]["batch_size"] == 3
    assert out["runtime"] == {"amp": False} and "batch_size" not in raw["stages"]["p"]
    cfg = config_from_dict(out)  # YAML 1.1's `off` is false; the schema takes it for amp's "off"
    assert cfg.runtime.amp == "off" and [s.batch_size for s in cfg.stages.values()] == [3, 3]
    with pytest.raises(ConfigError, match=r"unknown stage 'pp'.*did you mean 'stages\.p'"):
        apply_overrides(raw, ["stages.pp.iterations=3"])
    with pytest.raises(ConfigError, match="is a value, not a section"):
        apply_overrides(raw, ["stages.p.iterations.x=3"])


def test_config_to_dict_is_plain_yaml_in_schema_order():
    d = config_to_dict(TrainConfig())
    assert list(d)[:5] == ["name", "description", "scale", "seed", "protocol"]
    assert d["stages"]["train"]["optim"]["betas"] == [0.9, 0.999]
    assert yaml.safe_load(yaml.safe_dump(d, sort_keys=False)) == d
    assert config_from_dict(d) == TrainConfig()


def test_every_recipe_is_in_both_config_folders():
    assert RECIPES == sorted(p.name for p in configs_dir().glob("*.yaml"))
