"""One writer, one JSON rule: every file srlab writes goes through srlab.atomic, every JSON text through
srlab.serialize, and NaN and infinity survive a write and a read back as themselves."""

from __future__ import annotations

import ast
import math
import os
from pathlib import Path

import pytest

from srlab import atomic
from srlab.errors import SrlabError
from srlab.serialize import dumps, jsonable, loads

PKG = Path(__file__).resolve().parents[1] / "src" / "srlab"
WRITER = PKG / "atomic.py"
JSON_RULE = PKG / "serialize.py"


def _violations(path: Path) -> list[str]:
    """What in ``path`` writes a file or JSON text outside the one writer / the one JSON rule."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(PKG)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import) and any(a.name == "tempfile" for a in node.names):
            out.append(f"{where} imports tempfile")
        if isinstance(node, ast.ImportFrom) and node.module == "tempfile":
            out.append(f"{where} imports from tempfile")
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Attribute):
            owner = f.value.id if isinstance(f.value, ast.Name) else None
            if owner == "os" and f.attr in ("replace", "rename", "link", "renames"):
                out.append(f"{where} os.{f.attr}")
            if owner == "shutil" and f.attr == "move":
                out.append(f"{where} shutil.move")
            if owner == "json" and f.attr in ("dump", "dumps", "load", "loads") and path != JSON_RULE:
                out.append(f"{where} json.{f.attr}")
            if f.attr in ("write_text", "write_bytes"):
                out.append(f"{where} .{f.attr}() (not atomic)")
            if f.attr == "rename" or (f.attr == "replace" and len(node.args) == 1 and not node.keywords):
                out.append(f"{where} .{f.attr}() (a path rename?)")
        if isinstance(f, ast.Name) and f.id == "open":
            mode = (
                node.args[1]
                if len(node.args) > 1
                else next((k.value for k in node.keywords if k.arg == "mode"), None)
            )
            if (
                isinstance(mode, ast.Constant)
                and isinstance(mode.value, str)
                and set(mode.value) & set("wx+")
            ):
                out.append(f"{where} open(..., {mode.value!r})")
    return out


def test_the_checker_sees_each_kind_of_write(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import os, json, tempfile\n"
        "os.replace('a', 'b')\n"
        "p.write_text('x')\n"
        "json.dump({}, f)\n"
        "open('f', 'w')\n"
        "tmp.replace(target)\n"
    )
    found = _violations_at(bad)
    assert len(found) == 6, found
    good = tmp_path / "good.py"
    good.write_text("s = 'a'.replace('a', 'b')\nopen('log', 'a')\nopen('f', 'rb')\n")
    assert _violations_at(good) == []


def _violations_at(path: Path) -> list[str]:
    global PKG
    saved, PKG = PKG, path.parent
    try:
        return _violations(path)
    finally:
        PKG = saved


def test_every_file_write_goes_through_srlab_atomic():
    found = []
    for path in sorted(PKG.rglob("*.py")):
        if path != WRITER:
            found += _violations(path)
    assert not found, "writes outside srlab.atomic / JSON outside srlab.serialize:\n" + "\n".join(found)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1e308, -0.0, 0.1])
def test_non_finite_floats_come_back_as_themselves(value):
    back = loads(dumps({"psnr": value, "rows": [value]}))
    for got in (back["psnr"], back["rows"][0]):
        if math.isnan(value):
            assert math.isnan(got)
        else:
            assert got == value and math.copysign(1, got) == math.copysign(1, value)


def test_the_json_text_is_strict_and_names_stay_strings():
    text = dumps({"a": math.nan, "b": math.inf, "name": "Set5"})
    assert "NaN" in text and '"Infinity"' in text
    import json

    json.loads(text, parse_constant=lambda t: pytest.fail(f"bare {t} token"))
    assert loads(text)["name"] == "Set5"
    with pytest.raises(ValueError):
        loads('{"a": NaN}')  # a non-strict writer's bare token is refused, as strict readers do
    assert jsonable(Path("/x")) == "/x" and jsonable((1, 2)) == [1, 2]


def test_write_json_is_atomic_and_keeps_what_was_there_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "results.json"
    atomic.write_json(target, {"psnr": math.inf})
    assert loads(target.read_text())["psnr"] == math.inf
    assert oct(target.stat().st_mode & 0o777) == oct(atomic.file_mode())

    def boom(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(SrlabError, match="writing failed .*No space left.*nothing was written"):
        atomic.write_json(target, {"psnr": 1.0})
    assert loads(target.read_text())["psnr"] == math.inf  # the earlier file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temporary file left


def test_no_overwrite_refuses_an_existing_file(tmp_path):
    target = tmp_path / "a.txt"
    atomic.write_text(target, "first")
    with pytest.raises(SrlabError, match="already exists"):
        atomic.write_text(target, "second", overwrite=False)
    assert target.read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_a_nan_score_is_not_read_back_as_a_perfect_one(tmp_path):
    from srlab.eval.results import read_results, write_results

    rows = [
        {"model": "m", "dataset": "d", "scale": 2, "image": "a", "psnr_y": math.nan, "psnr_rgb": math.inf},
    ]
    paths = write_results(rows, {"datasets": []}, tmp_path)
    doc = read_results(paths["json"])
    assert math.isnan(doc["rows"][0]["psnr_y"]) and doc["rows"][0]["psnr_rgb"] == math.inf
