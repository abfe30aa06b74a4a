"""`srlab data prepare`: the study's crop sets and FFHQ subset made from fake originals, checked pixel for
pixel against crops computed here; re-runs, files in the way, bad inputs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srlab.cli import main
from srlab.data import prepare as prep
from srlab.data.find import find_dataset
from srlab.errors import DataError

# odd and even sizes, one just above the crop and one far above it
SIZES = {"0001": (301, 257), "0002": (129, 131), "0003": (200, 455), "0004": (128, 128)}


def _png(path: Path, a: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)


def _fake_div2k(root: Path, folder: str, names=SIZES, seed=0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for stem, (h, w) in names.items():
        out[stem] = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        _png(root / folder / f"{stem}.png", out[stem])
    return out


def _opencv_crop(a: np.ndarray, size: int) -> np.ndarray:
    """The study's crop as its code computes it: x = int(W/2 - size/2), y = int(H/2 - size/2)."""
    h, w = a.shape[:2]
    x, y = int(w / 2 - size / 2), int(h / 2 - size / 2)
    return a[y : y + size, x : x + size]


def _read(p: Path) -> np.ndarray:
    return np.asarray(Image.open(p).convert("RGB"))


def test_train_crops_match_an_independent_crop_and_rerun_is_a_no_op(tmp_path, capsys):
    src = _fake_div2k(tmp_path, "DIV2K_train_HR")
    res = prep.prepare("DIV2K_train_crop128", tmp_path, progress=False)
    out = tmp_path / "DIV2K_train_crop128"
    assert res.written == 4 and res.out_dir == out
    assert sorted(p.name for p in out.glob("*.png")) == [f"{s}.png" for s in SIZES]
    for stem, a in src.items():
        got = _read(out / f"{stem}.png")
        assert got.shape == (128, 128, 3) and np.array_equal(got, _opencv_crop(a, 128))
    log = capsys.readouterr().out
    assert "wrote 4 images" in log and "only 4 of the 800" in log  # the fake set is incomplete: said so
    # the catalogue finds what was made
    ds = find_dataset("DIV2K_train_crop128", tmp_path)
    assert ds.hr_dir == out and len(ds) == 4 and not ds.complete
    # a second run writes nothing and says so
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    again = prep.prepare("DIV2K_train_crop128", tmp_path, progress=False)
    assert again.written == 0 and again.kept == 4
    assert "already prepared" in capsys.readouterr().out
    assert stamps == {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}


def test_valid_crops_128_and_256(tmp_path):
    names = {"0801": (300, 400), "0802": (257, 259)}
    src = _fake_div2k(tmp_path, "DIV2K_valid_HR", names, seed=1)
    for size in (128, 256):
        prep.prepare(f"DIV2K_valid_crop{size}", tmp_path, progress=False, log=lambda m: None)
        ds = find_dataset(f"DIV2K_valid_crop{size}", tmp_path)
        assert [p.name for p in ds.files] == ["0801.png", "0802.png"]
        for stem, a in src.items():
            assert np.array_equal(_read(ds.hr_dir / f"{stem}.png"), _opencv_crop(a, size))


def test_a_users_file_is_never_overwritten_without_force(tmp_path):
    src = _fake_div2k(tmp_path, "DIV2K_train_HR")
    out = tmp_path / "mine"
    theirs = np.zeros((128, 128, 3), np.uint8)
    _png(out / "0002.png", theirs)
    with pytest.raises(DataError) as info:
        prep.prepare("DIV2K_train_crop128", tmp_path, out=out, progress=False, log=lambda m: None)
    msg = str(info.value)
    assert str(out / "0002.png") in msg and "--force" in msg and "\n" not in msg
    assert np.array_equal(_read(out / "0002.png"), theirs)
    assert (out / "0001.png").is_file() and not (out / "0003.png").exists()  # stopped at the file in the way
    # a file that already holds exactly the crop is kept as it is; the interrupted run resumes
    _png(out / "0002.png", _opencv_crop(src["0002"], 128))
    res = prep.prepare("DIV2K_train_crop128", tmp_path, out=out, progress=False, log=lambda m: None)
    assert res.written == 2 and res.kept == 2
    # --force replaces a different file
    _png(out / "0003.png", theirs)
    os.remove(out / prep.MANIFEST)
    prep.prepare("DIV2K_train_crop128", tmp_path, out=out, force=True, progress=False, log=lambda m: None)
    assert np.array_equal(_read(out / "0003.png"), _opencv_crop(src["0003"], 128))


