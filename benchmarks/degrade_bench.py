"""LR synthesis cost per training batch: Real-ESRGAN's second-order degradation vs the fixed bicubic LR.

Both run in one process on the same random HR batch on the chosen device: ``reference`` = srlab's
``synthesize_lr`` (MATLAB bicubic, the batch-wise on-device path), ``realesrgan`` =
``srlab.data.degradations.pipeline.degrade_batch`` at the published defaults (unsharp-masked target, two
orders of blur/resize/noise/JPEG, final sinc), new sample keys every step. Median of ``--repeats``, after a
warm-up; prints ms per batch and the ratio to the reference; ``--out FILE`` writes JSON.

    python benchmarks/degrade_bench.py                          # CPU, batch 12 of 64x64 HR crops, x4
    python benchmarks/degrade_bench.py --device cuda --batch 12 --hr 256
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv: list[str] | None = None) -> int:
    from _common import write_json
    from srlab.data.datasets import synthesize_lr
    from srlab.data.degradations.options import RealESRGANOptions
    from srlab.data.degradations.pipeline import degrade_batch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=12)
    ap.add_argument("--hr", type=int, default=64)
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out")
    a = ap.parse_args(argv)
    dev = torch.device(a.device)
    hr = torch.rand(a.batch, 3, a.hr, a.hr, generator=torch.Generator().manual_seed(0)).to(dev)
    opts = RealESRGANOptions()
    step = [0]

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    def realesrgan():
        keys = list(range(step[0] * a.batch, (step[0] + 1) * a.batch))
        step[0] += 1
        degrade_batch(hr, a.scale, opts, 0, keys)

    cases = {"reference": lambda: synthesize_lr(hr, a.scale, "bicubic"), "realesrgan": realesrgan}
    times: dict[str, list[float]] = {k: [] for k in cases}
    for fn in cases.values():
        fn()
    for _ in range(a.repeats):  # interleaved, so load on a shared machine hits both alike
        for name, fn in cases.items():
            sync()
            t = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    print(f"device {dev}, batch {a.batch} x {a.hr}x{a.hr} HR, x{a.scale}, threads {torch.get_num_threads()}")
    for name in cases:
        print(
            f"  {name:<11} {med[name]:9.1f} ms/batch   x{med[name] / med['reference']:.1f} of the reference"
        )
    write_json(a.out, {"settings": vars(a), "threads": torch.get_num_threads(), "ms_per_batch": med})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
