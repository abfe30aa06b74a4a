"""benchmarks/serve_load.py against a real `srlab serve` on loopback: 200 requests from 20 concurrent
clients, none failed, every uploaded job done with a correct result, in bounded time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("starlette")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "serve_load.py"


@pytest.mark.slow  # a server start and 20 jobs: tens of seconds on a busy 2-core machine
def test_load_nothing_lost(tmp_path):
    out = tmp_path / "load.json"
    args = ["--requests", "200", "--clients", "20", "--posts", "20", "--size", "48", "--json", str(out)]
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    res = json.loads(out.read_text())
    assert res["errors"] == 0 and res["lost"] == 0
    assert res["jobs_posted"] == res["jobs_done_with_correct_result"] == 20
    rows = {r["kind"]: r for r in res["rows"]}
    assert rows["all"]["n"] == 200 and rows["POST /api/jobs"]["n"] == 20
    assert rows["all"]["p50"] <= rows["all"]["p99"] <= rows["all"]["max"]
    assert res["peak_rss_mib_total"] > 0 and len(res["hwm_mib_per_process"]) >= 2  # server and a worker
    assert "p50" in proc.stdout and "lost" in proc.stdout
