"""Known data sets (catalog), finding them (layouts, data root, overrides), `srlab data list|fetch`."""

from __future__ import annotations

import hashlib
import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srlab.cli import main
from srlab.data.catalog import DATASETS, DatasetSpec, Layout, get_spec
from srlab.data.find import find_dataset, parse_set_paths, resolve_data_root
from srlab.errors import DataError


def _img(path: Path, size=(8, 6)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((size[1], size[0], 3), np.uint8)).save(path)
    return path


def test_shared_layouts_are_recognised(data_root):
    expect = {
        "Set5": ("Set5/HR", 5),
        "Set14": ("Set14/HR", 14),
        "BSD100": ("BSD100/HR", 100),  # alias of B100
        "T91": ("T91", 91),
        "DIV2K_train_crop128": ("DIV2K_train_crop128", 800),
    }
    for name, (rel, n) in expect.items():
        ds = find_dataset(name, data_root)
        assert ds.hr_dir == data_root / rel and len(ds) == n and ds.complete
    s5 = find_dataset("set5", data_root)  # case-insensitive
    assert [p.name for p in s5.files] == ["baby.png", "bird.png", "butterfly.png", "head.png", "woman.png"]
    assert find_dataset("B100", data_root).name == "B100"


def test_alternative_layouts(tmp_path):
    for n in ("baby", "bird"):
        _img(tmp_path / "benchmark" / "Set5" / "HR" / f"{n}.png")
    _img(tmp_path / "benchmark" / "Set5" / "LR_bicubic" / "X2" / "babyx2.png")
    ds = find_dataset("Set5", tmp_path)
    assert ds.hr_dir == tmp_path / "benchmark/Set5/HR" and len(ds) == 2 and not ds.complete
    assert ds.lr_dir(2) == tmp_path / "benchmark/Set5/LR_bicubic/X2" and ds.lr_dir(3) is None
    # SelfExSR: HR and LR files side by side; only *_HR files count
    for i in (1, 2, 3):
        _img(tmp_path / "Set14" / "image_SRF_2" / f"img_00{i}_SRF_2_HR.png")
        _img(tmp_path / "Set14" / "image_SRF_2" / f"img_00{i}_SRF_2_LR.png")
    ds = find_dataset("Set14", tmp_path)
    assert len(ds) == 3 and all(p.name.endswith("_HR.png") for p in ds.files)
    # BasicSR's GTmod12, a flat folder, DIV2K valid, natural sort order
    _img(tmp_path / "Urban100" / "GTmod12" / "img_001.png")
    assert find_dataset("Urban100", tmp_path).hr_dir.name == "GTmod12"
    for n in ("img10", "img2", "img1"):
        _img(tmp_path / "General100" / f"{n}.bmp")
    (tmp_path / "General100" / "notes.txt").write_text("x")
    assert [p.stem for p in find_dataset("General100", tmp_path).files] == ["img1", "img2", "img10"]
    _img(tmp_path / "DIV2K_valid_HR" / "0801.png")
    assert len(find_dataset("DIV2K_valid", tmp_path)) == 1
    # FFHQ is searched recursively (00000/, 01000/, ...)
    _img(tmp_path / "thumbnails128x128" / "00000" / "00000.png")
    _img(tmp_path / "thumbnails128x128" / "01000" / "01000.png")
    assert len(find_dataset("FFHQ", tmp_path)) == 2


