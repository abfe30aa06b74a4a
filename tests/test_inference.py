"""srlab.inference: tiling exactness, blending weights, bounded device batches, colour modes, outscale, precision."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from torch import nn

from srlab.errors import ConfigError
from srlab.imaging.color import rgb_to_ycbcr
from srlab.imaging.io import Image, from_tensor, to_tensor
from srlab.imaging.resize import imresize
from srlab.inference import Upscaler, upscale
from srlab.inference.tiling import axis_tiles, axis_weights
from srlab.models.registry import ModelDescriptor, build_model
from srlab.runtime import resolve_device, resolve_precision

RNG = np.random.default_rng(7)


def _srcnn(scale=2, channels=3):
    # narrow SRCNN 9-5-5: same receptive field as the paper's, a fraction of the compute
    torch.manual_seed(0)
    m, d = build_model("srcnn", scale=scale, num_channels=channels, n1=8, n2=4)
    for conv in (m.conv1, m.conv2, m.conv3):  # non-trivial weights so differences would show
        nn.init.normal_(conv.weight, std=0.2)
    return m, d


def _tiny_rrdb(**kw):
    torch.manual_seed(0)
    return build_model("rrdbnet", num_block=1, num_feat=8, num_grow_ch=4, **kw)


class Recorder(nn.Module):
    """Wraps a model and records the input shapes and devices it sees."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.shapes = []

    def forward(self, x):
        self.shapes.append(tuple(x.shape))
        return self.inner(x)


# -------------------------------------------------------------------------------------- tiling


@pytest.mark.parametrize("tile,batch", [(40, 1), (56, 3)])
def test_srcnn_tiled_equals_untiled_when_overlap_covers_receptive_field(tile, batch):
    m, d = _srcnn()
    x = torch.rand(3, 61, 75)
    full = Upscaler((m, d), device="cpu", tile=0).upscale_tensor(x)
    up = Upscaler((m, d), device="cpu", tile=tile, tile_overlap=d.receptive_radius, batch_size=batch)
    plan = up.plan(61, 75)
    assert plan.n_tiles >= 4 and plan.win_h < 61 and plan.win_w < 75
    tiled = up.upscale_tensor(x)
    assert tiled.shape == full.shape == (3, 122, 150)
    assert (tiled - full).abs().max().item() < 1e-5  # far inside 1/255
    # the uint8 images agree too
    assert np.abs(from_tensor(tiled).astype(int) - from_tensor(full)).max() <= 1


def test_too_small_overlap_shows_seams():
    # Guard against a test that cannot fail: without enough context, tiles differ from the whole.
    m, d = _srcnn()
    x = torch.rand(3, 61, 75)
    full = Upscaler((m, d), device="cpu", tile=0).upscale_tensor(x)
    tiled = Upscaler((m, d), device="cpu", tile=40, tile_overlap=1).upscale_tensor(x)
    assert (tiled - full).abs().max().item() > 1e-3


def test_rrdbnet_tiling_difference_at_overlap_32():
    """Tiny random RRDBNet x4, tiled (overlap 32) vs untiled: the zero-weight margin R = 16 plus the ramp
    hide the window edges. (A real 23-block x4plus differs more: see srlab.inference.tiling and the README.)
    Tiled along the width only, which is enough for the overlap logic and keeps the test cheap."""
    m, d = _tiny_rrdb(scale=4)
    for conv in m.modules():  # weights large enough that the body's ~17-pixel reach matters
        if isinstance(conv, nn.Conv2d):
            nn.init.normal_(conv.weight, std=0.1)
    x = torch.rand(3, 24, 140)
    full = Upscaler((m, d), device="cpu", tile=0).upscale_tensor(x)
    up = Upscaler((m, d), device="cpu", tile=70, tile_overlap=32)
    plan = up.plan(24, 140)
    assert plan.n_tiles == 2 and plan.win_w == 70 + 2 * 32 < 140 and plan.margin == 16
    diff = (up.upscale_tensor(x) - full).abs().max().item()
    print(f"RRDBNet tiny x4 max |tiled - untiled| at overlap 32: {diff:.3g}")
    assert diff < 1 / 255 / 4
    # and with too little context (overlap 2) the same model shows the window edges
    bad = Upscaler((m, d), device="cpu", tile=70, tile_overlap=2).upscale_tensor(x)
    assert (bad - full).abs().max().item() > 1e-3


