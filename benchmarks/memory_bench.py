"""Peak RSS of ``srlab upscale`` on long, thin and large images, each run in a fresh interpreter.

    python benchmarks/memory_bench.py [--quick] [--out DIR]

Cases: a 3 x 20000 and a 20000 x 3 image with ``bicubic-x2`` and with a random SRCNN x2 (saved with
:func:`srlab.weights.io.save_model`), and a 4000 x 3000 photo-like JPEG with that SRCNN; default options
throughout, and the same photo in grey (an RGB model runs it as R = G = B). ``--quick`` uses 3 x 6000 and a
1000 x 750 photo instead. Each case runs
``python -m srlab upscale IMG -o OUT -m MODEL -q`` under a small driver that reports ``ru_maxrss`` (the
same figure ``/usr/bin/time -v`` prints as "Maximum resident set size"). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from srlab.report.markdown import md_table

_DRIVER = (
    "import json, sys\n"
    "from srlab.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    # VmHWM (this address space) rather than ru_maxrss, which Linux carries over from the forking parent
    "hwm = next(int(x.split()[1]) for x in open('/proc/self/status') if x.startswith('VmHWM'))\n"
    "print(json.dumps({'rc': rc, 'peak_mb': hwm / 1024}))\n"
)


def _photo(h: int, w: int) -> np.ndarray:
    """Smooth gradients plus noise: compresses like a photo, not like white noise."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // w, y * 255 // h, (x + y) % 256], axis=-1)
    return np.clip(img + rng.integers(-10, 10, img.shape), 0, 255).astype(np.uint8)


def _run(img: Path, model: str, work: Path) -> dict:
    out = work / f"out-{time.monotonic_ns()}"
    env = {**os.environ, "SRLAB_CACHE": str(work / "cache")}
    t0 = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-c", _DRIVER, "upscale", str(img), "-o", str(out), "-m", model, "-q"],
        capture_output=True,
        text=True,
        env=env,
    )
    res = json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else {"rc": r.returncode}
    res["seconds"] = time.perf_counter() - t0
    if r.returncode != 0:
        res["error"] = r.stderr.strip().splitlines()[-1:] or ["?"]
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller images (3 x 6000, 1000 x 750)")
    ap.add_argument("--out", default=None, help="work folder (default: a temporary one)")
    args = ap.parse_args()
    import torch

    from srlab.models.registry import build_model
    from srlab.weights.io import save_model

    work = Path(args.out or tempfile.mkdtemp(prefix="srlab-membench-"))
    work.mkdir(parents=True, exist_ok=True)
    long_side = 6000 if args.quick else 20000
    ph, pw = (750, 1000) if args.quick else (3000, 4000)
    rng = np.random.default_rng(1)
    images = {
        f"3x{long_side}": work / "wide.png",
        f"{long_side}x3": work / "tall.png",
        f"{pw}x{ph} photo": work / "photo.jpg",
        f"{pw}x{ph} grey photo": work / "grey.jpg",
    }
    Image.fromarray(rng.integers(0, 256, (3, long_side, 3), dtype=np.uint8)).save(images[f"3x{long_side}"])
    Image.fromarray(rng.integers(0, 256, (long_side, 3, 3), dtype=np.uint8)).save(images[f"{long_side}x3"])
    Image.fromarray(_photo(ph, pw)).save(images[f"{pw}x{ph} photo"], quality=90)
    Image.fromarray(_photo(ph, pw)).convert("L").save(images[f"{pw}x{ph} grey photo"], quality=90)
    torch.manual_seed(0)
    srcnn = str(save_model(work / "srcnn.safetensors", build_model("srcnn", scale=2)[0]))
    _run(images[f"3x{long_side}"], srcnn, work)  # export the ONNX cache once, outside the measurements
    cases = [
        (f"3x{long_side}", "bicubic-x2"),
        (f"3x{long_side}", "srcnn"),
        (f"{long_side}x3", "bicubic-x2"),
        (f"{long_side}x3", "srcnn"),
        (f"{pw}x{ph} photo", "srcnn"),
        (f"{pw}x{ph} grey photo", "srcnn"),  # an RGB model on a grey image: R = G = B, streamed like RGB
    ]
    rows = []
    for image, model in cases:
        res = _run(images[image], srcnn if model == "srcnn" else model, work)
        peak = f"{res['peak_mb']:.0f}" if "peak_mb" in res else f"failed: {res.get('error')}"
        rows.append([image, model, peak, f"{res['seconds']:.1f}"])
        print(f"{image:>16} {model:>10}: {peak} MB, {res['seconds']:.1f} s", file=sys.stderr)
    print("\n".join(md_table(["image", "model", "peak RSS (MB)", "wall (s)"], rows)))


if __name__ == "__main__":
    main()
