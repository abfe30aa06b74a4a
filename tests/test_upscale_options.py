"""UpscaleOptions: the upscale tuning options declared once -- the CLI flags are generated from its fields,
Upscaler / srlab.upscale / engine_settings take it, bad values are refused before any model is loaded."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import torch

import srlab
from srlab import runtime
from srlab.cli import build_parser
from srlab.errors import ConfigError
from srlab.imaging.io import from_tensor, to_tensor
from srlab.imaging.resize import imresize
from srlab.inference import UpscaleOptions, Upscaler
from srlab.inference import options as opts_mod
from srlab.inference.engine import engine_settings
from srlab.inference.outputs import OutputRules
from srlab.models.registry import build_model

RNG = np.random.default_rng(5)

# flags of `srlab upscale` that are not tuning options: what to read and write, how to report, and
# Real-ESRGAN's spellings of srlab's own options (mapped in srlab.cli._realesrgan)
CLI_ONLY = {
    "help", "inputs", "output", "model", "max_pixels", "quiet", "recursive", "quality", "shard", "codec", "crf",
    "input_opt", "model_name", "model_path", "fp32", "gpu_id", "alpha_upsampler", "pre_pad", "denoise_strength",
    "face_enhance",
}  # fmt: skip
REALESRGAN_ALIASES = {"-t": "tile", "--tile_pad": "tile_overlap"}


def _upscale_actions():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["upscale"]._actions


def test_every_option_field_has_a_flag_and_every_flag_a_field():
    actions = _upscale_actions()
    by_dest: dict[str, list[str]] = {}
    for a in actions:
        by_dest.setdefault(a.dest, []).extend(a.option_strings or [a.dest])
    fields = {f.name for f in dataclasses.fields(UpscaleOptions)}
    rules = {f.name for f in dataclasses.fields(OutputRules)}
    # compile has two flags (--compile, --compile-mode), the others one each
    flag_fields = {name for name, _ in opts_mod.cli_flags()}
    assert flag_fields == fields
    dests = set(by_dest) - CLI_ONLY - {"compile_mode"}
    assert dests == fields | rules, dests ^ (fields | rules)  # the output rules: a flag per field too
    for field, flag in opts_mod.cli_flags():
        assert set(flag.names) <= set(by_dest[flag.dest]), (field, flag.names)
    # the Real-ESRGAN spellings store into the same fields
    for flag, field in REALESRGAN_ALIASES.items():
        assert flag in by_dest[field]


def test_choices_match_the_runtime_and_the_parsed_flags_become_the_record():
    assert opts_mod.PRECISIONS == runtime.PRECISIONS and opts_mod.COMPILE_MODES == runtime.COMPILE_MODES
    parser = build_parser()
    argv = ["upscale", "x.png", "-o", "o", "-s", "1.5", "--tile", "64", "--tile-overlap", "6", "--batch-size",
            "2", "--precision", "bf16", "--device", "cpu", "--backend", "torch", "--compile-mode",
            "max-autotune", "--fuse", "off", "--channels-last", "on", "--alpha", "model"]  # fmt: skip
    got = opts_mod.from_flags(vars(parser.parse_args(argv)))
    assert got == UpscaleOptions(
        outscale=1.5, tile=64, tile_overlap=6, batch_size=2, precision="bf16", device="cpu", backend="torch",
        compile="max-autotune", fuse=False, channels_last=True, alpha="model",
    )  # fmt: skip
    defaults = opts_mod.from_flags(vars(parser.parse_args(["upscale", "x.png", "-o", "o"])))
    assert defaults == UpscaleOptions()  # the command line's defaults are the library's
    assert (
        opts_mod.from_flags(vars(parser.parse_args(["upscale", "x", "-o", "o", "--compile"]))).compile is True
    )


@pytest.mark.parametrize(
    "kw,needle",
    [
        ({"tile": -1}, "tile must be >= 0"),
        ({"tile_overlap": -2}, "tile overlap must be >= 0"),
        ({"batch_size": 0}, "batch size must be >= 1"),
        ({"outscale": float("nan")}, "--outscale must be a number > 0"),
        ({"outscale": 0}, "--outscale must be a number > 0"),
        ({"alpha": "ai"}, "alpha must be 'bicubic' or 'model'"),
        ({"precision": "fp8"}, "unknown precision 'fp8'"),
        ({"backend": "tensorrt"}, "unknown backend 'tensorrt'"),
        ({"compile": "fastest"}, "unknown compile mode"),
        ({"compile": True, "backend": "onnxruntime"}, "compile needs the torch backend"),
        ({"fuse": "yes"}, "fuse must be None"),
    ],
)
def test_bad_values_are_refused_before_any_model_is_loaded(kw, needle):
    for make in (
        lambda: UpscaleOptions(**kw),
        lambda: Upscaler("no-such-model-anywhere", **kw),  # the option is refused, not the model name
        lambda: srlab.upscale(np.zeros((4, 4, 3), np.uint8), model="no-such-model-anywhere", **kw),
    ):
        with pytest.raises(ConfigError, match=needle) as ei:
            make()
        assert "\n" not in str(ei.value)


def test_unknown_names_are_a_type_error_naming_the_options():
    with pytest.raises(
        TypeError, match=r"unknown upscale option\(s\) tiles; the options are: outscale, tile"
    ):
        srlab.upscale(np.zeros((4, 4, 3), np.uint8), model="bicubic-x2", tiles=3)
    with pytest.raises(TypeError, match="unknown upscale option"):
        Upscaler("bicubic-x2", devices="cpu")
    with pytest.raises(TypeError, match="must be an UpscaleOptions"):
        Upscaler("bicubic-x2", {"tile": 3})


def test_upscaler_from_a_record_or_keywords_is_the_same_and_keywords_change_the_record():
    torch.manual_seed(0)
    m, d = build_model("srcnn", scale=2, n1=8, n2=4)
    rec = UpscaleOptions(device="cpu", backend="torch", tile=16, tile_overlap=6, channels_last=False)
    a = Upscaler((m, d), rec)
    b = Upscaler((m, d), device="cpu", backend="torch", tile=16, tile_overlap=6, channels_last=False)
    c = Upscaler((m, d), rec, tile=0)
    assert a.options == b.options == rec and c.options == dataclasses.replace(rec, tile=0)
    assert a.engine.settings == b.engine.settings == engine_settings(m, d, rec)
    assert engine_settings(m, d, rec) == engine_settings(m, d, **dataclasses.asdict(rec))
    assert a.plan(40, 40).n_tiles > 1 and c.plan(40, 40).n_tiles == 1
    x = RNG.integers(0, 256, (40, 37, 3), dtype=np.uint8)
    assert np.abs(a(x).astype(int) - c(x).astype(int)).max() <= 1  # tiled with enough context = untiled


def test_the_records_outscale_is_the_default_and_a_calls_own_wins():
    x = RNG.integers(0, 256, (10, 8, 3), dtype=np.uint8)
    up = Upscaler("bicubic-x2", device="cpu", outscale=3)
    assert up(x).shape == (30, 24, 3) and up(x, outscale=2).shape == (20, 16, 3)
    # the record's outscale is the model (x2) then MATLAB bicubic to 3x, as a call's outscale is
    ref = Upscaler("bicubic-x2", device="cpu")(x, outscale=3)
    assert np.array_equal(up(x), ref)
    # and that is the model's float output resized with MATLAB bicubic (the reference), then quantised
    sr = Upscaler("bicubic-x2", device="cpu").upscale_tensor(to_tensor(x))
    want = from_tensor(imresize(sr.double(), size=(30, 24)).float())
    assert np.abs(ref.astype(int) - want.astype(int)).max() <= 1
    out = srlab.upscale(x, model="bicubic-x2", device="cpu", outscale=1.5)
    assert out.shape == (15, 12, 3)


def test_the_parser_is_built_without_torch():
    code = "import sys; from srlab.cli import build_parser; build_parser().parse_args(['upscale', '--help'])"
    probe = "import sys, atexit; atexit.register(lambda: print('TORCH' if 'torch' in sys.modules else 'NO'))"
    res = subprocess.run([sys.executable, "-c", f"{probe}; {code}"], capture_output=True, text=True)
    assert "--tile-overlap" in res.stdout and res.stdout.strip().endswith("NO"), (
        res.stdout[-300:] + res.stderr
    )
