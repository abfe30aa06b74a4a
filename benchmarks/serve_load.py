"""Load on `srlab serve` over loopback: latency percentiles, peak memory, and that nothing is lost.

    python benchmarks/serve_load.py [--requests 200] [--clients 20] [--posts 20] [--model bicubic-x2]
                                    [--size 64] [--json OUT]

Starts `srlab serve` as a process on a free 127.0.0.1 port (one worker) and sends ``--requests`` requests
from ``--clients`` concurrent clients: ``--posts`` of them upload a ``--size``² PNG as a job, the others
are the page's reads (GET /api/models, /api/jobs, /api/jobs/{id}, /api/health). Then it waits for every
job, downloads each result and checks its size. The same clients first hit a plain reference in the same
run: Python's ``http.server`` answering a fixed JSON body, so the latency ratio compares machines.
Memory: the peak resident set of the server and its workers together (sampled every 50 ms), and each
process's own high-water mark. Exit status 1 when a request failed or a job was lost.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import http.server
import io
import json
import os
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_json  # noqa: E402
from srlab.serve.process import ServerProcess  # noqa: E402


def _multipart(data: bytes, fields: dict) -> tuple[bytes, str]:
    b = "srlabloadboundary"
    parts = [
        f'--{b}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{b}\r\nContent-Disposition: form-data; name="file"; filename="load.png"\r\n\r\n'.encode()
        + data
        + b"\r\n"
    )
    return b"".join(parts) + f"--{b}--\r\n".encode(), f"multipart/form-data; boundary={b}"


def _call(url: str, body: bytes | None = None, ctype: str | None = None) -> tuple[int, bytes, float]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": ctype} if ctype else {})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            data = r.read()
            return r.status, data, time.perf_counter() - t0
    except urllib.error.HTTPError as e:
        return e.code, e.read(), time.perf_counter() - t0
    except OSError as e:
        return 0, str(e).encode(), time.perf_counter() - t0


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))] * 1000 if xs else float("nan")


def _tree(pid: int) -> list[int]:
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def _status_kb(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class _Plain(http.server.BaseHTTPRequestHandler):
    body = json.dumps({"ok": True}).encode()

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


class _PlainServer(http.server.ThreadingHTTPServer):
    request_queue_size = 128  # uvicorn's backlog is larger still; the default 5 would time connections out


def plain_reference(n: int, clients: int) -> list[float]:
    srv = _PlainServer(("127.0.0.1", 0), _Plain)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/"
    try:
        with cf.ThreadPoolExecutor(clients) as ex:
            return [t for s, _, t in ex.map(lambda _: _call(url), range(n)) if s == 200]
    finally:
        srv.shutdown()


def run(args) -> dict:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    PILImage.fromarray(rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)).save(
        buf, format="PNG"
    )
    png = buf.getvalue()
    body, ctype = _multipart(png, {"model": args.model})
    ref = plain_reference(args.requests - args.posts, args.clients)
    with (
        tempfile.TemporaryDirectory() as tmp,
        ServerProcess(Path(tmp) / "data", "--workers", "1", "--max-queued", str(args.posts + 1)) as srv,
    ):
        base = srv.base
        peak = [0]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], sum(_status_kb(p, "VmRSS") for p in _tree(srv.proc.pid)))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        posted: list[str] = []
        lock = threading.Lock()
        every = max(1, args.requests // max(1, args.posts))
        plan = ["post" if i % every == 0 and i // every < args.posts else "get" for i in range(args.requests)]
        gets = ["/api/models", "/api/jobs", "job", "/api/health"]

        def one(i: int):
            if plan[i] == "post":
                status, data, t = _call(f"{base}/api/jobs", body, ctype)
                if status == 202:
                    with lock:
                        posted.append(json.loads(data)["id"])
                return "POST /api/jobs", status, t
            path = gets[i % len(gets)]
            if path == "job":
                with lock:
                    path = f"/api/jobs/{posted[i % len(posted)]}" if posted else "/api/health"
                label = "GET /api/jobs/{id}" if "/api/jobs/" in path else f"GET {path}"
            else:
                label = f"GET {path}"
            status, _, t = _call(base + path)
            return label, status, t

        t0 = time.perf_counter()
        with cf.ThreadPoolExecutor(args.clients) as ex:
            results = list(ex.map(one, range(args.requests)))
        wall = time.perf_counter() - t0
        deadline = time.monotonic() + args.timeout
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            states = {j: json.loads(_call(f"{base}/api/jobs/{j}")[1]).get("status", "?") for j in posted}
            if all(s in ("done", "failed") for s in states.values()):
                break
            time.sleep(0.2)
        drained = time.perf_counter() - t0
        good = 0
        for j in posted:
            status, data, _ = _call(f"{base}/api/jobs/{j}/result")
            if status == 200 and PILImage.open(io.BytesIO(data)).size == (2 * args.size, 2 * args.size):
                good += 1
        stop.set()
        sampler.join()
        hwm = {p: _status_kb(p, "VmHWM") for p in _tree(srv.proc.pid)}
    rows = []
    for label in sorted({r[0] for r in results}):
        ts = [t for lab, s, t in results if lab == label]
        rows.append(
            dict(
                kind=label,
                n=len(ts),
                p50=_pct(ts, 50),
                p90=_pct(ts, 90),
                p99=_pct(ts, 99),
                max=max(ts) * 1000,
            )
        )
    all_t = [t for _, _, t in results]
    rows.append(
        dict(
            kind="all",
            n=len(all_t),
            p50=_pct(all_t, 50),
            p90=_pct(all_t, 90),
            p99=_pct(all_t, 99),
            max=max(all_t) * 1000,
        )
    )
    rows.append(
        dict(
            kind="plain http.server (reference)",
            n=len(ref),
            p50=_pct(ref, 50),
            p90=_pct(ref, 90),
            p99=_pct(ref, 99),
            max=max(ref) * 1000,
        )
    )
    errors = [(lab, s) for lab, s, _ in results if not 200 <= s < 300]
    return {
        "requests": args.requests,
        "clients": args.clients,
        "posts": args.posts,
        "model": args.model,
        "size": args.size,
        "wall_s": wall,
        "all_jobs_finished_s": drained,
        "rows": rows,
        "errors": len(errors),
        "error_samples": errors[:5],
        "jobs_posted": len(posted),
        "jobs_done_with_correct_result": good,
        "lost": args.posts - good,
        "peak_rss_mib_total": peak[0] / 1024,
        "hwm_mib_per_process": sorted(v / 1024 for v in hwm.values()),
        "p50_ratio_to_plain": _pct([t for lab, _, t in results if lab.startswith("GET")], 50) / _pct(ref, 50),
        "cpus": os.cpu_count(),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--posts", type=int, default=20)
    ap.add_argument("--model", default="bicubic-x2")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument(
        "--timeout", type=float, default=180.0, help="seconds to wait for the jobs after the burst"
    )
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if not 0 < args.posts <= args.requests:
        ap.error("--posts must be 1..--requests")
    res = run(args)
    print(
        f"{res['requests']} requests from {res['clients']} clients in {res['wall_s']:.2f} s on loopback "
        f"({res['posts']} job uploads, {res['model']}, {res['size']}x{res['size']}); latency in ms:"
    )
    print_table(
        res["rows"],
        [
            ("kind", "request", "s"),
            ("n", "n", "d"),
            ("p50", "p50", ".1f"),
            ("p90", "p90", ".1f"),
            ("p99", "p99", ".1f"),
            ("max", "max", ".1f"),
        ],
    )
    print(f"GET p50 / plain http.server p50: {res['p50_ratio_to_plain']:.1f}x")
    print(
        f"errors: {res['errors']}  jobs: {res['jobs_posted']} posted, {res['jobs_done_with_correct_result']} done "
        f"with a correct result, {res['lost']} lost; all finished {res['all_jobs_finished_s']:.1f} s after the start"
    )
    print(
        f"peak memory, server + workers: {res['peak_rss_mib_total']:.0f} MiB resident; per process high-water: "
        + ", ".join(f"{m:.0f}" for m in res["hwm_mib_per_process"])
        + " MiB"
    )
    write_json(args.json, res)
    return 1 if res["errors"] or res["lost"] else 0


if __name__ == "__main__":
    sys.exit(main())
