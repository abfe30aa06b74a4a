"""Peak memory of resizing and upscaling long thin images, measured in a fresh subprocess.

The resize used to build a dense out x in matrix per axis, so memory grew with the square of an image's
long side (a 3 x 6000 image took over 1 GB to upscale x2); now it is linear in the image. Each check runs
in its own interpreter so that the peak (``VmHWM``) belongs to that run alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

SRC = Path(__file__).resolve().parents[1] / "src"

_DRIVER = """
import json, sys
def hwm():
    # VmHWM belongs to this process's own address space; ru_maxrss would start from the forking parent's
    # peak (Linux carries it over exec), i.e. from the size of the pytest process.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
kind, args = sys.argv[1], json.loads(sys.argv[2])
if kind == "resize":
    import torch
    from srlab.imaging.resize import imresize
    base = hwm()
    y = imresize(torch.rand(*args["shape"]), args["scale"])
    rc = 0
else:
    import torch  # noqa: F401 - counted in the baseline, as the CLI imports it
    from srlab.cli import main
    base = hwm()
    rc = main(args["argv"])
peak = hwm()
print(json.dumps({"rc": rc, "peak_mb": peak / 1024, "base_mb": base / 1024}))
"""


def _measure(kind: str, args: dict, tmp_path: Path) -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": str(SRC),
        "SRLAB_CACHE": str(tmp_path / "cache"),
        "OMP_NUM_THREADS": "1",
    }
    r = subprocess.run(
        [sys.executable, "-c", _DRIVER, kind, json.dumps(args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_resizing_a_long_row_takes_memory_linear_in_its_length(tmp_path):
    """3 x 6000 x2: the old dense 12000 x 6000 matrix alone was 290 MB (float32, after a float64 build of
    580 MB); the banded weights and the 0.4 MB result take a few MB."""
    res = _measure("resize", {"shape": [3, 3, 6000], "scale": 2}, tmp_path)
    assert res["peak_mb"] - res["base_mb"] < 60, res


@pytest.mark.slow
@pytest.mark.parametrize("model", ["bicubic-x2", "srcnn"])
def test_upscaling_a_long_thin_image_stays_small(tmp_path, model):
    """`srlab upscale` of a 3 x 6000 image with default options peaked at 1.09 GB (bicubic-x2) and 1.23 GB
    (SRCNN) before; importing torch and onnxruntime is about 0.35 GB of that."""
    src = tmp_path / "long.png"
    PILImage.fromarray(np.random.default_rng(0).integers(0, 256, (3, 6000, 3), dtype=np.uint8)).save(src)
    if model == "srcnn":
        import torch

        from srlab.models.registry import build_model
        from srlab.weights.io import save_model

        torch.manual_seed(0)
        net, _ = build_model("srcnn", scale=2)
        model = str(save_model(tmp_path / "srcnn.safetensors", net))
    out = tmp_path / "out"
    res = _measure("cli", {"argv": ["upscale", str(src), "-o", str(out), "-m", model, "-q"]}, tmp_path)
    assert res["rc"] == 0
    assert PILImage.open(out / "long_x2.png").size == (12000, 6)
    assert res["peak_mb"] < 600, res
