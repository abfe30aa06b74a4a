"""Training after kills, on a full disk and with changed inputs: stale temporary files, one log history,
fallback from a truncated checkpoint, refused (or forced and recorded) resumes, file modes, ENOSPC."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srlab.errors import SrlabError
from srlab.train.checkpoint import list_checkpoints, load_checkpoint
from srlab.train.config import apply_overrides, config_from_dict
from srlab.train.trainer import Trainer
from trainutil import load_weights as _weights
from trainutil import same_tensors as _same

pytestmark = pytest.mark.usefixtures("one_thread")

CFG = {
    "name": "rel_tiny",
    "scale": 2,
    "model": {"name": "srcnn", "hparams": {"scale": 2, "n1": 8, "n2": 4, "f1": 3, "f2": 1, "f3": 3}},
    "data": {"train": "imgs", "mode": "random", "crop": 16},
    "val": {"set": "val", "every": 4, "ssim": False, "samples": 0},
    "stages": {
        "train": {"iterations": 8, "batch_size": 2, "optim": {"lr": 1e-3}, "losses": {"pixel": "mse"}}
    },
    "checkpoint": {"every": 4, "keep": 0},
    "log": {"every": 1, "progress": False, "tensorboard": False},
    "runtime": {"threads": 1},
}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("reldata")
    rng = np.random.default_rng(0)
    for sub, n in (("imgs", 4), ("val", 1)):
        (r / sub).mkdir()
        for i in range(n):
            small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(small).resize((32, 32), Image.BICUBIC).save(r / sub / f"{i}.png")
    return r


def _cfg(**over):
    return config_from_dict(apply_overrides(CFG, over))


def _run(out, root, cfg=None, **kw):
    said: list[str] = []
    res = Trainer(cfg or _cfg(), out_dir=out, data_root=root, echo=said.append, **kw).run()
    return res, said


@pytest.fixture(scope="module")
def reference(root, tmp_path_factory):
    """An uninterrupted run: its model and its loss rows."""
    out = tmp_path_factory.mktemp("ref") / "run"
    res, _ = _run(out, root)
    assert res.completed
    return out


def _loss_rows(out):
    rows = [r.split(",") for r in (Path(out) / "scalars.csv").read_text().splitlines()[1:]]
    return [(int(r[0]), r[1], r[2], r[3]) for r in rows if r[2] in ("l_pix", "l_total", "val_psnr")]


def _keys(out):
    return [tuple(r.split(",")[:3]) for r in (Path(out) / "scalars.csv").read_text().splitlines()[1:]]


# ------------------------------------------------------------------------------------ leftovers
def test_stale_temporary_files_are_removed_at_start_and_nothing_else(root, tmp_path):
    out = tmp_path / "r"
    (out / "checkpoints").mkdir(parents=True)
    stale = [
        out / "checkpoints" / ".ckpt_s0_train_00000004.pt.k3j2h1.tmp",
        out / ".best_train.safetensors.a8b7c6.tmp",
        out / ".model.safetensors.zz.tmp",
    ]
    for p in stale:
        p.write_bytes(b"")
    keep = [out / "notes.tmp", out / ".hidden", out / "checkpoints" / "mine.txt"]
    for p in keep:
        p.write_text("user file")
    res, said = _run(out, root)
    assert res.completed
    assert not any(p.exists() for p in stale) and all(p.read_text() == "user file" for p in keep)
    assert any("removed 3 stale temporary files" in m for m in said), said
    assert not [p for p in out.rglob(".*.tmp")]


def test_replayed_iterations_replace_their_log_rows(root, tmp_path, reference, monkeypatch):
    """Killed after logging past its last checkpoint (and before the first one), then resumed: one history,
    the same loss rows as an uninterrupted run; a half-written last row is dropped."""
    from srlab.train.recipes import StageRunner

    step = StageRunner.step
    calls = {"n": 0}

    def dying_step(self, *a, **k):
        calls["n"] += 1
        if calls["n"] > limit:
            raise KeyboardInterrupt  # stands in for SIGKILL: no checkpoint is written on the way out
        return step(self, *a, **k)

    monkeypatch.setattr(StageRunner, "step", dying_step)
    out = tmp_path / "r"
    limit = 3  # before the first checkpoint (at 4): rows 1-3 are logged, nothing to resume from
    with pytest.raises(KeyboardInterrupt):
        _run(out, root, resume="auto")
    assert not list_checkpoints(out / "checkpoints") and len(_keys(out)) > 0
    calls["n"], limit = 0, 6  # from scratch again, past the checkpoint at 4, dies after 6
    with pytest.raises(KeyboardInterrupt):
        _run(out, root, resume="auto")
    with open(out / "scalars.csv", "a") as fh:
        fh.write("7,train,l_p")  # the kill landed in the middle of a row
    monkeypatch.setattr(StageRunner, "step", step)
    res, _ = _run(out, root, resume="auto")
    assert res.completed
    keys = _keys(out)
    assert len(keys) == len(set(keys)), sorted(keys)
    assert _loss_rows(out) == _loss_rows(reference)
    assert _same(_weights(out / "model.safetensors"), _weights(reference / "model.safetensors"))


def test_a_truncated_latest_checkpoint_falls_back_to_the_previous_one(root, tmp_path, reference):
    out = tmp_path / "r"
    part, _ = _run(out, root, _cfg(**{"runtime.stop_after": 6}))
    assert not part.completed
    cks = list_checkpoints(out / "checkpoints")
    assert [c[1] for c in cks] == [4, 6]
    latest = cks[-1][2]
    data = latest.read_bytes()
    latest.write_bytes(data[: len(data) // 2])
    res, said = _run(out, root, resume="auto")
    assert res.completed
    (warn,) = [m for m in said if "falling back" in m]
    assert latest.name in warn and cks[0][2].name in warn and "\n" not in warn
    assert _same(_weights(out / "model.safetensors"), _weights(reference / "model.safetensors"))
    # an explicit path is not second-guessed: the broken file is refused in one line
    bad = tmp_path / "bad.pt"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(SrlabError, match="bad.pt"):
        _run(tmp_path / "r2", root, resume=str(bad))


def test_resume_with_a_changed_seed_data_or_recipe_is_refused_unless_forced(root, tmp_path, reference):
    out = tmp_path / "r"
    _run(out, root, _cfg(**{"runtime.stop_after": 4}))
    for over, what in (
        ({"seed": 3}, "seed 0 -> 3"),
        ({"data.crop": 24}, "data.crop 16 -> 24"),
        ({"stages.train.optim.lr": 0.01}, "stages.train.optim.lr 0.001 -> 0.01"),
    ):
        with pytest.raises(SrlabError) as e:
            _run(out, root, _cfg(**over), resume="auto")
        msg = str(e.value)
        assert "\n" not in msg and what in msg and "--force-resume" in msg, msg
    # the same config over other images (the data root moved to another copy): refused too
    other = tmp_path / "other"
    shutil.copytree(root, other)
    small = np.random.default_rng(9).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(small).resize((32, 32), Image.BICUBIC).save(other / "imgs" / "1.png")
    with pytest.raises(SrlabError, match="training images differ"):
        _run(out, other, resume="auto")
    # the same images elsewhere are the same data
    same = tmp_path / "same"
    shutil.copytree(root, same)
    logged = len(_keys(out))
    # forced: accepted, said, and recorded in the checkpoints and the exported model
    res, said = _run(out, root, _cfg(seed=3), resume="auto", force_resume=True)
    assert res.completed and logged > 0
    assert any("--force-resume" in m and "seed 0 -> 3" in m for m in said)
    assert "seed 0 -> 3" in (out / "train.log").read_text()
    ck = load_checkpoint(list_checkpoints(out / "checkpoints")[-1][2])
    (forced,) = ck["forced_resumes"]
    assert forced["from"].endswith("ckpt_s0_train_00000004.pt") and "seed 0 -> 3" in forced["changes"][0]
    from srlab.weights.io import read_metadata

    meta = read_metadata(out / "model.safetensors")
    assert meta["forced_resumes"][0]["changes"] == forced["changes"]
    # a resume over an identical copy of the data goes through without a word about it
    out2 = tmp_path / "r2"
    _run(out2, root, _cfg(**{"runtime.stop_after": 4}))
    res, said = _run(out2, same, resume="auto")
    assert res.completed and not any("differ" in m for m in said)
    assert _same(_weights(out2 / "model.safetensors"), _weights(reference / "model.safetensors"))


def test_run_files_follow_the_umask(root, tmp_path):
    old = os.umask(0o027)
    try:
        out = tmp_path / "r"
        _run(out, root, _cfg(**{"val.set": None, "stages.train.iterations": 4}))
    finally:
        os.umask(old)
    for p in [*list_checkpoints(out / "checkpoints"), out / "config.yaml", out / "model.safetensors"]:
        p = p[2] if isinstance(p, tuple) else p
        assert p.stat().st_mode & 0o777 == 0o640, (p, oct(p.stat().st_mode))


# ------------------------------------------------------------------------------------ full disk
def _full_disk_after(monkeypatch, good_saves: int):
    """``torch.save`` writes half a checkpoint then fails with ENOSPC, after ``good_saves`` good ones."""
    real = torch.save
    n = {"saves": 0}

    def save(obj, f, *a, **k):
        n["saves"] += 1
        if n["saves"] <= good_saves:
            return real(obj, f, *a, **k)
        f.write(b"PK\x03\x04" + b"\0" * 100)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", save)


def test_a_full_disk_stops_training_in_one_line_and_keeps_the_last_good_checkpoint(
    root, tmp_path, monkeypatch, capsys
):
    import yaml

    from srlab.cli import main

    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(yaml.safe_dump(CFG))
    out = tmp_path / "r"
    _full_disk_after(monkeypatch, good_saves=1)
    rc = main(["train", str(cfg_path), "--out", str(out), "--data-root", str(root)])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    good = out / "checkpoints" / "ckpt_s0_train_00000004.pt"
    assert "No space left on device" in err and "ckpt_s0_train_00000008.pt" in err and good.name in err
    assert "--resume auto" in err
    monkeypatch.undo()
    assert load_checkpoint(good)["iteration"] == 4  # intact
    assert [c[2] for c in list_checkpoints(out / "checkpoints")] == [good]
    assert not [p for p in out.rglob(".*.tmp")]
    # space freed: the run continues from it
    assert (
        main(["train", str(cfg_path), "--out", str(out), "--data-root", str(root), "--resume", "auto"]) == 0
    )


def test_a_full_disk_while_logging_is_one_line_too(root, tmp_path, monkeypatch):
    from srlab.train import logs

    def full(self, *a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    out = tmp_path / "r"
    monkeypatch.setattr(logs.RunLogger, "scalars", full)
    with pytest.raises(SrlabError) as e:
        _run(out, root)
    msg = str(e.value)
    assert "\n" not in msg and "No space left on device" in msg and "no checkpoint was written" in msg


# ----------------------------------------------------------------------------------- soak (slow)
@pytest.mark.slow
def test_soak_resume_survives_random_sigkills(tmp_path):
    script = Path(__file__).resolve().parents[1] / "scripts" / "soak_resume.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--kills", "3", "--seed", "1", "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("soak_resume: PASS") and "3 kills" in last and "bitwise identical" in last, last