def test_pixel_unshuffle_model_tiles_consistently():
    m, d = _tiny_rrdb(scale=2, pixel_unshuffle=True)
    assert d.size_multiple == 2
    x = torch.rand(3, 47, 53)  # odd sizes: padded to the multiple, cropped back
    full = Upscaler((m, d), device="cpu", tile=0).upscale_tensor(x)
    rec = Recorder(m)
    up = Upscaler((rec, d), device="cpu", tile=40, tile_overlap=16)
    tiled = up.upscale_tensor(x)
    assert tiled.shape == (3, 94, 106)
    assert all(s[-1] % 2 == 0 and s[-2] % 2 == 0 for s in rec.shapes)
    assert (tiled - full).abs().max().item() < 1e-5


def test_device_batches_are_bounded_by_tile_not_image():
    m, d = build_model("bicubic-x2")
    rec = Recorder(m)
    up = Upscaler((rec, d), device="cpu", tile=32, tile_overlap=4, batch_size=2)
    x = torch.rand(3, 150, 140)
    out = up.upscale_tensor(x)
    assert out.device.type == "cpu" and out.shape == (3, 300, 280)
    assert len(rec.shapes) > 5
    assert max(s[0] for s in rec.shapes) <= 2
    assert max(s[2] * s[3] for s in rec.shapes) <= (32 + 2 * 4) ** 2
    assert torch.allclose(out, imresize(x, 2.0), atol=1e-5)  # and bicubic tiled == bicubic


def test_auto_tile_uses_memory_budget():
    m, d = _tiny_rrdb(scale=4)
    up = Upscaler((m, d), device="cpu")
    assert up.plan(40, 40).n_tiles == 1  # small image on CPU: whole
    small_budget = Upscaler((m, d), device="cpu", memory_budget=160 * 160 * up._bytes_per_lr_pixel())
    plan = small_budget.plan(300, 200)
    assert plan.overlap == 32 and plan.n_tiles > 1 and plan.win_h <= 160 and plan.win_w <= 160


def test_blend_weights_partition_of_unity_and_zero_margins():
    length, tile, overlap, scale, margin = 203, 50, 9, 3, 5
    win, tiles = axis_tiles(length, tile, overlap, 1)
    assert len(tiles) > 3 and tiles[0].c0 == 0 and tiles[-1].c1 == length
    ws = axis_weights(tiles, win, scale, overlap, margin)
    total = torch.zeros(length * scale)
    for t, w in zip(tiles, ws):
        assert t.start <= t.c0 - min(overlap, t.c0) and t.start + win >= min(length, t.c1 + overlap)
        total[t.start * scale : (t.start + win) * scale] += w
        if t.start > 0:  # interior left edge: zero weight over the margin
            assert torch.all(w[: margin * scale] == 0)
        if t.start + win < length:
            assert torch.all(w[-margin * scale :] == 0)
        assert torch.all(torch.diff(w[: w.argmax()]) >= 0)  # ramps are monotone
    assert torch.allclose(total, torch.ones_like(total), atol=1e-6)


def test_bad_tiling_settings_are_config_errors():
    m, d = _srcnn()
    for kw in (dict(tile=-1), dict(tile_overlap=-2), dict(batch_size=0), dict(alpha="magic")):
        with pytest.raises(ConfigError):
            Upscaler((m, d), **kw)


# -------------------------------------------------------------------------------------- colour & modes


def _bicubic_ref(a: np.ndarray, s: float = 2.0, size=None) -> np.ndarray:
    bits = 16 if a.dtype == np.uint16 else 8
    t = to_tensor(a).double()
    r = imresize(t, s) if size is None else imresize(t, size=size)
    return from_tensor(r, bit_depth=bits)


