"""srlab.imaging.files: the one image lister (extensions, hidden files, natural order, recursion, errors)."""

from __future__ import annotations

import pytest

from srlab.errors import DataError
from srlab.imaging.files import IMAGE_EXTENSIONS, is_image_file, list_images, natural_key, require_images


def _touch(folder, *names):
    for n in names:
        p = folder / n
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")


def _names(paths):
    return [p.name for p in paths]


def test_extensions_in_any_case(tmp_path):
    _touch(tmp_path, "a.PNG", "b.Jpg", "c.jpeg", "d.TIFF", "e.webp", "f.bmp")
    assert _names(list_images(tmp_path)) == ["a.PNG", "b.Jpg", "c.jpeg", "d.TIFF", "e.webp", "f.bmp"]
    assert all(e == e.lower() and e.startswith(".") for e in IMAGE_EXTENSIONS)


def test_non_image_files_and_folders_ignored(tmp_path):
    _touch(tmp_path, "a.png", "notes.txt", "meta.json", "noext", "img.png.part")
    (tmp_path / "dir.png").mkdir()
    assert _names(list_images(tmp_path)) == ["a.png"]
    assert not is_image_file(tmp_path / "dir.png") and not is_image_file(tmp_path / "notes.txt")


def test_hidden_files_skipped(tmp_path):
    _touch(tmp_path, ".hidden.png", "._mac.png", "shown.png")
    assert _names(list_images(tmp_path)) == ["shown.png"]


def test_natural_order(tmp_path):
    _touch(tmp_path, "img10.png", "img2.png", "img1.png", "Img3.png", "img02b.png")
    assert _names(list_images(tmp_path)) == ["img1.png", "img2.png", "img02b.png", "Img3.png", "img10.png"]
    files = list_images(tmp_path)
    assert files == sorted(files, key=natural_key)


def test_pattern_and_recursive_flag(tmp_path):
    _touch(tmp_path, "top1.png", "x_top.png", "sub/deep2.png", "sub/deeper/deep10.png")
    assert _names(list_images(tmp_path)) == ["top1.png", "x_top.png"]
    assert _names(list_images(tmp_path, "top*")) == ["top1.png"]
    rec = list_images(tmp_path, recursive=True)
    # grouped by folder, natural order inside each
    assert [p.relative_to(tmp_path).as_posix() for p in rec] == [
        "top1.png",
        "x_top.png",
        "sub/deep2.png",
        "sub/deeper/deep10.png",
    ]
    assert _names(require_images(tmp_path / "sub", recursive=True)) == ["deep2.png", "deep10.png"]


def test_missing_folder_is_empty_list_but_require_images_says_why(tmp_path):
    missing = tmp_path / "nope"
    assert list_images(missing) == []
    with pytest.raises(DataError) as ei:
        require_images(missing, what="training folder")
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith(f"training folder {missing} does not exist")

    f = tmp_path / "file.png"
    f.write_bytes(b"x")
    assert list_images(f) == []
    with pytest.raises(DataError, match=r"is not a folder") as ei:
        require_images(f)
    assert str(f) in str(ei.value) and "\n" not in str(ei.value)

    empty = tmp_path / "empty"
    empty.mkdir()
    _touch(empty, "readme.txt", ".hidden.png")
    with pytest.raises(DataError, match="holds no image files") as ei:
        require_images(empty, what="LR folder")
    assert str(ei.value).startswith(f"LR folder {empty} ") and "\n" not in str(ei.value)


def test_recursive_listing_skips_hidden_folders(tmp_path):
    from PIL import Image as _PIL

    from srlab.imaging.files import list_images

    for rel in ("a.png", "sub/b.png", ".cache/c.png", "sub/.thumbs/d.png"):
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        _PIL.new("RGB", (2, 2)).save(p)
    got = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path, recursive=True)]
    assert got == ["a.png", "sub/b.png"]
