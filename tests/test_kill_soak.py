"""kill -9 soak of `srlab eval` and of a folder `srlab upscale`: killed with SIGKILL at random moments, they
leave no half-written file under a real name (every visible output reads back whole), and a rerun completes
with the results of an uninterrupted run and no hidden temporary file left behind."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srlab.eval.results import read_results

pytestmark = pytest.mark.slow

KILLS = 4


def _srlab(*argv) -> list[str]:
    return [
        sys.executable,
        "-c",
        "import sys; from srlab.cli import main; sys.exit(main(sys.argv[1:]))",
        *argv,
    ]


def _env(tmp_path: Path) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "SRLAB_CACHE": str(tmp_path / "cache")}


def _killed(cmd, env, delay: float) -> int | None:
    """Run ``cmd``, SIGKILL it after ``delay`` seconds unless it ended; its exit status (None: killed)."""
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return p.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGKILL)
        p.wait()
        return None


def _killed_mid_work(cmd, env, folder: Path, rng: random.Random) -> int | None:
    """Run ``cmd`` and SIGKILL it at a random moment after it has written a new visible output into
    ``folder`` (so the kill lands inside the work however fast the machine is); its exit status, None when
    killed."""
    before = len(_visible(folder))
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while p.poll() is None and len(_visible(folder)) <= before:
        time.sleep(0.01)
    if p.poll() is not None:
        return p.returncode
    time.sleep(rng.uniform(0.0, 0.15))
    if p.poll() is not None:
        return p.returncode
    p.send_signal(signal.SIGKILL)
    p.wait()
    return None


def _visible(folder: Path) -> list[Path]:
    return [q for q in folder.rglob("*.png") if not q.name.startswith(".")] if folder.is_dir() else []


def _hidden(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if p.is_file()]


def _visible_images_read_back(folder: Path) -> None:
    for p in folder.rglob("*.png"):
        if not p.name.startswith("."):
            with Image.open(p) as im:
                im.load()  # a half-written PNG raises here


def test_eval_killed_at_random_leaves_no_half_results_and_a_rerun_completes(data_root, tmp_path):
    env = _env(tmp_path)
    args = ["eval", "--models", "bicubic,bilinear", "--datasets", "Set5", "--scale", "2,3", "--no-progress"]
    ref = tmp_path / "ref"
    subprocess.run(
        _srlab(*args, "--save-images", "--out", str(ref)), env=env, check=True, capture_output=True
    )
    out = tmp_path / "o"
    rng = random.Random(0)
    ends = []
    for _ in range(KILLS):
        ends.append(
            _killed(_srlab(*args, "--save-images", "--out", str(out), "--force"), env, rng.uniform(1.0, 8.0))
        )
        if (out / "results.json").exists():
            read_results(out / "results.json")  # whole, or not there
        _visible_images_read_back(out)
    r = subprocess.run(
        _srlab(*args, "--save-images", "--out", str(out), "--force"), env=env, capture_output=True
    )
    assert r.returncode == 0, r.stderr[-2000:]
    strip = lambda rows: [{k: v for k, v in x.items() if k != "runtime_s"} for x in rows]  # noqa: E731
    assert strip(read_results(out / "results.json")["rows"]) == strip(
        read_results(ref / "results.json")["rows"]
    )
    assert _hidden(out) == []


def test_folder_upscale_killed_at_random_leaves_no_half_outputs_and_a_rerun_completes(tmp_path):
    env = _env(tmp_path)
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):
        Image.fromarray(rng.integers(0, 256, (320, 400, 3), dtype=np.uint8)).save(src / f"p{i:02d}.png")
    ref = tmp_path / "ref"
    cmd = ["upscale", str(src), "-m", "bicubic-x2", "-q"]
    subprocess.run(_srlab(*cmd, "-o", str(ref)), env=env, check=True, capture_output=True)
    out = tmp_path / "out"
    delays = random.Random(1)
    ends = []
    for _ in range(KILLS):
        ends.append(_killed_mid_work(_srlab(*cmd, "-o", str(out), "--skip-existing"), env, out, delays))
        _visible_images_read_back(out)
    assert None in ends
    # a killed writer's temporary file, as a kill inside the write leaves it (the timing above may miss it)
    out.mkdir(exist_ok=True)
    (out / ".p03_x2.png.a1b2c3d4.part").write_bytes(b"\x89PNG half")
    (out / "p03_x2.png").unlink(missing_ok=True)
    r = subprocess.run(
        _srlab(*cmd, "-o", str(out), "--skip-existing"), env=env, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in ref.iterdir())
    for p in ref.iterdir():
        assert np.array_equal(np.asarray(Image.open(p)), np.asarray(Image.open(out / p.name))), p.name
    assert _hidden(out) == []
    shutil.rmtree(ref)