def test_rgb_gray_rgba_uint8_arrays_with_bicubic_model():
    model = build_model("bicubic-x2")
    rgb = RNG.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    out = upscale(rgb, model=model)
    assert out.dtype == np.uint8 and out.shape == (24, 20, 3)
    assert np.abs(out.astype(int) - _bicubic_ref(rgb)).max() <= 1
    gray = rgb[..., 0]
    out = upscale(gray, model=model)  # replicated to RGB, back to gray
    assert out.shape == (24, 20) and np.abs(out.astype(int) - _bicubic_ref(gray)[..., 0]).max() <= 1
    rgba = RNG.integers(0, 256, (12, 10, 4), dtype=np.uint8)
    out = upscale(rgba, model=model)
    assert out.shape == (24, 20, 4)
    assert np.abs(out[..., 3].astype(int) - _bicubic_ref(rgba[..., 3:])[..., 0]).max() <= 1


def test_alpha_by_model_differs_from_bicubic():
    m, d = _srcnn()
    rgba = RNG.integers(0, 256, (16, 14, 4), dtype=np.uint8)
    a_bic = Upscaler((m, d), alpha="bicubic")(rgba)[..., 3]
    a_mod = Upscaler((m, d), alpha="model")(rgba)[..., 3]
    assert np.array_equal(a_bic, _bicubic_ref(rgba[..., 3:])[..., 0])
    assert np.abs(a_mod.astype(int) - a_bic).max() > 2


class WavyY(nn.Module):
    """A Y-channel 'model' that is not bicubic: bicubic x2 plus a deterministic ripple."""

    def forward(self, x):
        up = imresize(x, 2.0)
        return up + 0.03 * torch.sin(40 * up)


def test_y_model_on_rgb_runs_y_and_bicubic_chroma():
    d = ModelDescriptor(name="wavy", arch="wavy", scale=2, in_channels=1, out_channels=1, params=0, color="y")
    m = WavyY()
    rgb = RNG.integers(70, 180, (14, 12, 3), dtype=np.uint8)  # mid-range: no clipping after conversion
    out = Upscaler((m, d))(rgb)
    assert out.shape == (28, 24, 3)
    ycc_out = rgb_to_ycbcr(to_tensor(out).double(), data_range=1.0)
    ycc_in = rgb_to_ycbcr(to_tensor(rgb).double(), data_range=1.0)
    y_sr = m(ycc_in[None, :1])[0]
    cbcr = imresize(ycc_in[1:], 2.0)
    assert (ycc_out[0] - y_sr[0]).abs().max() < 1.5 / 255  # the model's Y, up to uint8 rounding
    assert (ycc_out[1:] - cbcr).abs().max() < 2 / 255  # bicubic chroma
    assert (ycc_out[0] - imresize(ycc_in[:1], 2.0)[0]).abs().max() > 5 / 255  # and not bicubic luma


def test_y_bicubic_model_equals_rgb_bicubic():
    # bicubic on Y + bicubic on CbCr == bicubic on RGB (the conversion is affine)
    model = build_model("bicubic", scale=2, num_channels=1)
    rgb = RNG.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    out = upscale(rgb, model=model)
    assert np.abs(out.astype(int) - _bicubic_ref(rgb)).max() <= 1


def test_sixteen_bit_stays_sixteen_bit():
    model = build_model("bicubic-x2")
    a = RNG.integers(0, 65536, (8, 9, 3), dtype=np.uint16)
    out = upscale(a, model=model)
    assert out.dtype == np.uint16 and out.shape == (16, 18, 3)
    assert np.abs(out.astype(int) - _bicubic_ref(a)).max() <= 2
    img = Image(pixels=a[..., :1], alpha=a[..., 1], bit_depth=16)
    res = Upscaler(model)(img)
    assert res.bit_depth == 16 and res.pixels.dtype == np.uint16 and res.alpha.dtype == np.uint16
    assert len(np.unique(res.pixels)) > 256  # really 16-bit values