def test_the_studys_folders_are_found(tmp_path):
    # selfie2anime's zip: selfie2anime/{trainA,trainB,testA,testB}; the study tested on testB (anime)
    for sub in ("trainA", "trainB", "testA", "testB"):
        for i in range(2 if sub == "testB" else 3):
            _img(tmp_path / "selfie2anime" / sub / f"{i:04d}.jpg", (256, 256))
    ds = find_dataset("selfie2anime", tmp_path)
    assert ds.hr_dir == tmp_path / "selfie2anime" / "testB" and len(ds) == 2
    # the folder itself as a name, relative to the data root: the catalogued set it is a layout of
    rel = find_dataset("selfie2anime/testB", tmp_path)
    assert rel.name == "selfie2anime" and rel.spec is get_spec("selfie2anime") and len(rel) == 2
    other = find_dataset("selfie2anime/testA", tmp_path)  # any other folder: an ad-hoc set of its images
    assert other.spec is None and len(other) == 3
    with pytest.raises(DataError, match="unknown data set"):
        find_dataset("selfie2anime/nothing", tmp_path)
    with pytest.raises(DataError, match="unknown data set"):
        find_dataset("../outside", tmp_path / "selfie2anime")
    # unzipped into a folder of the same name
    _img(tmp_path / "nested" / "selfie2anime" / "selfie2anime" / "testB" / "0000.jpg")
    assert len(find_dataset("selfie2anime_testB", tmp_path / "nested")) == 1
    # FFHQ: the full thumbnails in numbered sub-folders; the study's subset is made from them
    _img(tmp_path / "ffhq-dataset" / "thumbnails128x128" / "00000" / "00000.png")
    full = find_dataset("FFHQ_thumbnails128x128", tmp_path)
    assert full.name == "FFHQ_thumbnails128x128" and len(full) == 1
    with pytest.raises(DataError) as info:
        find_dataset("FFHQ_thumbnails128", tmp_path)
    assert "srlab data prepare FFHQ_thumbnails128" in str(info.value)


def test_missing_and_unknown_sets_say_what_to_do(tmp_path):
    with pytest.raises(DataError, match=r"Urban100 not found under .*srlab data fetch Urban100"):
        find_dataset("Urban100", tmp_path)
    with pytest.raises(DataError, match=r"Manga109 not found.*manga109.org"):
        find_dataset("Manga109", tmp_path)
    with pytest.raises(DataError, match=r"did you mean 'Set1?[45]'\?.*--set-path Set15=FOLDER"):
        find_dataset("Set15", tmp_path)


def test_set_path_overrides(tmp_path):
    _img(tmp_path / "mine" / "a.png")
    _img(tmp_path / "mine" / "b.jpg")
    ds = find_dataset("Set5", tmp_path / "nowhere", set_paths={"Set5": tmp_path / "mine"})
    assert ds.hr_dir == tmp_path / "mine" and len(ds) == 2 and ds.spec.name == "Set5"
    # a set's root folder: its HR/ inside is used
    _img(tmp_path / "root5" / "HR" / "c.png")
    assert find_dataset("Set5", None, set_paths={"set5": tmp_path / "root5"}).hr_dir == tmp_path / "root5/HR"
    # ad-hoc names
    adhoc = find_dataset("Holiday", None, set_paths={"Holiday": tmp_path / "mine"})
    assert adhoc.spec is None and adhoc.complete and adhoc.name == "Holiday"
    with pytest.raises(DataError, match="no such folder"):
        find_dataset("Set5", None, set_paths={"Set5": tmp_path / "nope"})
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        find_dataset("Set5", None, set_paths={"Set5": tmp_path / "empty"})
    assert parse_set_paths(["Set5=/a/b", "X=/c,Y=/d"]) == {
        "Set5": Path("/a/b"),
        "X": Path("/c"),
        "Y": Path("/d"),
    }
    with pytest.raises(DataError, match="NAME=FOLDER"):
        parse_set_paths(["Set5"])


