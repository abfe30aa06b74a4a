"""--shard K/N: parsing and scheduler variables, a stable assignment, upscale halves that add up to one run,
and eval shards that merge (`srlab eval --merge`) into exactly the unsharded rows, tables and CSV."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srlab.cli import main
from srlab.errors import ConfigError
from srlab.eval.shard import Shard, parse_shard, shard_of


# ------------------------------------------------------------------------------------------- parsing
def test_k_of_n_is_one_based_and_checked():
    assert parse_shard("2/4") == Shard(2, 4) and str(parse_shard(" 1/1 ")) == "1/1"
    assert parse_shard(None) is None and parse_shard("") is None
    for bad, needle in [
        ("0/4", "1-based"),
        ("5/4", "outside 1..4"),
        ("1/0", ">= 1"),
        ("3", "K/N"),
        ("a/b", "K/N"),
    ]:
        with pytest.raises(ConfigError, match=needle) as info:
            parse_shard(bad)
        assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "env,expected",
    [
        ({"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "0"}, (1, 4)),
        ({"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "1"}, (4, 4)),
        # --array=0-6:2 -> tasks 0, 2, 4, 6
        ({"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_STEP": "2"}, (3, 4)),
        ({"RANK": "2", "WORLD_SIZE": "3"}, (3, 3)),  # torchrun
        ({"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2", "RANK": "0", "WORLD_SIZE": "8"}, (2, 2)),
    ],
)
def test_auto_reads_slurm_arrays_then_torchrun(env, expected):
    assert parse_shard("auto", env) == Shard(*expected)


def test_auto_without_variables_says_what_to_do():
    for env, needle in [
        ({}, "no shard variables"),
        ({"SLURM_ARRAY_TASK_ID": "3"}, "SLURM_ARRAY_TASK_COUNT"),
        ({"RANK": "x", "WORLD_SIZE": "2"}, "not an integer"),
        ({"RANK": "4", "WORLD_SIZE": "4"}, "outside 1..4"),
    ]:
        with pytest.raises(ConfigError, match=needle) as info:
            parse_shard("auto", env)
        assert "\n" not in str(info.value)


def test_assignment_is_stable_and_a_partition():
    # pinned: workers running different srlab versions must agree on who owns what
    assert [shard_of(k, 7) for k in ("a.png", "s1/b.png", "Set5/baby.png", "x/y/z.jpg")] == [2, 2, 7, 5]
    keys = [f"d{i % 7}/img{i}.png" for i in range(400)]
    shards = [Shard(k, 3) for k in (1, 2, 3)]
    parts = [s.select(keys, str) for s in shards]
    assert sorted(k for p in parts for k in p) == sorted(keys)  # each key in exactly one share
    assert all(90 < len(p) < 180 for p in parts)  # and the shares are even
    # independent of order and of the other keys: a subset or a shuffle keeps every key's owner
    assert shards[0].select(list(reversed(keys[:50])), str) == [
        k for k in reversed(keys[:50]) if k in parts[0]
    ]


# ------------------------------------------------------------------------------------------- upscale
def _tree(root: Path) -> list[str]:
    rng = np.random.default_rng(5)
    rels = [
        "top.png",
        "a/one.png",
        "a/two.jpg",
        "a/b/three.png",
        "a/b/c/four.png",
        "a/b/c/five.webp",
        "z/six.png",
    ]
    for rel in rels:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)).save(p)
    return rels


def _files(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_two_upscale_halves_give_the_files_of_one_run(tmp_path, capsys):
    src = tmp_path / "in"
    rels = _tree(src)
    cmd = ["upscale", str(src), "-m", "bicubic-x2", "--recursive"]
    assert main([*cmd, "-o", str(tmp_path / "one"), "-q"]) == 0
    whole = _files(tmp_path / "one")
    assert len(whole) == len(rels)
    halves = []
    for k in (1, 2):
        assert main([*cmd, "-o", str(tmp_path / "split"), "--shard", f"{k}/2"]) == 0
        err = capsys.readouterr().err
        n = sum(shard_of(r, 2) == k for r in rels)
        assert f"shard {k}/2: {n} of {len(rels)} image(s)" in err
        halves.append(n)
    assert all(halves) and sum(halves) == len(rels)
    assert _files(tmp_path / "split") == whole
    # a share with nothing in it is not a failure (more shards than files)
    many = [main([*cmd, "-o", str(tmp_path / "many"), "-q", "--shard", f"{k}/16"]) for k in range(1, 17)]
    assert many == [0] * 16 and _files(tmp_path / "many") == whole


def test_a_share_never_writes_over_an_input_of_another_share(tmp_path, capsys):
    d = tmp_path / "d"
    d.mkdir()
    for name in ("a.png", "a_x2.png"):
        Image.fromarray(np.full((4, 4, 3), 7, np.uint8)).save(d / name)
    assert (shard_of("a.png", 2), shard_of("a_x2.png", 2)) == (1, 2)  # a.png's output is shard 2's input
    before = _files(d)
    rc = main(["upscale", str(d), "-o", str(d), "-m", "bicubic-x2", "--force", "--shard", "1/2", "-q"])
    assert rc == 1 and "would overwrite an input" in capsys.readouterr().err
    assert _files(d) == before


# ------------------------------------------------------------------------------------------- eval
def _eval(args, out, capsys):
    rc = main(["eval", *args, "--out", str(out), "--no-progress"])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _tables(printed: str) -> str:
    return printed[: printed.index(" results from ")]


def _csv_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: v for k, v in r.items() if k != "runtime_s"} for r in csv.DictReader(f)]


def test_eval_shards_merge_to_the_unsharded_result(data_root, tmp_path, capsys):
    mine = tmp_path / "mine"
    shutil.copytree(data_root / "Set5" / "HR", mine)
    good = (mine / "bird.png").read_bytes()
    (mine / "broken.png").write_bytes(good[: len(good) // 3])  # skipped: its record must merge too
    args = ["--models", "bicubic,bilinear", "--datasets", "Set5,mine", "--set-path", f"mine={mine}",
            "--scales", "2,3", "--data-root", str(data_root), "--allow-missing"]  # fmt: skip
    rc, full_out, _ = _eval(args, tmp_path / "full", capsys)
    assert rc == 0
    owners = [shard_of(f"{d}/{p.name}", 2) for d, f in (("Set5", data_root / "Set5" / "HR"), ("mine", mine))
              for p in sorted(f.iterdir())]  # fmt: skip
    assert set(owners) == {1, 2}  # both shards have work
    for k in (1, 2):
        rc, _, err = _eval([*args, "--shard", f"{k}/2"], tmp_path / f"s{k}", capsys)
        assert rc == 0 and f"shard {k}/2" in err
    shard_doc = json.loads((tmp_path / "s1" / "results.json").read_text())
    assert shard_doc["header"]["shard"] == {"index": 1, "count": 2}
    merge = ["--merge", str(tmp_path / "s2"), str(tmp_path / "s1" / "results.json")]
    rc, _, err = _eval(merge, tmp_path / "merged", capsys)
    assert rc == 1 and "incomplete mine x2: 5 of 6 images" in err  # the merged run judges the whole set
    rc, merged_out, err = _eval([*merge, "--allow-missing", "--force"], tmp_path / "merged", capsys)
    assert rc == 0, err
    assert _tables(merged_out) == _tables(full_out)
    a = json.loads((tmp_path / "full" / "results.json").read_text())
    b = json.loads((tmp_path / "merged" / "results.json").read_text())
    strip = lambda rows: [{k: v for k, v in r.items() if k != "runtime_s"} for r in rows]  # noqa: E731
    assert strip(b["rows"]) == strip(a["rows"]) and len(a["rows"]) == 2 * 2 * (5 + 5)
    assert strip(b["summary"]) == strip(a["summary"])
    assert b["header"]["datasets"] == a["header"]["datasets"]
    assert any(s["image"] == "broken.png" for d in b["header"]["datasets"] for s in d["skipped"])
    assert b["header"]["protocol"] == a["header"]["protocol"] and "shard" not in b["header"]
    assert _csv_rows(tmp_path / "merged" / "results.csv") == _csv_rows(tmp_path / "full" / "results.csv")


def test_merge_refuses_what_is_not_one_sharded_run(data_root, tmp_path, capsys):
    args = ["--models", "bicubic", "--datasets", "Set5", "--scales", "2", "--data-root", str(data_root)]
    assert _eval([*args, "--shard", "1/2"], tmp_path / "s1", capsys)[0] == 0
    assert _eval([*args, "--scales", "3", "--shard", "2/2"], tmp_path / "s2x3", capsys)[0] == 0
    assert _eval(args, tmp_path / "plain", capsys)[0] == 0
    for files, needle in [
        ([tmp_path / "s1"], "shard(s) 2/2 missing"),
        ([tmp_path / "s1", tmp_path / "s1"], "both shard 1/2"),
        ([tmp_path / "s1", tmp_path / "s2x3"], "scales differs"),
        ([tmp_path / "plain"], "not a shard"),
        ([tmp_path / "nothing"], "no results.json"),
    ]:
        rc, _, err = _eval(["--merge", *map(str, files)], tmp_path / "m", capsys)
        assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1, (needle, err)