def test_float_arrays_come_back_float():
    model = build_model("bicubic-x2")
    a = RNG.random((6, 7, 3)).astype(np.float32)
    out = upscale(a, model=model)
    assert out.dtype == np.float32 and out.shape == (12, 14, 3) and out.min() >= 0 and out.max() <= 1
    ref = imresize(torch.from_numpy(a).permute(2, 0, 1), 2.0).clamp(0, 1).permute(1, 2, 0).numpy()
    assert np.abs(out - ref).max() < 1e-5


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "LA", "P", "I;16"])
def test_pil_in_pil_out(mode):
    model = build_model("bicubic-x2")
    base = PILImage.fromarray(RNG.integers(0, 256, (10, 8, 4), dtype=np.uint8))
    if mode == "I;16":
        im = PILImage.fromarray(RNG.integers(0, 65536, (10, 8), dtype=np.uint16))
    elif mode == "P":
        im = base.convert("RGB").quantize(8)
    else:
        im = base.convert(mode)
    out = upscale(im, model=model)
    assert isinstance(out, PILImage.Image) and out.size == (16, 20)
    assert out.mode == {"P": "RGB"}.get(mode, mode)


def test_outscale_up_and_down():
    model = build_model("bicubic-x2")
    a = RNG.integers(0, 256, (10, 12, 3), dtype=np.uint8)
    out = upscale(a, model=model, outscale=3.0)
    assert out.shape == (30, 36, 3)
    out = upscale(a, model=model, outscale=1.5)
    assert out.shape == (15, 18, 3)
    # outscale 1 with a x2 model: bicubic up then antialiased bicubic down ~ the input
    yy, xx = np.mgrid[0:10, 0:12]
    smooth = np.stack([yy * 25, xx * 20, np.full((10, 12), 99)], axis=2).astype(np.uint8)
    back = upscale(smooth, model=model, outscale=1.0)
    assert back.shape == smooth.shape and np.abs(back.astype(int) - smooth)[2:-2, 2:-2].max() <= 3
    rgba = RNG.integers(0, 256, (10, 12, 4), dtype=np.uint8)
    assert upscale(rgba, model=model, outscale=2.5).shape == (25, 30, 4)


# -------------------------------------------------------------------------------------- precision, device, models


def test_precision_and_device_choice():
    """The Upscaler's rules are srlab.runtime's (inference mode): checked here with inference's cases."""
    _, d = build_model("srcnn-955-x2")
    _, bic = build_model("bicubic-x2")
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_precision("auto", cpu, d) == "fp32"
    assert resolve_precision("auto", cuda, d) == "fp16"
    assert resolve_precision("auto", cuda, bic) == "fp32"  # bicubic computes in fp32
    assert resolve_precision("bf16", cpu, d) == "bf16"
    with pytest.warns(UserWarning, match="fp16"):
        assert resolve_precision("fp16", cuda, bic) == "fp32"
    with pytest.raises(ConfigError):
        resolve_precision("fp8", cpu, d)
    from srlab import runtime

    if not runtime.cuda_available():
        assert resolve_device("auto").type in ("cpu", "mps")
        with pytest.raises(ConfigError, match="cuda"):
            Upscaler(build_model("bicubic-x2"), device="cuda")
    with pytest.raises(ConfigError):
        Upscaler(build_model("bicubic-x2"), device="tpu")


def test_auto_device_goes_through_runtime_resolve_device(monkeypatch):
    """`--device auto` with CUDA present means cuda, fp16, channels_last and fused blocks: the choice is made
    by srlab.runtime (spied on here) before anything is placed, so it is checked without a GPU."""
    from srlab import runtime
    from srlab.inference.engine import engine_settings

    calls = []
    real = runtime.resolve_device

    def spy(spec="auto"):
        calls.append(spec)
        return real(spec)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # asked by resolve_precision
    monkeypatch.setattr(runtime, "resolve_device", spy)
    m, d = _tiny_rrdb(scale=2)
    s = engine_settings(m, d, device="auto")
    assert "auto" in calls
    assert s.device == torch.device("cuda") and s.backend == "torch" and s.precision == "fp16"
    assert s.model_dtype == torch.float16 and s.autocast_dtype is None and s.channels_last and s.fuse
    # and on the CPU, the same call is the CPU's defaults
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(runtime, "_mps_available", lambda: False)
    n = len(calls)
    up = Upscaler((m, d), device="auto", backend="torch")
    assert calls[n:] == ["auto"]
    assert up.device == torch.device("cpu") and up.precision == "fp32" and not up.engine.fused