def test_bad_inputs_give_one_line_errors(tmp_path, capsys):
    # the original set is not there: says what it is made from and how to get that
    assert main(["data", "prepare", "DIV2K_valid_crop128", "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "DIV2K_valid_HR" in err and "srlab data fetch DIV2K_valid_HR" in err and "\n" not in err
    # a corrupt original
    _fake_div2k(tmp_path, "DIV2K_train_HR", {"0001": (200, 200)})
    (tmp_path / "DIV2K_train_HR" / "0002.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    assert main(["data", "prepare", "DIV2K_train_crop128", "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "0002.png" in err and "\n" not in err and "run again" in err
    # an image smaller than the crop
    _fake_div2k(tmp_path, "DIV2K_train_HR", {"0002": (100, 300)})
    with pytest.raises(DataError, match="smaller than the 128x128 centre crop"):
        prep.prepare("DIV2K_train_crop128", tmp_path, progress=False, log=lambda m: None)
    # not a derived set / not a set at all
    with pytest.raises(DataError, match="nothing to prepare"):
        prep.prepare("Set5", tmp_path)
    with pytest.raises(DataError, match="unknown data set"):
        prep.prepare("DIV2K_crop999", tmp_path)


def test_ffhq_subset_takes_the_first_thumbnails_across_sub_folders(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    thumbs = {}
    for sub, stems in {"00000": ["00000", "00001", "00002"], "01000": ["01000", "01001"]}.items():
        for s in stems:
            thumbs[s] = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
            _png(tmp_path / "thumbnails128x128" / sub / f"{s}.png", thumbs[s])
    (tmp_path / "thumbnails128x128" / "LICENSE.txt").write_text("not an image")
    # the recipe takes the first 1000; four of five shows the selection order on a small fake
    monkeypatch.setitem(
        prep.RECIPES,
        "FFHQ_thumbnails128",
        prep.Recipe("FFHQ_thumbnails128", "FFHQ_thumbnails128x128", first=4, size=128),
    )
    res = prep.prepare("FFHQ_thumbnails128", tmp_path, progress=False, log=lambda m: None)
    assert res.written == 4
    ds = find_dataset("FFHQ_thumbnails128", tmp_path)
    assert [p.stem for p in ds.files] == ["00000", "00001", "00002", "01000"]
    for p in ds.files:
        assert np.array_equal(_read(p), thumbs[p.stem])
    # a full-size image where a thumbnail should be
    _png(tmp_path / "thumbnails128x128" / "00000" / "00000.png", np.zeros((1024, 1024, 3), np.uint8))
    with pytest.raises(DataError, match="not a 128x128 image"):
        prep.prepare(
            "FFHQ_thumbnails128", tmp_path, out=tmp_path / "other", progress=False, log=lambda m: None
        )


def test_real_recipes_and_catalogue_agree():
    from srlab.data.catalog import DATASETS

    assert set(prep.RECIPES) == {n for n, s in DATASETS.items() if s.made_from}
    for name, r in prep.RECIPES.items():
        assert DATASETS[name].made_from == r.source
    assert prep.RECIPES["FFHQ_thumbnails128"].first == 1000 and DATASETS["FFHQ_thumbnails128"].count == 1000
    assert prep.RECIPES["DIV2K_train_crop128"].crop == 128 and prep.RECIPES["DIV2K_valid_crop256"].crop == 256


def test_cli_prepare_and_list(tmp_path, capsys):
    _fake_div2k(tmp_path, "DIV2K_valid_HR", {"0801": (300, 400)})
    assert main(["data", "list", "--data-root", str(tmp_path)]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("DIV2K_valid_crop128 "))
    assert "missing" in line and "srlab data prepare DIV2K_valid_crop128" in line
    args = ["data", "prepare", "DIV2K_valid_crop128", "DIV2K_valid_crop256", "--data-root", str(tmp_path)]
    assert main(args) == 0
    assert capsys.readouterr().out.count("wrote 1 image to") == 2
    assert main(args) == 0
    assert capsys.readouterr().out.count("nothing to do") == 2
    assert main(["data", "list", "--data-root", str(tmp_path)]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("DIV2K_valid_crop256 "))
    assert "1/100" in line and str(tmp_path / "DIV2K_valid_crop256") in line


# ------------------------------------------------------------------------------------- the study's data
def test_study_roles_from_originals_and_everything_missing_listed(tmp_path):
    from srlab.study.datasets import missing_inputs, prepare_data_root
    from srlab.study.records import Setup
    from srlab.study.spec import load_spec

    spec = load_spec("study")
    root = tmp_path / "data"
    root.mkdir()
    # nothing there: every role, the training set (blocking) and the pretrained file, each with where to get it
    items = missing_inputs(spec, root)
    assert [(m["kind"], m["role"]) for m in items if m["kind"] != "weights"] == [
        ("role", "natural"),
        ("role", "faces"),
        ("role", "anime"),
        ("train", "train"),
    ]
    train = next(m for m in items if m["kind"] == "train")
    assert (
        train["blocking"]
        and "srlab data prepare DIV2K_train_crop128" in train["where"]["DIV2K_train_crop128"]
    )
    setup = Setup(spec, tmp_path / "out0", root, "cpu", log=lambda m: None)
    with pytest.raises(DataError) as info:  # the roles are collected before the training set stops the run
        prepare_data_root(setup)
    assert "DIV2K_train_crop128" in str(info.value) and "natural, faces, anime" in str(info.value)
    found = prepare_data_root(setup, strict=False)
    assert [m["role"] for m in found.missing] == ["natural", "faces", "anime"]
    # the originals only: the study's sets are made from them into the run folder
    train_src = _fake_div2k(root, "DIV2K_train_HR", {"0001": (200, 300), "0002": (131, 129)})
    valid_src = _fake_div2k(root, "DIV2K_valid_HR", {"0801": (300, 401)}, seed=3)
    rng = np.random.default_rng(4)
    for i in range(3):
        _png(
            root / "thumbnails128x128" / "00000" / f"{i:05d}.png",
            rng.integers(0, 256, (128, 128, 3), np.uint8),
        )
    for i in range(2):
        _png(root / "selfie2anime" / "testB" / f"{i:04d}.jpg", rng.integers(0, 256, (256, 256, 3), np.uint8))
    assert [m["kind"] for m in missing_inputs(spec, root)] in ([], ["weights"])
    found = prepare_data_root(Setup(spec, tmp_path / "out", root, "cpu", log=lambda m: None))
    assert found.missing == () and found.missing_inputs == ()
    tr = found.train_set
    assert tr["name"] == "DIV2K_train_crop128" and tr["images"] == 2
    for stem, a in train_src.items():
        assert np.array_equal(_read(Path(tr["path"]) / f"{stem}.png"), _opencv_crop(a, 128))
    nat = found.roles["natural"]
    (crop,) = Path(nat["path"]).glob("*.png")
    assert np.array_equal(_read(crop), _opencv_crop(valid_src["0801"], 128)) and not nat["substituted"]
    faces, anime = found.roles["faces"], found.roles["anime"]
    assert (
        faces["dataset"] == "FFHQ_thumbnails128"
        and faces["n"] == 3
        and "FFHQ_thumbnails128x128" in faces["source"]
    )
    assert Path(anime["path"]) == root / "selfie2anime" / "testB" and anime["n"] == 2  # whole set: in place
