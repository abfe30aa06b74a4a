"""Training config values that used to pass validation and fail later with a traceback (or train the wrong
way): each is one ConfigError line at load, naming the key, the value and what it must be."""

from __future__ import annotations

import pytest

from srlab.cli import main
from srlab.errors import ConfigError
from srlab.train.config import load_config
from srlab.train.config_limits import batch_bytes


@pytest.mark.parametrize(
    "override, says",
    [
        ("data.crop=0", "data.crop is the HR crop size in pixels: it must be at least the scale (2)"),
        ("data.crop=-5", "data.crop is the HR crop size in pixels: it must be at least the scale (2)"),
        ("data.crop=1", "data.crop is the HR crop size in pixels"),
        ("data.stride=-1", "data.stride must be >= 0"),
        ("seed=-1", "seed must be 0..4294967295"),
        ("seed=4294967296", "seed must be 0..4294967295"),
        ("stages.train.optim.lr=-0.001", "stages.train.optim.lr must be > 0, not -0.001 (a negative rate"),
        ("stages.train.optim.lr=0", "stages.train.optim.lr must be > 0, not 0"),
        ("stages.train.optim.weight_decay=-1", "weight_decay must be >= 0"),
        ("model.hparams.n1=0", "model 'srcnn' with model.hparams"),
        ("stages.train.batch_size=100000000", "stages.train.batch_size 100,000,000 needs"),
    ],
)
def test_bad_values_are_one_line_at_load(override, says):
    with pytest.raises(ConfigError) as info:
        load_config("srcnn_x2_paper", [override])
    msg = str(info.value)
    assert says in msg and "\n" not in msg and len(msg) < 400, msg


def test_the_batch_check_says_what_a_batch_needs():
    cfg, _ = load_config("srcnn_x2_paper")
    c = 1 if cfg.data.color == "y" else 3
    hr = c * cfg.data.crop**2
    lr = hr if cfg.data.pre_upsample else hr // cfg.scale**2
    assert batch_bytes(cfg, 10) == 4 * 10 * (hr + lr)


def test_the_n1_zero_message_names_the_value_and_the_cli_prints_one_line(tmp_path, capsys):
    rc = main(["train", "srcnn_x2_paper", "--out", str(tmp_path / "r"), "model.hparams.n1=0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "'n1': 0" in err[0] and "has no weights" in err[0], err
    assert not (tmp_path / "r").exists()


def test_valid_values_still_load():
    cfg, _ = load_config("srcnn_x2_paper", ["seed=0", "data.crop=2", "stages.train.optim.lr=1e-9"])
    assert cfg.seed == 0 and cfg.data.crop == 2


@pytest.mark.parametrize("bad", ["../../escape", "a/b", ".hidden"])
def test_a_config_name_is_a_name_not_a_path(tmp_path, bad):
    from srlab.errors import ConfigError
    from srlab.train.config import load_config

    with pytest.raises(ConfigError, match="not a plain name"):
        load_config("srcnn_x2_paper", [f"name={bad}"])