def test_cpu_bf16_autocast_close_to_fp32():
    m, d = _srcnn()
    x = torch.rand(3, 24, 20)
    ref = Upscaler((m, d), device="cpu", precision="fp32").upscale_tensor(x)
    up = Upscaler((m, d), precision="bf16", device="cpu", backend="torch")  # OpenVINO's bf16: test_openvino
    assert up.engine.autocast_dtype == torch.bfloat16
    out = up.upscale_tensor(x)
    err = (out - ref).abs()
    assert out.dtype == torch.float32 and err.mean().item() < 0.03 and err.max().item() < 0.15
    assert err.max().item() > 1e-4  # bf16 really ran


def test_model_specs():
    m, d = build_model("bicubic-x2")
    a = RNG.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    ref = upscale(a, model=(m, d))
    assert np.array_equal(upscale(a, model=m), ref)
    assert np.array_equal(upscale(a, model="bicubic-x2"), ref)

    class Foreign(nn.Module):  # not an srlab model: scale and channels are inferred
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)

        def forward(self, x):
            return nn.functional.interpolate(self.conv(x), scale_factor=3, mode="nearest")

    up = Upscaler(Foreign())
    assert up.scale == 3 and up(a).shape == (15, 18, 3)
    with pytest.raises(TypeError, match="model must be"):
        Upscaler(123)


def test_callers_module_is_not_converted():
    m, d = _srcnn()
    w = m.conv1.weight.clone()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Upscaler((m, d), precision="bf16", device="cpu")
    assert m.conv1.weight.dtype == torch.float32 and torch.equal(m.conv1.weight, w)


def test_fused_rdb_upscaler_matches_plain():
    import numpy as np

    from srlab.inference import Upscaler
    from srlab.models.registry import build_model

    m, d = build_model("rrdbnet", scale=2, num_block=1, num_feat=8, num_grow_ch=4)
    img = (np.random.default_rng(1).random((20, 24, 3)) * 255).astype(np.uint8)
    plain = Upscaler((m, d), device="cpu", fuse=False, backend="torch")
    fused = Upscaler((m, d), device="cpu", fuse=True, backend="torch")
    assert fused.engine.fused and not plain.engine.fused and "fused-RDB" in fused.describe()
    # the caller's module is untouched; the Upscaler's copy has its blocks switched
    assert not m.body[0].rdb1.fused and fused.engine.module.body[0].rdb1.fused
    # a module whose blocks are already switched on runs plain when asked (fuse=False)
    from srlab.models.rrdbnet import set_fused_blocks

    set_fused_blocks(m, True)
    plain2 = Upscaler((m, d), device="cpu", fuse=False, backend="torch")
    assert m.body[0].rdb1.fused and not plain2.engine.module.body[0].rdb1.fused
    set_fused_blocks(m, False)
    a, b = plain(img), fused(img)
    assert a.shape == b.shape == (40, 48, 3)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_auto_backend_picks_onnxruntime_for_rrdbnet_on_cpu(tmp_path, monkeypatch):
    import numpy as np

    pytest.importorskip("onnxruntime")
    from srlab.inference import Upscaler
    from srlab.models.registry import build_model

    monkeypatch.setenv("SRLAB_CACHE", str(tmp_path))
    # ONNX Runtime's part of the rule (OpenVINO's: tests/test_openvino.py)
    monkeypatch.setattr("srlab.inference.openvino_backend.openvino_available", lambda: False)
    m, d = build_model("rrdbnet", scale=2, num_block=1, num_feat=8, num_grow_ch=4)
    auto = Upscaler((m, d), device="cpu")
    assert auto.backend == "onnxruntime" and list(tmp_path.glob("onnx/*.onnx"))
    torch_up = Upscaler((m, d), device="cpu", backend="torch")
    s, sd = build_model("srcnn-955-x2")
    assert Upscaler((s, sd), device="cpu").backend == "onnxruntime"
    bic, bd = build_model("bicubic", scale=2)
    assert Upscaler((bic, bd), device="cpu").backend == "torch"  # no convolutions: nothing to gain
    assert Upscaler((s, sd), device="cpu", backend="torch").engine.channels_last  # NHWC on the CPU too
    plain = Upscaler((m, d), device="cpu", backend="torch", channels_last=False)  # each fast path switchable
    assert not plain.engine.channels_last and "channels_last" not in plain.describe()
    assert Upscaler((m, d), device="cpu", precision="bf16").backend == "torch"
    img = (np.random.default_rng(2).random((24, 20, 3)) * 255).astype(np.uint8)
    assert np.abs(auto(img).astype(int) - torch_up(img).astype(int)).max() <= 1


