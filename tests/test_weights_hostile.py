"""Hostile weight files: metadata that asks for a huge network, pickles that want code, odd names, modes."""

from __future__ import annotations

import json
import os
import pickle
import stat
import time

import pytest
import torch

import srlab
from memwatch import RssWatch
from srlab.errors import SrlabError, WeightsError
from srlab.models.registry import build_model
from srlab.weights.io import read_checkpoint, save_model

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks

_STATM = "/proc/self/statm"


needs_proc = pytest.mark.skipif(not os.path.exists(_STATM), reason="needs /proc/self/statm")


def _rewrite_metadata(src, dst, **changes):
    """``src``'s tensors with its srlab metadata changed (values are JSON-encoded unless already str)."""
    from safetensors.torch import load_file, save_file

    meta = dict(read_checkpoint(src)[1])
    for key, value in changes.items():
        meta[key] = value if isinstance(value, str) else json.dumps(value)
    save_file(load_file(str(src)), str(dst), metadata=meta)
    return dst


def _tiny_file(tmp_path, arch="srvgg"):
    hp = {
        "srvgg": dict(scale=2, num_feat=8, num_conv=2),
        "rrdbnet": dict(scale=2, num_block=1, num_feat=8, num_grow_ch=4),
    }[arch]
    model, _ = build_model(arch, **hp)
    return save_model(tmp_path / f"{arch}.safetensors", model), model


def _assert_refused_fast(path, *, seconds=10.0, mb=200.0, match=None):
    t0 = time.perf_counter()
    with RssWatch() as watch, pytest.raises(WeightsError) as info:
        srlab.load_model(path)
    elapsed = time.perf_counter() - t0
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg, msg
    if match:
        assert match in msg, msg
    assert elapsed < seconds, f"took {elapsed:.1f} s to refuse: {msg}"
    assert watch.growth_mb < mb, f"resident memory grew {watch.growth_mb:.0f} MB: {msg}"
    return msg


HOSTILE_HPARAMS = [
    ("srvgg", {"num_conv": 100_000_000}),
    ("srvgg", {"num_feat": 1_000_000_000}),
    ("srvgg", {"num_conv": 10**40}),
    ("srvgg", {"num_conv": -3}),
    ("srvgg", {"num_conv": 2.5}),
    ("srvgg", {"num_conv": "many"}),
    ("srvgg", {"act_type": ["prelu"]}),
    ("rrdbnet", {"num_block": 100_000_000}),
    ("rrdbnet", {"scale": 2**30}),
    ("rrdbnet", {"num_feat": 65536, "num_grow_ch": 65536}),
]


@needs_proc
@pytest.mark.timeout(120)
@pytest.mark.parametrize("arch,change", HOSTILE_HPARAMS, ids=lambda v: str(v)[:40])
def test_metadata_hparams_are_checked_against_the_tensors_before_building(tmp_path, arch, change):
    src, model = _tiny_file(tmp_path, arch)
    evil = _rewrite_metadata(src, tmp_path / "evil.safetensors", hparams={**model.hparams, **change})
    _assert_refused_fast(evil)


@needs_proc
@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "changes",
    [
        {"hparams": [1, 2]},
        {"hparams": "null"},
        {"hparams": "{not json"},
        {"hparams": "[" * 100_000 + "]" * 100_000},  # nesting deeper than Python's recursion limit
        {"arch": "nope"},
        {"arch": "bicubic", "hparams": {"scale": 2}},  # parameter-free, yet the file holds tensors
        {"scale": "x2"},
        {"format_version": "9" * 5000},
    ],
    ids=lambda c: next(iter(c)) + ":" + str(next(iter(c.values())))[:20],
)
def test_damaged_metadata_is_one_line(tmp_path, changes):
    src, _ = _tiny_file(tmp_path)
    _assert_refused_fast(_rewrite_metadata(src, tmp_path / "bad.safetensors", **changes))


@needs_proc
@pytest.mark.timeout(120)
def test_resized_wrapper_inner_hparams_are_bounded_too(tmp_path):
    from srlab.models.resized import ResizedOutput

    inner, _ = build_model("srvgg", scale=2, num_feat=8, num_conv=1)
    path = save_model(tmp_path / "r.safetensors", ResizedOutput(inner, scale=3))
    loaded, desc = srlab.load_model(path)
    assert desc.arch == "resized" and desc.scale == 3
    hp = dict(loaded.hparams, inner_hparams={**inner.hparams, "num_conv": 100_000_000})
    _assert_refused_fast(_rewrite_metadata(path, tmp_path / "evil.safetensors", hparams=hp))