def test_data_root_resolution(tmp_path, monkeypatch):
    monkeypatch.delenv("SRLAB_DATA_ROOT", raising=False)
    monkeypatch.delenv("SRLAB_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    work = tmp_path / "proj" / "repo"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    assert resolve_data_root() == tmp_path / "cache" / "srlab" / "data"
    # the one cache root: $SRLAB_CACHE wins over $XDG_CACHE_HOME
    monkeypatch.setenv("SRLAB_CACHE", str(tmp_path / "srlab-cache"))
    assert resolve_data_root() == tmp_path / "srlab-cache" / "data"
    (tmp_path / "proj" / "shared" / "data").mkdir(parents=True)  # a ../shared/data is never looked at
    assert resolve_data_root() == tmp_path / "srlab-cache" / "data"
    monkeypatch.setenv("SRLAB_DATA_ROOT", str(tmp_path / "env"))
    assert resolve_data_root() == tmp_path / "env"
    assert resolve_data_root(tmp_path / "explicit") == tmp_path / "explicit"


def test_every_spec_is_complete():
    names = {
        "DIV2K_train_HR",
        "DIV2K_valid_HR",
        "Flickr2K",
        "FFHQ_thumbnails128",
        "selfie2anime",
        "Set5",
        "Set14",
    }
    names |= {"B100", "Urban100", "Manga109", "T91", "General100", "BSD200", "DIV2K_train_crop128"}
    names |= {"DIV2K_valid_crop128", "DIV2K_valid_crop256", "FFHQ_thumbnails128x128"}
    assert names <= set(DATASETS)
    for spec in DATASETS.values():
        assert spec.url and spec.layouts and spec.count and spec.role in ("train", "test")
        assert spec.download is None or spec.download.startswith(("http://", "https://"))
        assert get_spec(spec.name) is spec and all(get_spec(a.upper()) is spec for a in spec.aliases)
        assert spec.made_from is None or DATASETS[spec.made_from].made_from is None
    # the catalogue holds no protocol detail (the study's centre crops live in srlab.eval.protocols)
    assert not any("crop" in f for f in DatasetSpec.__dataclass_fields__)


def test_data_list_cli(data_root, tmp_path, capsys):
    assert main(["data", "list", "--data-root", str(data_root)]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("Set14 "))
    assert "complete" in line and "14/14" in line
    line = next(ln for ln in out.splitlines() if ln.startswith("Urban100 "))
    assert "missing" in line and "srlab data fetch Urban100" in line
    _img(tmp_path / "Set5" / "baby.png")
    assert main(["data", "list", "--data-root", str(tmp_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    s5 = next(r for r in doc["datasets"] if r["name"] == "Set5")
    assert s5["status"] == "incomplete" and s5["found"] == 1 and s5["expected"] == 5


# ------------------------------------------------------------------------------------------- fetch


def _fake_spec(monkeypatch, archive: Path, sha: str | None, count=2):
    spec = DatasetSpec(
        "FakeSet",
        "test set",
        count,
        "https://example.org/fake",
        download=archive.as_uri(),
        sha256=sha,
        layouts=(Layout("FakeSet/HR"),),
    )
    monkeypatch.setitem(DATASETS, "FakeSet", spec)
    return spec


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_fetch_downloads_checks_and_extracts(tmp_path, monkeypatch, capsys, kind):
    src = tmp_path / "src"
    for n in ("a", "b"):
        _img(src / "FakeSet" / "HR" / f"{n}.png")
    archive = tmp_path / f"fake.{kind}"
    if kind == "zip":
        with zipfile.ZipFile(archive, "w") as z:
            for p in sorted(src.rglob("*.png")):
                z.write(p, p.relative_to(src).as_posix())
    else:
        with tarfile.open(archive, "w") as t:
            t.add(src / "FakeSet", arcname="FakeSet")
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    _fake_spec(monkeypatch, archive, sha)
    root = tmp_path / "root"
    assert main(["data", "fetch", "FakeSet", "--data-root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "matches the registry" in out and "2 images" in out
    assert sorted(p.name for p in (root / "FakeSet" / "HR").iterdir()) == ["a.png", "b.png"]
    assert not (root / "downloads" / archive.name).exists()  # archive removed after extraction
    assert main(["data", "fetch", "FakeSet", "--data-root", str(root)]) == 0
    assert "already complete" in capsys.readouterr().out


def test_fetch_refuses_bad_checksum_and_unsafe_archives(tmp_path, monkeypatch, capsys):
    archive = tmp_path / "fake.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("FakeSet/HR/a.png", b"x")
    _fake_spec(monkeypatch, archive, "0" * 64)
    root = tmp_path / "root"
    assert main(["data", "fetch", "FakeSet", "--data-root", str(root)]) == 2
    assert "sha256 mismatch" in capsys.readouterr().err
    assert not (root / "FakeSet").exists() and not list((root / "downloads").glob("*"))
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../outside.png", b"x")
    _fake_spec(monkeypatch, evil, None)
    assert main(["data", "fetch", "FakeSet", "--data-root", str(root)]) == 2
    assert "unsafe" in capsys.readouterr().err
    assert not (tmp_path / "outside.png").exists()


def test_fetch_without_direct_url_says_where(tmp_path, capsys):
    assert main(["data", "fetch", "selfie2anime", "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no direct download" in err and "UGATIT" in err and str(tmp_path / "selfie2anime/testB") in err
