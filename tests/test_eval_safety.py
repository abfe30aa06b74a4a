"""`srlab eval` never reports a broken model as a score and never loses or cuts results: non-finite outputs are
failed rows, NaN and inf stay distinct through --merge, an existing results folder needs --force, default
folders never collide, the output folder is checked before the work, a full disk leaves the old results."""

from __future__ import annotations

import errno
import math
import shutil
import time

import pytest
import torch

from srlab.cli import main
from srlab.eval.results import read_results
from srlab.serialize import dumps

SET5 = ["--datasets", "Set5", "--scale", "2", "--no-progress"]


@pytest.fixture
def one_set(data_root, tmp_path):
    d = tmp_path / "one"
    d.mkdir()
    shutil.copy(data_root / "Set5" / "HR" / "bird.png", d)
    shutil.copy(data_root / "Set5" / "HR" / "butterfly.png", d)
    return ["--datasets", "One", "--set-path", f"One={d}", "--scale", "2", "--no-progress"]


def test_non_finite_model_output_is_a_failed_row_not_a_score(one_set, tmp_path, capsys):
    from srlab.models.registry import build_model
    from srlab.weights.io import save_model

    model, _ = build_model("srcnn", scale=2, num_channels=1, n1=4, n2=2, f1=3, f2=1, f3=3)
    with torch.no_grad():  # finite weights whose products overflow float32: the output is inf/NaN
        for p in model.parameters():
            p.fill_(1e30)
    ckpt = save_model(tmp_path / "overflow.safetensors", model)
    out = tmp_path / "o"
    for extra in ([], ["--allow-missing"]):
        rc = main(["eval", "--models", f"bicubic,{ckpt}", *one_set, "--out", str(out), "--force", *extra])
        err = capsys.readouterr().err
        assert rc == 1, err
        assert "fail: overflow One/bird.png x2: model output has" in err and "non-finite" in err
        assert "error: incomplete One: 2 non-finite model outputs (overflow" in err
    doc = read_results(out / "results.json")
    assert {r["model"] for r in doc["rows"]} == {"bicubic"}  # no score for the broken model
    assert [f["image"] for f in doc["header"]["datasets"][0]["failed"]] == ["bird.png", "butterfly.png"]
    assert "## Failed outputs (not scored)" in (out / "results.md").read_text()


def test_merge_keeps_nan_and_inf_distinct(data_root, tmp_path, capsys):
    shards = []
    for k in (1, 2):
        out = tmp_path / f"s{k}"
        assert main(["eval", "--models", "bicubic", *SET5, "--shard", f"{k}/2", "--out", str(out)]) == 0
        doc = read_results(out / "results.json")
        for r in doc["rows"]:  # one shard's row NaN, the other's inf (as a NaN / identical image would give)
            r["psnr_y"] = math.nan if k == 1 else math.inf
        (out / "results.json").write_text(dumps(doc))
        shards.append(str(out / "results.json"))
    assert "NaN" in (tmp_path / "s1" / "results.json").read_text()
    merged = tmp_path / "m"
    assert main(["eval", "--merge", *shards, "--out", str(merged)]) == 0
    want = {r["image"]: "nan" for r in read_results(shards[0])["rows"]}
    want.update({r["image"]: "inf" for r in read_results(shards[1])["rows"]})
    assert set(want.values()) == {"nan", "inf"}
    rows = {r["image"]: r["psnr_y"] for r in read_results(merged / "results.json")["rows"]}
    assert {k: "nan" if math.isnan(v) else "inf" if math.isinf(v) else v for k, v in rows.items()} == want


def test_an_existing_results_folder_needs_force(one_set, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["eval", "--models", "bicubic", *one_set, "--out", str(out)]) == 0
    before = (out / "results.json").read_bytes()
    rc = main(["eval", "--models", "bilinear", *one_set, "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and "holds the results of an earlier eval" in err[-1] and "--force" in err[-1]
    assert (out / "results.json").read_bytes() == before
    assert main(["eval", "--models", "bilinear", *one_set, "--out", str(out), "--force"]) == 0
    assert {r["model"] for r in read_results(out / "results.json")["rows"]} == {"bilinear"}


def test_default_folders_never_collide(one_set, tmp_path, monkeypatch, capsys):
    """Two shard runs (and two plain runs) started in the same second get their own folders."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(time, "strftime", lambda fmt, *a: "20260101-000000")
    for k in (1, 2):
        assert main(["eval", "--models", "bicubic", *SET5, "--shard", f"{k}/2"]) == 0
    for _ in range(2):
        assert main(["eval", "--models", "bicubic", *one_set]) == 0
    made = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert made == [
        "eval-20260101-000000",
        "eval-20260101-000000-2",
        "eval-20260101-000000-shard1of2",
        "eval-20260101-000000-shard2of2",
    ]
    for name in made:
        assert read_results(tmp_path / "out" / name / "results.json")["rows"]
    from srlab.eval.results import prepare_out_dir

    assert prepare_out_dir(None, stamp="x", label="a") != prepare_out_dir(None, stamp="x", label="a")


def _no_eval(*a, **k):
    raise AssertionError("the evaluation ran before the output folder was checked")


def test_an_unwritable_out_fails_before_the_evaluation(one_set, tmp_path, monkeypatch, capsys):
    import srlab.atomic
    import srlab.eval.loop

    monkeypatch.setattr(srlab.eval.loop, "evaluate", _no_eval)
    (tmp_path / "afile").write_text("x")
    rc = main(["eval", "--models", "bicubic", *one_set, "--out", str(tmp_path / "afile" / "sub")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "cannot write there" in err[0]

    def read_only(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(srlab.atomic.tempfile, "mkstemp", read_only)
    rc = main(["eval", "--models", "bicubic", *one_set, "--out", str(tmp_path / "ro")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "Read-only file system" in err[0]


def test_a_full_disk_keeps_the_earlier_results_whole(one_set, tmp_path, monkeypatch, capsys):
    import builtins

    import srlab.atomic

    out = tmp_path / "o"
    assert main(["eval", "--models", "bicubic", *one_set, "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real_open = builtins.open

    class Full:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, data):
            self.fh.write(data[: len(data) // 2])  # part of it lands, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")

    def full_open(path, mode="r", *a, **k):
        fh = real_open(path, mode, *a, **k)
        return Full(fh) if "w" in mode and str(path).endswith(".tmp") else fh

    monkeypatch.setattr(srlab.atomic, "open", full_open, raising=False)
    rc = main(["eval", "--models", "bilinear", *one_set, "--out", str(out), "--force"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and "No space left on device" in err[-1] and "Traceback" not in "".join(err)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing cut, no temp files left
