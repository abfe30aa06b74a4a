"""`srlab serve` killed with SIGKILL in the middle of a job: its workers die with it, nothing half-written
is left under a result name, and the next server runs the job again to the same file `srlab upscale`
writes."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

pytest.importorskip("starlette")

from srlab.cli import main  # noqa: E402
from srlab.serve.process import ServerProcess  # noqa: E402

ENV = {"OMP_NUM_THREADS": "1"}


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def _post_job(base: str, data: bytes, **fields) -> str:
    boundary = "srlabtestboundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
        "Content-Type: image/png\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    req = urllib.request.Request(
        f"{base}/api/jobs", data=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 202
        return json.loads(r.read())["id"]


def _dead(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return any(line.startswith("State:") and "Z" in line for line in f)  # a zombie no one reaped
    except FileNotFoundError:
        return True


@pytest.mark.slow  # two server starts and three model runs: about a minute on a busy 2-core machine
def test_kill_mid_job_then_restart(tmp_path):
    photo = tmp_path / "big.png"
    PILImage.fromarray(np.random.default_rng(9).integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(photo)
    data_dir = tmp_path / "data"
    fields = {"model": "srcnn-x2", "tile": "16"}  # many small tiles: seconds of work to be killed in
    srv = ServerProcess(data_dir, "--workers", "1", env=ENV).start()
    try:
        workers = _get(f"{srv.base}/api/health")["worker_pids"]
        assert len(workers) == 1
        job_id = _post_job(srv.base, photo.read_bytes(), **fields)
        deadline = time.monotonic() + 120
        while _get(f"{srv.base}/api/jobs/{job_id}")["status"] != "running":
            assert time.monotonic() < deadline, "job never started"
            time.sleep(0.05)
        time.sleep(0.5)  # into the tiles
    finally:
        srv.kill()
    deadline = time.monotonic() + 10
    while not all(_dead(p) for p in workers):
        assert time.monotonic() < deadline, "worker outlived its killed server"
        time.sleep(0.1)
    folder = data_dir / "jobs" / job_id
    with sqlite3.connect(data_dir / "jobs.sqlite3") as db:
        status, attempts = db.execute("SELECT status, attempts FROM jobs WHERE id = ?", (job_id,)).fetchone()
    assert (status, attempts) == ("running", 1)
    assert not (folder / "input_x2.png").exists()  # at most a temporary dot-file, never the result name

    with ServerProcess(data_dir, "--workers", "1", env=ENV) as srv2:
        deadline = time.monotonic() + 180
        while (job := _get(f"{srv2.base}/api/jobs/{job_id}"))["status"] not in ("done", "failed"):
            assert time.monotonic() < deadline, f"job not finished after the restart: {job}"
            time.sleep(0.2)
        assert job["status"] == "done", job
        assert job["attempts"] == 2 and "server stopped" in job["note"]
        with urllib.request.urlopen(f"{srv2.base}/api/jobs/{job_id}/result", timeout=30) as r:
            served = r.read()
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []
    out = tmp_path / "cli"
    assert main(["upscale", str(photo), "-o", str(out), "-m", "srcnn-x2", "--tile", "16", "-q"]) == 0
    assert served == (out / "big_x2.png").read_bytes()
    assert PILImage.open(io.BytesIO(served)).size == (512, 512)
    assert os.path.getsize(Path(folder / "input_x2.png")) == len(served)