@needs_proc
@pytest.mark.timeout(120)
def test_foreign_checkpoint_keys_cannot_ask_for_a_huge_network(tmp_path):
    # the block count of a foreign RRDBNet comes from its largest key index
    ref, _ = build_model("rrdbnet", scale=2, num_block=1, num_feat=8, num_grow_ch=4)
    sd = dict(ref.state_dict())
    sd["body.99999999.rdb1.conv1.weight"] = sd["body.0.rdb1.conv1.weight"].clone()
    path = tmp_path / "basicsr.pth"
    torch.save({"params_ema": sd}, path)
    _assert_refused_fast(path)


def test_a_network_the_tensors_match_still_loads_exactly(tmp_path):
    src, model = _tiny_file(tmp_path, "rrdbnet")
    loaded, desc = srlab.load_model(src)
    assert desc.params == sum(p.numel() for p in model.parameters())
    assert not any(t.is_meta for t in [*loaded.parameters(), *loaded.buffers()])
    x = torch.rand(1, 3, 7, 6)
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))


def test_parameter_cap_is_absolute(tmp_path, monkeypatch):
    from srlab.weights import build

    src, _ = _tiny_file(tmp_path)
    monkeypatch.setattr(build, "MAX_PARAMS", 100)
    with pytest.raises(WeightsError, match="parameters"):
        srlab.load_model(src)


# --------------------------------------------------------------------------------------------- pickles
class _System:
    def __reduce__(self):
        return (os.system, ("true",))


class _Exec:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


@pytest.mark.parametrize(
    "how,wanted",
    [
        ("torch.save", "builtins.exec"),
        ("pickle-2", "builtins.exec"),
        ("pickle-4", "builtins.exec"),  # framed pickle: PyTorch names only the opcode
        ("system-2", "posix.system"),  # a blocked module: PyTorch words this one differently
    ],
)
def test_code_execution_pickle_names_its_global_and_never_runs(tmp_path, how, wanted):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    payload = {"w": torch.zeros(2), "x": _System() if how.startswith("system") else _Exec(str(marker))}
    if how == "torch.save":
        torch.save(payload, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(payload, f, protocol=int(how[-1]))
    if os.name != "posix" and wanted == "posix.system":
        wanted = os.system.__module__ + ".system"
    with pytest.raises(WeightsError) as info:
        srlab.load_model(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg
    assert "code execution" in msg and "refused" in msg and "never run" in msg, msg
    assert wanted in msg, msg
    assert "corrupt" not in msg and "download it again" not in msg, msg
    assert not marker.exists()


def test_framed_pickle_of_plain_data_is_not_called_code(tmp_path):
    path = tmp_path / "p4.pth"
    with open(path, "wb") as f:
        pickle.dump({"w": [1.0, 2.0]}, f, protocol=4)
    with pytest.raises(WeightsError) as info:
        srlab.load_model(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg and "code execution" not in msg, msg


# --------------------------------------------------------------------------------------------- names
@pytest.mark.parametrize("name", ["", "   "])
def test_empty_model_name_is_one_clear_error(name):
    with pytest.raises(SrlabError) as info:
        srlab.load_model(name)
    msg = str(info.value)
    assert "empty" in msg and "folder" not in msg, msg


# --------------------------------------------------------------------------------------------- modes
@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield 0o644
    os.umask(old)


def test_saved_and_converted_models_follow_the_umask(tmp_path, umask_022):
    from srlab.cli import main

    model, _ = build_model("srvgg", scale=2, num_feat=4, num_conv=1)
    path = save_model(tmp_path / "m.safetensors", model)
    assert stat.S_IMODE(path.stat().st_mode) == umask_022
    torch.save(model.state_dict(), tmp_path / "m.pth")
    out = tmp_path / "c.safetensors"
    assert main(["weights", "convert", str(tmp_path / "m.pth"), str(out)]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == umask_022
    os.umask(0o077)
    save_model(path, model)  # a replaced file gets the mode of a new one, as open() would give
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_known_keys_with_impossible_shapes_are_one_line(tmp_path):
    # found by tests/test_fuzz_weights.py: 0-d tensors under RRDBNet keys
    path = tmp_path / "forged.pth"
    keys = ("conv_first.weight", "body.0.rdb1.conv1.weight", "conv_last.weight")
    torch.save({k: torch.zeros(()) for k in keys}, path)
    with pytest.raises(WeightsError, match="rrdb-basicsr keys but tensors of shapes") as info:
        srlab.load_model(path)
    assert str(path) in str(info.value)
