"""The recorded reduced-precision check behind ``--precision auto`` on the CPU.

For every model available offline (srlab's trained SRCNNs, the Real-ESRGAN ncnn models of the ``models``
extra), the 8-bit PSNR of OpenVINO bf16 and int8 outputs against OpenVINO fp32 (itself equal to PyTorch fp32
within float rounding, tests/test_openvino.py) on Set14 (HR downscaled by the model's scale with MATLAB
bicubic) and on a real photo used as it is (a centre crop of a B100 photo: real input, not a downscale).
``worst_db`` is the lowest of them; ``srlab.inference.cpu_choice`` allows a precision for those weights
when it is at least ``THRESHOLD_DB``. Writes src/srlab/inference/reduced_precision.json (``--out``).

    SRLAB_DATA_ROOT=/path/to/data python benchmarks/precision_check.py [--models a,b] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

import srlab
from srlab.export import weights_digest
from srlab.imaging import io as imio
from srlab.imaging.resize import imresize, quantize
from srlab.inference import cpu_choice
from srlab.inference.quality import quality_check

MODELS = [
    "srcnn-x2",
    "srcnn-x3",
    "srcnn-x4",
    "srcnn-study-x2-recipe",
    "srcnn-study-improved-x2",
    "realesr-animevideov3-x2",
    "realesr-animevideov3-x3",
    "realesr-animevideov3-x4",
    "realesrgan-x4plus-anime",
    "realesrgan-x4plus",
]


def lr_images(data: Path, scale: int, photo: str, crop: int) -> dict[str, np.ndarray]:
    """Set14 downscaled by ``scale`` (uint8, as read: gray stays gray) and a ``crop`` x ``crop`` centre crop of
    ``photo`` as it is."""
    out = {}
    for p in sorted((data / "Set14" / "HR").glob("*.png")):
        px = imio.read_image(p).pixels
        hr = torch.from_numpy(px.astype(np.float64)).permute(2, 0, 1) if px.ndim == 3 else None
        if hr is None:
            hr = torch.from_numpy(px.astype(np.float64))[None]
        h, w = (s - s % scale for s in hr.shape[-2:])
        lr = quantize(imresize(hr[:, :h, :w], 1 / scale)).clamp(0, 255).round().byte()
        arr = lr.permute(1, 2, 0).numpy()
        out[f"Set14/{p.stem}"] = arr[..., 0] if arr.shape[-1] == 1 else np.ascontiguousarray(arr)
    px = imio.read_image(data / photo).pixels
    y0, x0 = (px.shape[0] - crop) // 2, (px.shape[1] - crop) // 2
    out[f"photo/{Path(photo).stem}"] = np.ascontiguousarray(px[y0 : y0 + crop, x0 : x0 + crop])
    return out


def _cpu_name() -> str:
    """The CPU's model name and its reduced-precision flags (what the figures depend on)."""
    from srlab.runtime import CPU_BF16_FLAGS, CPU_INT8_FLAGS, cpu_flags

    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = sorted((cpu_flags() or frozenset()) & (CPU_BF16_FLAGS | CPU_INT8_FLAGS))
    return f"{name} ({', '.join(flags) or 'no bf16/int8 flags'})"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--data", default=os.environ.get("SRLAB_DATA_ROOT"), help="folder with Set14/ and BSD100/")
    p.add_argument(
        "--photo", default="BSD100/HR/img_001_SRF_2_HR.png", help="real photo (relative to --data)"
    )
    p.add_argument("--crop", type=int, default=96, help="side of the photo's centre crop (LR pixels)")
    p.add_argument("--out", default=str(cpu_choice.QUALITY_FILE))
    args = p.parse_args(argv)
    if not args.data:
        sys.exit("give --data or set SRLAB_DATA_ROOT (the folder holding Set14/ and BSD100/)")
    import openvino

    table = cpu_choice.quality_table() if Path(args.out) == cpu_choice.QUALITY_FILE else {"models": {}}
    table = {"models": dict(table.get("models", {}))}
    cache: dict[int, dict] = {}
    for name in [m for m in args.models.split(",") if m]:
        try:
            model, desc = srlab.load_model(name)
        except Exception as exc:  # noqa: BLE001 - a model not installed here is skipped, said so
            print(f"{name}: skipped ({exc})")
            continue
        s = int(desc.scale)
        if s not in cache:
            cache[s] = lr_images(Path(args.data), s, args.photo, args.crop)
        t0 = time.perf_counter()
        res = quality_check((model.eval(), desc), cache[s])
        rec = {"name": name, **{k: {"worst_db": round(v["worst_db"], 2)} for k, v in res.items()}}
        for k, v in res.items():
            rec[k]["per_image"] = {i: round(d, 2) for i, d in v["per_image"].items()}
        table["models"][weights_digest(model)] = rec
        worst = ", ".join(f"{k} {v['worst_db']:.2f} dB" for k, v in res.items())
        print(f"{name}: worst {worst} ({time.perf_counter() - t0:.0f} s)", flush=True)
    table.update(
        threshold_db=cpu_choice.THRESHOLD_DB,
        reference="OpenVINO fp32 output, 8-bit, RGB PSNR (gray replicated)",
        images=f"Set14 downscaled by the model's scale (MATLAB bicubic); {args.photo} centre {args.crop}px",
        cpu=_cpu_name(),
        openvino=openvino.get_version(),
        torch=torch.__version__,
        command="python benchmarks/precision_check.py",
    )
    from srlab.atomic import write_json

    write_json(args.out, table)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
