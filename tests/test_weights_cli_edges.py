"""`srlab weights convert IN -o OUT` and `srlab weights info FILE` work as their help says."""

from __future__ import annotations

import torch

from srlab.cli import main
from srlab.models.registry import build_model
from srlab.weights.io import read_metadata, save_model


def _tiny(tmp_path):
    torch.manual_seed(0)
    net, _ = build_model("srvgg", scale=2, num_feat=4, num_conv=1)
    return save_model(tmp_path / "tiny.safetensors", net)


def test_convert_takes_o(tmp_path, capsys):
    src = tmp_path / "t.pth"
    torch.save(build_model("srvgg", scale=2, num_feat=4, num_conv=1)[0].state_dict(), src)
    out = tmp_path / "c.safetensors"
    assert main(["weights", "convert", str(src), "-o", str(out)]) == 0
    assert read_metadata(out)["arch"] == "srvgg"
    assert main(["weights", "convert", str(src), str(out), "-o", str(tmp_path / "d.safetensors")]) == 2
    assert "both name the output" in capsys.readouterr().err


def test_info_on_a_file(tmp_path, capsys):
    path = _tiny(tmp_path)
    assert main(["weights", "info", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{path}: safetensors" in out and "srvgg x2" in out and "sha256" in out
