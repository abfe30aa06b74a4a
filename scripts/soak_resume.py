#!/usr/bin/env python3
"""Kill a tiny training with SIGKILL at random points N times, resuming each time, and check the result.

    python scripts/soak_resume.py [--kills 20] [--seed 0] [--iterations 120] [--workdir DIR] [--keep]

What it does: writes a small synthetic data set and an SRCNN config (validation, best-model exports,
validation samples and checkpoint pruning all on, one log row per iteration), trains it once without
interruption (the reference), then trains it again in another folder, starting every process with
``--resume auto`` and killing it with SIGKILL at a random moment, until it has been killed N times. A kill
lands, at random, in the start-up (a random time after the process starts: imports, lock, stale files, data,
resume; a quarter of them), in the training (a random time after the log row of a random coming iteration:
steps, validations, checkpoints, pruning) or in the end phase (after the last row: the final validation,
exports, the final checkpoint and copy). A process that finishes before its kill is fine; the next one resumes
a finished run. A last process runs to the end.

Checks: the final ``model.safetensors`` tensors are bitwise identical to the reference's; the loss and
validation rows of ``scalars.csv`` equal the reference's (one row per iteration and tag: replayed iterations
replaced theirs); no temporary file is left; every checkpoint left loads. Prints one summary line
(``soak_resume: PASS ...`` or ``soak_resume: FAIL ...``); exit status 0 on pass, 1 on a failed check.
"""

from __future__ import annotations

import argparse
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def _config(iterations: int) -> dict:
    return {
        "name": "soak_tiny",
        "scale": 2,
        "seed": 5,
        "model": {"name": "srcnn", "hparams": {"scale": 2, "n1": 16, "n2": 8, "f1": 5, "f2": 1, "f3": 3}},
        "data": {"train": "train", "mode": "random", "crop": 24},
        "val": {"set": "val", "every": 20, "ssim": False, "samples": 1},
        "stages": {
            "train": {
                "iterations": iterations,
                "batch_size": 4,
                "optim": {"lr": 1e-3},
                "schedule": {"type": "cosine", "warmup": 5},
                "losses": {"pixel": "mse"},
                "ema": 0.9,
            }
        },
        "checkpoint": {"every": 5, "keep": 2},
        "log": {"every": 1, "progress": False, "tensorboard": False},
        "runtime": {"threads": 1, "device": "cpu"},
    }


def _make_data(root: Path) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for sub, n, size in (("train", 6, 64), ("val", 1, 48)):
        (root / sub).mkdir(parents=True)
        for i in range(n):
            small = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
            Image.fromarray(small).resize((size, size), Image.BICUBIC).save(root / sub / f"{i:02d}.png")


class _Child:
    """One ``srlab train`` process; its output is read on a thread so that waiting for a line never blocks."""

    def __init__(self, args: list[str], env: dict) -> None:
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        self.lines: list[str] = []
        self.training = threading.Event()
        self._q: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)
            if line.startswith("stage train"):
                self.training.set()
        self.training.set()  # the output ended: nobody waits for the line any longer

    def tail(self, n: int = 8) -> str:
        return "".join(self.lines[-n:]).strip().replace("\n", " | ")


def _train_cmd(cfg: Path, out: Path, data: Path) -> list[str]:
    return [
        sys.executable, "-m", "srlab", "train", str(cfg), "--out", str(out), "--data-root", str(data),
        "--resume", "auto",
    ]  # fmt: skip


def _logged_iteration(out: Path) -> int:
    """The iteration of the last whole row of ``scalars.csv`` (0 when none; the file may be mid-rewrite)."""
    try:
        text = (out / "scalars.csv").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return 0
    for line in reversed(text.splitlines(keepends=True)[1:]):
        if line.endswith("\n"):
            try:
                return int(line.split(",", 1)[0])
            except ValueError:
                return 0
    return 0


def _kill_after(child: _Child, delay: float) -> bool:
    """SIGKILL the child after ``delay`` seconds unless it ends first; True when it was killed."""
    try:
        child.proc.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        child.proc.send_signal(signal.SIGKILL)
        return True


def _rows(out: Path) -> list[tuple[str, ...]]:
    lines = (out / "scalars.csv").read_text(encoding="utf-8").splitlines()[1:]
    return [tuple(ln.split(",")[:4]) for ln in lines]