def test_compile_modes_reach_torch_compile_and_bad_ones_are_refused(monkeypatch, tmp_path):
    import numpy as np

    from srlab.errors import ConfigError
    from srlab.inference import Upscaler
    from srlab.models.registry import build_model

    seen = []
    env_at_call = []

    def fake_compile(mod, mode=None, **kw):  # recorded, not compiled: fast on a CPU
        seen.append(mode)

        def compiled(*a, **k):  # what PyTorch would see when it compiles: the first call
            env_at_call.append(os.environ.get("TORCHINDUCTOR_CACHE_DIR"))
            return mod(*a, **k)

        return compiled

    monkeypatch.setattr(torch, "compile", fake_compile)
    monkeypatch.setenv("SRLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)  # restored after the test
    m, d = build_model("rrdbnet", scale=2, num_block=1, num_feat=8, num_grow_ch=4)
    up = Upscaler((m, d), device="cpu", compile="max-autotune")
    # compiled graphs are cached under srlab's cache folder (persists across processes and reboots), set
    # only while a compiled call runs: the process environment is left as the user had it
    assert (tmp_path / "cache" / "inductor").is_dir() and "TORCHINDUCTOR_CACHE_DIR" not in os.environ
    up(np.zeros((6, 5, 3), np.uint8))
    assert env_at_call == [str(tmp_path / "cache" / "inductor")]
    assert "TORCHINDUCTOR_CACHE_DIR" not in os.environ
    # a folder the user chose is theirs: left as set, and used
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    Upscaler((m, d), device="cpu", compile=True)(np.zeros((6, 5, 3), np.uint8))
    assert env_at_call[-1] == str(tmp_path / "mine") == os.environ["TORCHINDUCTOR_CACHE_DIR"]
    assert seen[-1] is None  # torch's default mode
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR")
    # compile asks for PyTorch even where ONNX Runtime would be the automatic CPU choice
    assert up.backend == "torch" and seen[0] == "max-autotune" and "compiled(max-autotune)" in up.describe()
    with pytest.raises(ConfigError, match="compile mode"):
        Upscaler((m, d), device="cpu", compile="fastest")
    with pytest.raises(ConfigError, match="torch backend"):
        Upscaler((m, d), device="cpu", compile=True, backend="onnxruntime")
    # and from the command line, with the dense-block switch
    from PIL import Image

    from srlab.cli import main
    from srlab.weights.io import save_model

    w = save_model(tmp_path / "tiny.safetensors", m)
    Image.fromarray((np.random.default_rng(0).random((12, 10, 3)) * 255).astype(np.uint8)).save(
        tmp_path / "a.png"
    )
    rc = main(["upscale", str(tmp_path / "a.png"), "-o", str(tmp_path / "o.png"), "-m", str(w),
               "--compile-mode", "reduce-overhead", "--fuse", "on", "--channels-last", "off", "-q"])  # fmt: skip
    assert rc == 0 and seen[-1] == "reduce-overhead" and Image.open(tmp_path / "o.png").size == (20, 24)


def test_read_only_arrays_upscale_without_warnings():
    """np.asarray(PIL image) is read-only: no PyTorch warning, and the caller's array is untouched."""
    import numpy as np

    m, d = build_model("bicubic-x2")
    img = np.asarray(PILImage.fromarray((np.random.default_rng(5).random((9, 7, 3)) * 255).astype(np.uint8)))
    assert not img.flags.writeable
    before = img.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = Upscaler((m, d), device="cpu")(img)
    assert out.shape == (18, 14, 3) and np.array_equal(img, before)
    # a read-only float gray image: the tensor must not alias it (torch would let us write through it)
    grey = np.full((5, 4), 0.5, dtype=np.float32)
    grey.flags.writeable = False
    t = to_tensor(grey)
    t.fill_(0.0)
    assert float(grey.min()) == 0.5


def test_a_compile_failure_falls_back_to_eager_with_one_warning(monkeypatch):
    """e.g. a laptop without a C++ compiler: torch.compile fails on the first call, not at wrap time."""
    import numpy as np

    def broken_compile(mod, mode=None, **kw):
        def run(*a, **k):
            raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found\nmore details")

        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    m, d = build_model("srvgg-animevideov3-x4", num_conv=2, num_feat=8)
    img = (np.random.default_rng(3).random((10, 12, 3)) * 255).astype(np.uint8)
    up = Upscaler((m, d), device="cpu", compile=True, backend="torch")
    with pytest.warns(UserWarning, match="torch.compile failed .*No working C\\+\\+ compiler") as rec:
        out = up(img)
    assert len([w for w in rec if "torch.compile failed" in str(w.message)]) == 1
    assert "compiled" not in up.describe()
    ref = Upscaler((m, d), device="cpu", backend="torch")(img)
    assert np.array_equal(out, ref)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        up(img)  # no second warning, no second failure


def test_upscale_file_writes_and_never_replaces_its_input(tmp_path):
    from srlab.imaging.io import ImageError, read_image, write_image

    m, d = build_model("bicubic-x2")
    up = Upscaler((m, d), device="cpu")
    src = write_image(tmp_path / "a.png", RNG.integers(0, 256, (6, 5, 3), dtype=np.uint8))
    res = up.upscale_file(src, tmp_path / "b.png")
    assert (
        res.path == tmp_path / "b.png"
        and read_image(res.path).pixels.shape == (12, 10, 3) == res.pixels.shape
    )
    with pytest.raises(ImageError, match="already exists"):
        up.upscale_file(src, tmp_path / "b.png")
    with pytest.raises(ImageError, match="input file"):
        up.upscale_file(src, src, overwrite=True)
    # the output path may be chosen from the decoded image, before any upscaling
    seen = []
    res = up.upscale_file(
        src, lambda img: seen.append(img.width) or tmp_path / f"w{img.width}.tif", outscale=3
    )
    assert (
        seen == [5] and res.path == tmp_path / "w5.tif" and read_image(res.path).pixels.shape == (18, 15, 3)
    )


# -------------------------------------------------------------------------------------- long, huge and odd inputs


def test_long_thin_images_are_tiled_along_the_long_side():
    from srlab.inference.tiling import MAX_AUTO_SIDE

    m, d = _srcnn()
    up = Upscaler((m, d), device="cpu")
    for h, w in ((3, 20000), (20000, 3), (5, 3 * MAX_AUTO_SIDE)):
        plan = up.plan(h, w)
        long_tiles, short_tiles = (plan.cols, plan.rows) if w > h else (plan.rows, plan.cols)
        assert len(short_tiles) == 1 and len(long_tiles) >= max(h, w) // MAX_AUTO_SIDE
        assert max(plan.win_h, plan.win_w) <= MAX_AUTO_SIDE + 2 * plan.overlap + 8
    assert up.plan(300, 400).n_tiles == 1  # small images stay whole
    x = torch.rand(3, 3, 2 * MAX_AUTO_SIDE + 100)  # and the tiled long image equals the untiled one
    whole = Upscaler((m, d), device="cpu", tile=0, backend="torch").upscale_tensor(x)
    tiled = Upscaler((m, d), device="cpu", backend="torch").upscale_tensor(x)
    assert (tiled - whole).abs().max() < 1e-5


@pytest.mark.parametrize("bits", [8, 16])
def test_streamed_result_equals_whole_tensor_result(bits):
    """Tiled images are quantised row block by row block (the float result is never whole): the same
    pixels as the float result quantised at once, also for a size-multiple model and odd sizes."""
    dtype = np.uint8 if bits == 8 else np.uint16
    a = RNG.integers(0, 2**bits, (37, 29, 3), dtype=dtype)
    for model in (_srcnn(), _tiny_rrdb(scale=2)):
        up = Upscaler(model, device="cpu", tile=12, tile_overlap=6, backend="torch")
        assert up.plan(37, 29).n_tiles > 4
        streamed = up.upscale_image(Image(pixels=a, bit_depth=bits)).pixels
        whole = from_tensor(up.upscale_tensor(to_tensor(a)), bit_depth=bits)
        assert streamed.dtype == dtype and streamed.shape == (74, 58, 3)
        assert np.array_equal(streamed, whole)


@pytest.mark.parametrize(
    "bad,found",
    [(200.0, "..200,"), (-0.5, "range -0.5.."), (np.nan, "non-finite"), (np.inf, "non-finite")],
)
def test_float_arrays_outside_unit_range_or_not_finite_are_refused(bad, found):
    from srlab.errors import ImageError

    model = build_model("bicubic-x2")
    a = np.linspace(0, 0.9, 5 * 6 * 3, dtype=np.float32).reshape(5, 6, 3)
    a[2, 3, 1] = bad
    for call in (lambda: upscale(a, model=model), lambda: Upscaler(model)(a[..., 1:2])):
        with pytest.raises(ImageError) as ei:
            call()
        msg = str(ei.value)
        assert found in msg and "\n" not in msg and ("[0, 1]" in msg or "NaN" in msg)
    rgba = np.concatenate([np.full_like(a, 0.5), np.full((5, 6, 1), 7.0, np.float32)], axis=2)
    with pytest.raises(ImageError, match=r"0\.5\.\.7"):  # the alpha plane is checked too
        upscale(rgba, model=model)
    ok = np.linspace(0, 1, 5 * 6 * 3, dtype=np.float32).reshape(5, 6, 3)
    ok[0, 0, 0], ok[0, 0, 1] = 1.0 + 1e-4, -1e-4  # rounding slack in the caller's arithmetic is fine
    assert upscale(ok, model=model).shape == (10, 12, 3)


def test_output_memory_is_checked_before_any_work():
    from srlab.errors import ImageError

    m, d = build_model("bicubic-x2")
    rec = Recorder(m)
    up = Upscaler((rec, d), device="cpu", max_output_bytes=2 * 10**9)
    a = RNG.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    # 32000 x 32000 x 3: the model's float32 output, the float32 resized copy, the 8-bit result, Pillow's copy
    need = up.output_bytes(32, 32, 3, 1000.0)
    assert need == 4 * 3 * 64 * 64 + (4 * 3 + 3 + 4) * 32000 * 32000
    with pytest.raises(ImageError, match=r"32x32 image upscaled to 32000x32000 needs about 19\.5 GB") as ei:
        up(a, outscale=1000)
    assert "2.0 GB available" in str(ei.value) and "--outscale" in str(ei.value)
    assert rec.shapes == []  # refused before the model ran
    assert up(a, outscale=3).shape == (96, 96, 3)  # a reasonable size still runs
    # a tiled image is quantised as its tiles finish: its float output is not counted
    big = Upscaler((rec, d), device="cpu", tile=64)
    assert big.output_bytes(3000, 4000, 3) == (4 * 3 + 3 + 4) * 6000 * 8000
    assert big.output_bytes(3000, 4000, 3, streamed=3) == (3 + 4) * 6000 * 8000
