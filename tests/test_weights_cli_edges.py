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


def test_an_srcnn_checkpoint_without_a_scale_takes_scale_in_upscale_and_interp(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    net, _ = build_model("srcnn", scale=3, num_channels=1, n1=4, n2=2, f1=3, f2=1, f3=3)
    ck = tmp_path / "srcnn.pth"
    torch.save(net.state_dict(), ck)  # a plain state dict: nothing says x3
    Image.fromarray(np.zeros((6, 5, 3), np.uint8)).save(tmp_path / "a.png")
    cmd = ["upscale", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "-m", str(ck)]
    assert main(cmd) == 2 and "--scale 3" in capsys.readouterr().err
    assert main([*cmd, "--scale", "3", "-q"]) == 0
    assert Image.open(tmp_path / "o" / "a_x3.png").size == (15, 18)
    out = tmp_path / "i.safetensors"
    assert main(["interp", str(ck), str(ck), "--alpha", "0.5", "-o", str(out), "--scale", "3"]) == 0
    meta = read_metadata(out)
    assert meta["scale"] == 3 and meta["interpolation"]["a"] == str(ck)