def _check(ref: Path, out: Path) -> tuple[list[str], str]:
    """Failed checks (empty: all passed) and a description of what was compared."""
    import torch
    from safetensors.torch import load_file

    from srlab.train.checkpoint import list_checkpoints, load_checkpoint

    bad = []
    a, b = load_file(str(ref / "model.safetensors")), load_file(str(out / "model.safetensors"))
    if a.keys() != b.keys() or not all(torch.equal(a[k], b[k]) for k in a):
        diff = [k for k in a if k not in b or not torch.equal(a[k], b[k])]
        bad.append(f"final model differs from the uninterrupted run ({', '.join(diff[:3])})")
    ra, rb = _rows(ref), _rows(out)
    keys = [r[:3] for r in rb]
    if len(keys) != len(set(keys)):
        bad.append(f"scalars.csv holds {len(keys) - len(set(keys))} duplicated (iteration, stage, tag) rows")
    metric = ("l_pix", "l_total", "val_psnr", "lr")
    ma, mb = [r for r in ra if r[2] in metric], [r for r in rb if r[2] in metric]
    if ma != mb:
        bad.append(
            f"scalars.csv loss/val rows differ from the uninterrupted run ({len(ma)} vs {len(mb)} rows)"
        )
    temps = [p for p in out.rglob(".*") if p.name.endswith((".tmp", ".part"))]
    if temps:
        bad.append(f"{len(temps)} temporary files left ({temps[0].name})")
    for _si, _it, p in list_checkpoints(out / "checkpoints"):
        try:
            load_checkpoint(p)
        except Exception as exc:  # noqa: BLE001 - report any failure
            bad.append(f"checkpoint {p.name} does not load ({exc})")
    files_same = (ref / "model.safetensors").read_bytes() == (out / "model.safetensors").read_bytes()
    what = (
        f"final model bitwise identical to the uninterrupted run ({len(a)} tensors"
        + (", same file bytes" if files_same else "")
        + f"), {len(mb)} loss/val log rows identical"
    )
    return bad, what


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--kills", type=int, default=20, help="how many times to SIGKILL the training (default 20)"
    )
    ap.add_argument("--seed", type=int, default=0, help="seed of the kill times")
    ap.add_argument("--iterations", type=int, default=120, help="training iterations (default 120)")
    ap.add_argument("--workdir", type=Path, default=None, help="where to work (default: a temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args(argv)
    import yaml

    t_all = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="soak_", dir=args.workdir))
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    rnd = random.Random(args.seed)
    try:
        data = work / "data"
        _make_data(data)
        cfg = work / "soak.yaml"
        cfg.write_text(yaml.safe_dump(_config(args.iterations), sort_keys=False))
        ref, out = work / "reference", work / "soak"

        child = _Child(_train_cmd(cfg, ref, data), env)
        child.training.wait()
        t_train0 = time.monotonic()
        last_row = None  # when the last iteration's row came: the end phase (exports, final copy) follows
        while child.proc.poll() is None:
            if last_row is None and _logged_iteration(ref) >= args.iterations:
                last_row = time.monotonic()
            time.sleep(0.01)
        last_row = last_row or time.monotonic()
        if child.proc.wait() != 0:
            print(f"soak_resume: FAIL: the reference run failed: {child.tail()}")
            return 1
        startup = t_train0 - child.t0
        step_s = max(0.001, (last_row - t_train0) / args.iterations)
        end_s = max(0.05, time.monotonic() - last_row)
        span = max(1, args.iterations // max(1, args.kills))

        kills = early = late = finished = starts = 0
        while kills < args.kills:
            starts += 1
            child = _Child(_train_cmd(cfg, out, data), env)
            phase = rnd.choices(["start", "train", "end"], weights=[0.25, 0.65, 0.1])[0]
            if phase == "start":  # imports, lock, stale files, data, resume
                killed = _kill_after(child, rnd.uniform(0.0, startup * 1.2))
            else:  # at a random moment after the row of a random coming iteration (steps, val, checkpoints)
                target = (
                    args.iterations if phase == "end" else _logged_iteration(out) + rnd.randint(1, 2 * span)
                )
                target = min(target, args.iterations)
                while child.proc.poll() is None and _logged_iteration(out) < target:
                    time.sleep(0.005)
                extra = rnd.uniform(0.0, end_s * 1.2 if target >= args.iterations else step_s * 1.5)
                killed = _kill_after(child, extra)
            rc = child.proc.wait()
            if killed and rc == -signal.SIGKILL:
                kills += 1
                early += phase == "start"
                late += phase == "end"
            elif rc == 0:
                finished += 1
            else:
                print(f"soak_resume: FAIL: start {starts} exited with {rc}: {child.tail()}")
                return 1
        child = _Child(_train_cmd(cfg, out, data), env)
        if child.proc.wait() != 0:
            print(f"soak_resume: FAIL: the last resume failed: {child.tail()}")
            return 1
        bad, what = _check(ref, out)
        took = time.monotonic() - t_all
        summary = (
            f"{kills} kills ({early} during start-up, {kills - early - late} while training, {late} in the end "
            f"phase; {finished} of the starts finished before their kill), {starts + 1} starts, {args.iterations} iterations"
        )
        if bad:
            print(f"soak_resume: FAIL: {summary}: {'; '.join(bad)} ({took:.0f} s, work folder {work})")
            args.keep = True
            return 1
        print(f"soak_resume: PASS: {summary}; {what}; no temporary file left ({took:.0f} s)")
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
