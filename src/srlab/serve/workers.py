"""The worker pool: a fixed number of processes (one per GPU, or one on a CPU by default) that take jobs
from the store one at a time.

Processes, not threads: a model run holds the interpreter and its memory for seconds, and a worker that
crashes (out of memory, a fault in a native library) must not take the web server with it. The pool's
supervisor (:meth:`WorkerPool.check`, called every second by the app) restarts a worker that died and puts
the job it held back in the queue (failed after :data:`srlab.serve.store.MAX_ATTEMPTS` runs).

A worker must not outlive its server: on Linux it asks the kernel for SIGKILL when its parent dies
(``PR_SET_PDEATHSIG``), and everywhere it checks its parent between jobs and at every progress step. Its
updates carry its run id, so even a worker that survived a restart cannot mark a job done again.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import shutil
import signal
import sys
import time
import traceback
from dataclasses import asdict

import torch

from srlab.errors import SrlabError
from srlab.runtime import cuda_available
from srlab.serve.config import ServeConfig
from srlab.serve.jobs import Cancelled, UpscalerCache, run_job
from srlab.serve.store import JobStore

__all__ = ["WorkerPool", "worker_main"]

_IDLE_POLL_S = 0.2


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def worker_main(config: dict, index: int, device: str, parent: int, stop=None) -> None:
    """Run jobs until the parent process goes away or sets ``stop`` (the body of each worker process)."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the server stops us

    cfg = ServeConfig(**config)
    store = JobStore(cfg.db_path, cfg.jobs_dir)
    cache = UpscalerCache(device)
    name = f"w{index}-{os.getpid()}"
    while os.getppid() == parent and not (stop is not None and stop.is_set()):
        job = store.claim(name)
        if job is None:
            if stop is not None:
                stop.wait(_IDLE_POLL_S)
            else:
                time.sleep(_IDLE_POLL_S)
            continue
        folder = store.folder(job.id)

        def report(fraction: float, job=job) -> None:
            if os.getppid() != parent:
                os._exit(0)  # the server died: leave the job to the next server's recovery
            if not store.set_progress(job.id, job.run_id, fraction):
                raise Cancelled(job.id)

        t0 = time.monotonic()
        what = job.params.get("model") or ",".join(job.params.get("models", []))
        print(
            f"srlab serve: worker {index}: job {job.id} ({job.kind} {what}) started",
            file=sys.stderr,
            flush=True,
        )
        try:
            report(0.02)
            result = run_job(job, folder, cache, report, max_pixels=cfg.max_pixels, models_dir=cfg.models_dir)
            if not store.finish(job.id, job.run_id, result):
                raise Cancelled(job.id)
            secs = time.monotonic() - t0
            print(
                f"srlab serve: worker {index}: job {job.id} done in {secs:.1f} s", file=sys.stderr, flush=True
            )
        except Cancelled:
            if store.get(job.id) is None:  # deleted while it ran: its files go too
                shutil.rmtree(folder, ignore_errors=True)
        except SrlabError as exc:
            store.fail(job.id, job.run_id, _one_line(exc).replace(str(folder) + os.sep, ""))
        except MemoryError:
            store.fail(job.id, job.run_id, "out of memory; use a smaller image, scale or tile")
        except Exception as exc:  # noqa: BLE001 - one job's bug must not stop the worker
            text = _one_line(exc)
            hint = (
                "free device memory or use a smaller tile"
                if "out of memory" in text.lower()
                else "see the server log"
            )
            store.fail(job.id, job.run_id, f"failed ({type(exc).__name__}: {text[:160]}); {hint}")
            traceback.print_exc(file=sys.stderr)


class WorkerPool:
    """Starts, watches and stops the worker processes of one server."""

    def __init__(self, config: ServeConfig, store: JobStore) -> None:
        self.config, self.store = config, store
        self._ctx = mp.get_context("spawn")  # fresh interpreters: no forked copies of the server's threads
        self._procs: list = [None] * config.workers
        self._stop = self._ctx.Event()

    def _start(self, i: int) -> None:
        device = self.config.devices[i % len(self.config.devices)]
        cfg = asdict(self.config)
        p = self._ctx.Process(
            target=worker_main,
            args=(cfg, i, device, os.getpid(), self._stop),
            name=f"srlab-serve-worker-{i}",
            daemon=True,
        )
        p.start()
        self._procs[i] = p

    def start(self) -> None:
        for i in range(self.config.workers):
            self._start(i)

    def alive(self) -> int:
        return sum(1 for p in self._procs if p is not None and p.is_alive())

    def check(self) -> list[str]:
        """Restart dead workers; their running jobs are re-queued (or failed). Returns what was done."""
        said = []
        for i, p in enumerate(self._procs):
            if p is None or p.is_alive():
                continue
            code = p.exitcode
            prefix = f"w{i}-{p.pid}:"
            for job in self.store.running():
                if (job.run_id or "").startswith(prefix):
                    why = f"its worker process died (exit code {code})"
                    self.store.requeue_run(job.id, job.run_id, why)
                    said.append(f"job {job.id}: {why}")
            self._start(i)
            said.append(f"worker {i} restarted (exit code {code})")
        return said

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the workers to stop between jobs; one still inside a job after ``timeout`` is terminated
        (its job goes back to the queue: :meth:`JobStore.release_running`)."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for p in self._procs:
            if p is not None:
                p.join(max(0.0, deadline - time.monotonic()))
        for p in self._procs:
            if p is not None and p.is_alive():
                p.terminate()
        deadline = time.monotonic() + timeout
        for p in self._procs:
            if p is not None:
                p.join(max(0.0, deadline - time.monotonic()))
                if p.is_alive():
                    p.kill()
                    p.join(1.0)

    def pids(self) -> list[int]:
        return [p.pid for p in self._procs if p is not None and p.pid]


def default_devices() -> tuple[str, ...]:
    """One device per worker: each CUDA GPU, else the CPU."""
    if cuda_available():
        return tuple(f"cuda:{i}" for i in range(torch.cuda.device_count()))
    return ("cpu",)
