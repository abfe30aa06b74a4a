"""srlab safetensors checkpoints, and refusing unsafe or broken weight files with one clear line."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

import srlab
from srlab.errors import WeightsError
from srlab.models.registry import build_model
from srlab.weights.io import read_checkpoint, read_metadata, read_state_dict, save_model

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks


def _tiny(arch="rrdbnet", **hp):
    defaults = {
        "rrdbnet": dict(scale=2, num_block=1, num_feat=8, num_grow_ch=4),
        "srvgg": dict(scale=3, num_feat=8, num_conv=2),
        "srcnn": dict(scale=3, num_channels=1, n1=8, n2=4, f1=5, f2=1, f3=3),
    }[arch]
    model, _ = build_model(arch, **{**defaults, **hp})
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)  # make every tensor matter
    return model.eval()


@pytest.mark.parametrize("arch", ["rrdbnet", "srvgg", "srcnn"])
def test_save_and_load_roundtrip(arch, tmp_path):
    model = _tiny(arch)
    meta = {
        "recipe": {"name": "study", "lr": 1e-4, "steps": [1, 2]},
        "metrics": {"Set5": {"psnr_y": 30.5}},
        "perceptual_weights": "vgg19",
    }
    path = save_model(tmp_path / "m.safetensors", model, metadata=meta)
    assert sorted(os.listdir(tmp_path)) == ["m.safetensors"]  # no temporary file left behind
    read = read_metadata(path)
    assert read["arch"] == arch and read["hparams"] == model.hparams and read["scale"] == model.scale
    assert read["format_version"] == 1 and read["color"] == getattr(model, "color", "rgb")
    assert {k: read[k] for k in meta} == meta

    loaded, desc = srlab.load_model(path)
    assert desc.arch == arch and desc.name == "m" and not loaded.training
    assert loaded.checkpoint_metadata["recipe"] == meta["recipe"]
    x = torch.rand(1, model.in_channels, 9, 8)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_save_replaces_atomically_and_rejects_bad_metadata(tmp_path):
    path = tmp_path / "m.safetensors"
    save_model(path, _tiny(scale=2))
    save_model(path, _tiny(scale=4))
    assert read_metadata(path)["scale"] == 4
    with pytest.raises(ValueError, match="reserved"):
        save_model(path, _tiny(), metadata={"arch": "x"})
    with pytest.raises(ValueError, match="JSON"):
        save_model(path, _tiny(), metadata={"fn": object()})
    assert sorted(os.listdir(tmp_path)) == ["m.safetensors"]
    assert read_metadata(path)["scale"] == 4


def test_device_and_dtype(tmp_path):
    path = save_model(tmp_path / "m.safetensors", _tiny())
    model, _ = srlab.load_model(path, dtype=torch.bfloat16, device="auto")
    assert next(model.parameters()).dtype == torch.bfloat16


def test_read_state_dict_unwraps(tmp_path):
    t = torch.arange(4.0)
    torch.save({"state_dict": {"module.a.weight": t}, "optimizer": {"lr": 0.1}}, tmp_path / "c.ckpt")
    assert list(read_state_dict(tmp_path / "c.ckpt")) == ["a.weight"]
    torch.save({"params": {"x": t}, "params_ema": {"y": t}}, tmp_path / "e.pt")
    assert list(read_state_dict(tmp_path / "e.pt")) == ["y"]


class _Payload:
    """Unpickling this would create the marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


@pytest.mark.parametrize("container", ["torch-zip", "raw-pickle", "legacy-torch"])
def test_malicious_pickle_is_refused_and_never_runs(container, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    payload = {"conv_first.weight": torch.zeros(1), "x": _Payload(str(marker))}
    if container == "torch-zip":
        torch.save(payload, path)
    elif container == "legacy-torch":
        torch.save(payload, path, _use_new_zipfile_serialization=False)
    else:
        with open(path, "wb") as f:
            pickle.dump(payload, f, protocol=2)
    for load in (read_checkpoint, srlab.load_model):
        with pytest.raises(WeightsError) as info:
            load(path)
        msg = str(info.value)
        assert "\n" not in msg and str(path) in msg
        assert "needs code execution" in msg and "builtins.exec" in msg and "never run" in msg
        assert not marker.exists()
    # the CLI prints that one line and exits non-zero, still without running the payload
    from srlab.cli import main

    assert main(["weights", "convert", str(path), str(tmp_path / "out.safetensors")]) == 2
    assert not marker.exists() and not (tmp_path / "out.safetensors").exists()


def _broken_files(tmp_path):
    good_pth = tmp_path / "good.pth"
    torch.save({"a": torch.zeros(1000)}, good_pth)
    good_st = save_model(tmp_path / "good.safetensors", _tiny())
    data_pth, data_st = good_pth.read_bytes(), good_st.read_bytes()
    files = {
        "zero.pth": (b"", "empty (0 bytes)"),
        "trunc.pth": (data_pth[: len(data_pth) // 2], "truncated or corrupt PyTorch checkpoint"),
        "trunc.safetensors": (data_st[: len(data_st) // 2], "truncated safetensors"),
        "trunc_header.safetensors": (data_st[:20], "safetensors"),
        "random.pth": (bytes(range(7, 256)) * 20, "not a weights file"),
        "image.pth": (b"\x89PNG\r\n\x1a\n" + b"\0" * 200, "PNG image"),
        "page.safetensors": (b"<!DOCTYPE html><html><body>Sign in</body></html>", "HTML page"),
        "notes.pt": (b"these are not weights\n", "text file"),
    }
    for name, (content, _) in files.items():
        (tmp_path / name).write_bytes(content)
    return {tmp_path / n: why for n, (_, why) in files.items()}


def test_broken_files_get_one_clear_error(tmp_path):
    for path, why in _broken_files(tmp_path).items():
        for load in (read_checkpoint, srlab.load_model):
            with pytest.raises(WeightsError) as info:
                load(path)
            msg = str(info.value)
            assert "\n" not in msg and str(path) in msg and why in msg, msg
    with pytest.raises(WeightsError, match="not found"):
        srlab.load_model(tmp_path / "absent.pth")
    with pytest.raises(WeightsError, match="folder"):
        read_checkpoint(tmp_path)


def test_srlab_metadata_with_wrong_tensors(tmp_path):
    from safetensors.torch import load_file, save_file

    path = save_model(tmp_path / "m.safetensors", _tiny())
    meta = read_checkpoint(path)[1]
    tensors = load_file(str(path))
    tensors.pop("conv_last.bias")
    save_file(tensors, str(tmp_path / "cut.safetensors"), metadata=meta)
    with pytest.raises(WeightsError, match=r"missing keys 1 \(conv_last.bias\)"):
        srlab.load_model(tmp_path / "cut.safetensors")
    newer = dict(meta, format_version="99")
    save_file(load_file(str(path)), str(tmp_path / "new.safetensors"), metadata=newer)
    with pytest.raises(WeightsError, match="newer srlab"):
        srlab.load_model(tmp_path / "new.safetensors")
