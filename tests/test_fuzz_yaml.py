"""Hostile YAML: alias bombs, recursive aliases, deep nesting and huge values in training configs and
overrides are one ConfigError line each, refused before anything is expanded, with bounded memory and
messages that quote at most ~200 characters of a value."""

from __future__ import annotations

import os

import pytest

from memwatch import RssWatch
from srlab.errors import ConfigError
from srlab.train.config import load_config, parse_override
from srlab.yamlio import MAX_NODES, load_yaml

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc/self/statm")


def _bomb(levels: int, fan: int = 10) -> str:
    """``levels`` anchors each listing the previous one ``fan`` times: fan**levels values in a few hundred bytes."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * fan) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("levels", [6, 9])
def test_an_alias_bomb_in_a_training_config_is_refused_before_expansion(tmp_path, levels):
    path = tmp_path / "bomb.yaml"
    path.write_text("seed: 1\n" + _bomb(levels))
    assert path.stat().st_size < 1000
    with RssWatch() as watch, pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg and f"more than {MAX_NODES:,} values" in msg
    assert watch.growth_mb < 64


def test_aliases_within_the_limit_still_work():
    doc = load_yaml("base: &b {lr: 0.001, betas: [0.9, 0.99]}\ngen: *b\ndisc: {<<: *b, lr: 0.0001}\n")
    assert doc["gen"] == {"lr": 0.001, "betas": [0.9, 0.99]}
    assert doc["disc"] == {"lr": 0.0001, "betas": [0.9, 0.99]}


@pytest.mark.parametrize(
    "text, says",
    [
        ("a: &a [1, *a]\n", "an alias refers to the value that holds it"),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper"),
        ("a: [1, 2\n", "is not valid YAML"),
        ("a: " + "x" * (5 << 20) + "\n", "is not a config"),
    ],
)
def test_hostile_yaml_shapes_are_one_line(tmp_path, text, says):
    path = tmp_path / "h.yaml"
    path.write_text(text)
    with RssWatch() as watch, pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert says in msg and "\n" not in msg and len(msg) < 600, msg[:300]
    assert watch.growth_mb < 128


def test_an_override_cannot_carry_an_alias_bomb():
    with pytest.raises(ConfigError, match="aliases expand"):
        parse_override("data.extra=" + _bomb(9).replace("\n", ", ").join("{}"))
    assert parse_override("seed=[1, 2") == ("seed", "[1, 2")  # invalid YAML stays a plain string


@pytest.mark.parametrize("key", ["seed", "data.crop", "{huge}"])
def test_error_messages_quote_at_most_a_few_hundred_characters(tmp_path, key):
    huge = "y" * (1 << 20)
    path = tmp_path / "long.yaml"
    head, _, leaf = key.rpartition(".")
    leaf, value = (huge, 1) if leaf == "{huge}" else (leaf, huge)  # an unknown key is quoted too
    # a key past 1024 characters needs YAML's explicit "? key" form
    path.write_text(f"{head}:\n  {leaf}: {value}\n" if head else f"? {leaf}\n: {value}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert "\n" not in msg and len(msg) < 600 and "characters)" in msg, msg[:300]


def test_an_alias_bomb_in_a_study_spec_is_refused_before_expansion(tmp_path):
    from srlab.study.spec import load_spec

    path = tmp_path / "bomb.yaml"
    path.write_text("name: bomb\n" + _bomb(9))
    with RssWatch() as watch, pytest.raises(ConfigError, match="alias"):
        load_spec(str(path))
    assert watch.growth_mb < 64
