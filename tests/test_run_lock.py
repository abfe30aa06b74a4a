"""One training per run folder: a second training into a folder another one is using is refused, in one line
naming the holder's pid, and changes nothing there; a holder killed with SIGKILL leaves no stale lock."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml
from PIL import Image

from srlab.errors import SrlabError
from srlab.train.rundir import LOCK_NAME, RunLock, hold_run_folder

CFG = {
    "name": "lock_tiny",
    "scale": 2,
    "model": {"name": "srcnn", "hparams": {"scale": 2, "n1": 8, "n2": 4, "f1": 3, "f2": 1, "f3": 3}},
    "data": {"train": "imgs", "mode": "random", "crop": 16},
    "val": {"set": None},
    "stages": {
        "train": {"iterations": 4, "batch_size": 2, "optim": {"lr": 1e-3}, "losses": {"pixel": "mse"}}
    },
    "checkpoint": {"every": 2},
    "log": {"every": 1, "progress": False, "tensorboard": False},
    "runtime": {"threads": 1},
}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("lockdata")
    (r / "imgs").mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(r / "imgs" / f"{i}.png")
    return r


def _config(path, **over):
    cfg = yaml.safe_load(yaml.safe_dump(CFG))
    for k, v in over.items():
        node = cfg
        *head, last = k.split(".")
        for h in head:
            node = node[h]
        node[last] = v
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _wait_for(proc, prefix: str, timeout: float = 120.0) -> list[str]:
    seen = []
    t0 = time.time()
    while time.time() - t0 < timeout:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"holder exited early: {''.join(seen)}")
        seen.append(line)
        if line.startswith(prefix):
            return seen
    raise AssertionError(f"no {prefix!r} line in {timeout} s: {''.join(seen)}")


@pytest.mark.slow
def test_a_second_training_into_a_folder_in_use_is_refused_and_mixes_nothing(root, tmp_path, capsys):
    from srlab.cli import main

    out = tmp_path / "run"
    long_cfg = _config(tmp_path / "long.yaml", **{"stages.train.iterations": 10**7, "checkpoint.every": 0})
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    holder = subprocess.Popen(
        [sys.executable, "-m", "srlab", "train", str(long_cfg), "--out", str(out), "--data-root", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        _wait_for(holder, "stage train")
        config_before = (out / "config.yaml").read_bytes()
        other = _config(tmp_path / "other.yaml", seed=7)
        for extra in ([], ["--resume", "auto"]):
            rc = main(["train", str(other), "--out", str(out), "--data-root", str(root), *extra])
            err = capsys.readouterr().err
            assert rc == 2, err
            assert len(err.strip().splitlines()) == 1 and f"pid {holder.pid}" in err, err
            assert str(out) in err and "--out" in err
        # nothing of the refused run landed in the folder
        assert (out / "config.yaml").read_bytes() == config_before
        assert not (out / "checkpoints").exists() and not (out / "model.safetensors").exists()
        assert (out / "train.log").read_text().count("train lock_tiny:") == 1  # the holder's start only
        assert holder.poll() is None  # the holder goes on
    finally:
        holder.kill()
        holder.wait()
    # SIGKILL: the kernel dropped the holder's lock. The folder holds its logs but no checkpoint: a new run
    # may start there, and its logs are its own (one history, not the killed run's rows plus its own)
    assert holder.returncode == -9
    assert (out / LOCK_NAME).exists() and (out / "scalars.csv").stat().st_size > 0
    short = _config(tmp_path / "short.yaml")
    assert main(["train", str(short), "--out", str(out), "--data-root", str(root)]) == 0
    capsys.readouterr()
    rows = (out / "scalars.csv").read_text().splitlines()[1:]
    keys = [tuple(r.split(",")[:3]) for r in rows]
    assert len(keys) == len(set(keys)) and {int(k[0]) for k in keys} == {1, 2, 3, 4}


def test_the_lock_names_its_holder_and_a_dead_holder_leaves_no_stale_lock(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / LOCK_NAME).write_text("999999999 somehost\n")  # left by a holder that died
    lock = RunLock(out)
    lock.acquire()
    try:
        assert (out / LOCK_NAME).read_text().split()[0] == str(os.getpid())
        with pytest.raises(SrlabError) as e:
            RunLock(out).acquire()  # a second open file description: refused like another process
        msg = str(e.value)
        assert "\n" not in msg and f"pid {os.getpid()}" in msg and str(out) in msg
    finally:
        lock.release()
    again = RunLock(out)
    again.acquire()  # released: free again
    again.release()


def test_under_ddp_only_rank_0_holds_the_run_folder(tmp_path):
    out = tmp_path / "ddp"
    out.mkdir()
    with RunLock(out):  # what rank 0 holds
        # the other ranks take nothing (they would refuse their own rank 0 otherwise)
        assert hold_run_folder(out, rank=1, world=1) is None
        with pytest.raises(SrlabError, match=f"pid {os.getpid()}"):
            hold_run_folder(out, rank=0, world=1)
    held = hold_run_folder(out, rank=0, world=1)
    assert held is not None and held.held
    held.release()
