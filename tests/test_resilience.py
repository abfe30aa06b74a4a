"""Device faults while tiling, on the CPU: a faked out-of-memory error above a tile size, and models that
overflow in fp16 (for real) or saturate in bf16 (on purpose), against the fp32 result."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from srlab.imaging.io import Image
from srlab.inference import Upscaler
from srlab.inference.resilience import MIN_TILE, SATURATED
from srlab.models.registry import build_model


def _srcnn():
    torch.manual_seed(0)
    m, d = build_model("srcnn", scale=2, n1=8, n2=4)
    for conv in (m.conv1, m.conv2, m.conv3):
        nn.init.normal_(conv.weight, std=0.2)
    return m.eval(), d


class OOMAbove(nn.Module):
    """Raises CUDA's out-of-memory error for windows with a side above ``limit``, as a small GPU would."""

    def __init__(self, inner, limit):
        super().__init__()
        self.inner, self.limit = inner, limit
        self.raised, self.sides = 0, []

    def forward(self, x):
        if max(x.shape[-2:]) > self.limit:
            self.raised += 1
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (faked)")
        self.sides.append(max(x.shape[-2:]))
        return self.inner(x)


def _notes(caught, needle):
    return [str(w.message) for w in caught if needle in str(w.message)]


@pytest.mark.parametrize("tile,batch", [(None, None), (40, 4)])
def test_out_of_memory_retries_with_half_tiles_and_matches(tile, batch):
    m, d = _srcnn()
    x = torch.rand(3, 100, 90)
    ref = Upscaler((m, d), device="cpu", backend="torch", tile=tile, batch_size=batch).upscale_tensor(x)
    wrapped = OOMAbove(m, limit=60)
    up = Upscaler((wrapped, d), device="cpu", backend="torch", tile=tile, batch_size=batch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = up.upscale_tensor(x)
    assert wrapped.raised >= 1 and max(wrapped.sides) <= 60
    # the context (>= 2 R) covers SRCNN's receptive radius: the blend of smaller tiles is exact
    assert (out - ref).abs().max().item() < 1e-5
    said = _notes(caught, "out of device memory")
    assert len(said) == 1 and f"{up.faults.tile_cap}-pixel tiles" in said[0]
    # the size that fit is remembered: the next image is planned with it and fails no more
    wrapped.raised = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = up.upscale_tensor(x)
    assert wrapped.raised == 0 and not _notes(caught, "out of device memory")
    assert torch.equal(again, out) or (again - ref).abs().max().item() < 1e-5
    assert up.plan(100, 90).n_tiles > 1


def test_out_of_memory_below_the_floor_goes_up_and_other_errors_are_not_retried():
    m, d = _srcnn()
    wrapped = OOMAbove(m, limit=MIN_TILE // 2)
    with pytest.raises(torch.OutOfMemoryError), pytest.warns(UserWarning, match="out of device memory"):
        Upscaler((wrapped, d), device="cpu", backend="torch").upscale_tensor(torch.rand(3, 80, 80))
    assert wrapped.sides == []  # nothing ran: every window, down to the floor, was too large

    class Broken(nn.Module):
        calls = 0

        def forward(self, x):
            Broken.calls += 1
            raise RuntimeError("cuDNN error: CUDNN_STATUS_INTERNAL_ERROR")

    with pytest.raises(RuntimeError, match="CUDNN_STATUS"):
        Upscaler((Broken(), d), device="cpu", backend="torch").upscale_tensor(torch.rand(3, 80, 80))
    assert Broken.calls == 1


class Overflow(nn.Module):
    """x * 64^3 then / 64^3 (powers of two: exact in fp16), x2 nearest. Fine in fp32; in fp16 (max 65504)
    every value above 0.25 overflows to inf, which is Real-ESRGAN's "black image"."""

    def __init__(self):
        super().__init__()
        eye = torch.eye(3)[:, :, None, None]
        self.up = nn.ModuleList(nn.Conv2d(3, 3, 1, bias=False) for _ in range(3))
        self.down = nn.ModuleList(nn.Conv2d(3, 3, 1, bias=False) for _ in range(3))
        with torch.no_grad():
            for c in self.up:
                c.weight.copy_(eye * 64)
            for c in self.down:
                c.weight.copy_(eye / 64)

    def forward(self, x):
        for c in [*self.up, *self.down]:
            x = c(x)
        return F.interpolate(x, scale_factor=2, mode="nearest")


def _half_bright(h=64, w=64):
    torch.manual_seed(1)
    x = torch.rand(3, h, w) * 0.2  # dark: no overflow
    x[:, :, w // 2 :] += 0.6  # bright right half: overflows in fp16
    return x


def test_fp16_overflow_is_redone_in_fp32_per_tile():
    m = Overflow().eval()
    x = _half_bright()
    kw = dict(device="cpu", backend="torch", tile=16, tile_overlap=2)  # a pointwise model: 2 px is plenty
    ref = Upscaler(m, precision="fp32", **kw).upscale_tensor(x)
    up = Upscaler(m, precision="fp16", **kw)
    assert up.precision == "fp16"
    with torch.autocast("cpu", dtype=torch.float16), torch.inference_mode():  # the failure it guards against
        assert not torch.isfinite(m(x[None])).all()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = up.upscale_tensor(x)
    assert torch.isfinite(out).all()
    # fp16 rounds the dark tiles' inputs (11-bit mantissa); the redone bright tiles are fp32 exactly
    assert (out - ref).abs().max().item() < 1e-3
    assert torch.allclose(out[:, :, 96:], ref[:, :, 96:], atol=1e-6, rtol=0)
    said = _notes(caught, "overflowed in fp16")
    n = up.plan(64, 64).n_tiles
    assert len(said) == 1
    redone = int(said[0].split()[0])
    assert 0 < redone < n and f"of {n} tile(s)" in said[0]


def test_untiled_fp16_overflow_and_uint8_streaming_path():
    m = Overflow().eval()
    x = _half_bright(24, 20)
    ref = Upscaler(m, device="cpu", backend="torch", precision="fp32", tile=0).upscale_tensor(x)
    with pytest.warns(UserWarning, match="1 of 1 tile"):
        out = Upscaler(m, device="cpu", backend="torch", precision="fp16", tile=0).upscale_tensor(x)
    assert torch.allclose(out, ref, atol=1e-3)
    # a tiled uint8 photo goes through the streamed path: the same check applies there
    img = (x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    kw = dict(device="cpu", backend="torch", tile=8, tile_overlap=2)
    up16 = Upscaler(m, precision="fp16", **kw)
    assert up16._stream_plan(Image(pixels=img)) is not None
    with pytest.warns(UserWarning, match="overflowed in fp16"):
        got = up16(img)
    assert np.abs(got.astype(int) - Upscaler(m, precision="fp32", **kw)(img)).max() <= 1


class SaturatesInLowPrecision(nn.Module):
    """A 3x3 conv that, when autocast runs it in bf16/fp16, returns 1e4 for bright samples: stands in for a
    network whose activations saturate (bf16 has fp32's range, so a real overflow needs a contrived net)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        self.conv = nn.Conv2d(3, 12, 3, padding=1)

    def forward(self, x):
        y = F.pixel_shuffle(self.conv(x), 2)
        if y.dtype != torch.float32:
            bright = x.flatten(1).amax(1) > 0.5
            y = torch.where(bright[:, None, None, None], torch.full_like(y, 1e4), y)
        return y.float()


def test_bf16_saturated_tiles_are_redone_in_fp32():
    m = SaturatesInLowPrecision().eval()
    x = _half_bright()
    kw = dict(device="cpu", backend="torch", tile=16, tile_overlap=2)
    ref = Upscaler(m, precision="fp32", **kw).upscale_tensor(x)
    up = Upscaler(m, precision="bf16", **kw)
    assert up.precision == "bf16" and 1e4 > SATURATED
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = up.upscale_tensor(x)
    assert out.abs().max().item() < 10
    assert torch.allclose(out[:, :, 96:], ref[:, :, 96:], atol=1e-6, rtol=0)  # redone: fp32 exactly
    assert (out - ref).abs().max().item() < 0.1  # the rest: bf16's rounding
    assert _notes(caught, "overflowed in bf16")


def _bf16_weight_settings():
    """Engine settings that convert the weights, as on a GPU, here to bf16 on the CPU (which runs bf16
    convolutions): the full-precision redo must come from the weights as loaded, not from the rounded ones."""
    from dataclasses import dataclass

    from srlab.inference.engine import EngineSettings

    @dataclass(frozen=True)
    class Converted(EngineSettings):
        model_dtype = property(lambda self: torch.bfloat16)
        autocast_dtype = property(lambda self: None)

    return Converted("torch", torch.device("cpu"), "bf16", False, False, None, False)


@pytest.mark.parametrize("caller_owned", [True, False])
def test_full_precision_redo_uses_the_weights_as_loaded(caller_owned):
    from srlab.inference.engine import Engine

    m, d = _srcnn()
    original = {k: v.clone() for k, v in m.state_dict().items()}
    x = torch.rand(2, 3, 20, 24)
    with torch.inference_mode():
        ref = m(x)
    engine = Engine(m, d, _bf16_weight_settings(), caller_owned=caller_owned)
    assert next(engine.module.parameters()).dtype == torch.bfloat16 and engine.reduced_precision
    with torch.inference_mode():
        low = engine.run(x)
        full = engine.run(x, fp32=True)
    assert torch.equal(full, ref)  # bit for bit: fp32 arithmetic on the original fp32 weights
    assert (low - ref).abs().max().item() > 1e-4  # the bf16 weights and arithmetic do differ
    if caller_owned:  # the caller's module is never converted
        assert all(torch.equal(v, original[k]) for k, v in m.state_dict().items())
