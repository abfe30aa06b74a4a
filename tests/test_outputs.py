"""srlab.inference.outputs without the command line: names, mirrored trees, collisions, never the input,
existing outputs only with force, resume -- the rules `srlab upscale`, Upscaler.upscale_file and a service
share."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from srlab.errors import ConfigError
from srlab.imaging.io import Image, ImageError, read_image, write_image
from srlab.inference import Upscaler
from srlab.inference.outputs import (
    REALESRGAN_DEFAULTS,
    OutputPlan,
    OutputRules,
    Skipped,
    check_target,
    expand_inputs,
)

RNG = np.random.default_rng(3)


def _img(path: Path, alpha: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    a = RNG.integers(0, 256, (5, 6), dtype=np.uint8) if alpha else None
    return write_image(path, RNG.integers(0, 256, (5, 6, 3), dtype=np.uint8), alpha=a)


def test_names_suffixes_and_formats(tmp_path):
    files = [_img(tmp_path / "in" / n) for n in ("a.png", "b.jpg")]
    files.append(tmp_path / "in" / "c.tga")  # naming reads no file
    out = tmp_path / "o"
    plan = OutputPlan(OutputRules(), files, str(out), scale=4)
    assert [p.name for p in plan.paths] == ["a_x4.png", "b_x4.jpg", "c_x4.png"]  # TGA is not written: PNG
    assert [p.name for p in OutputPlan(OutputRules(), files, str(out), scale=1.5).paths][0] == "a_x1.5.png"
    # Real-ESRGAN's joining rule, and its defaults with -n
    named = OutputRules(suffix=REALESRGAN_DEFAULTS["suffix"], ext="auto")
    assert named.ext == "same"
    assert [p.name for p in OutputPlan(named, files, str(out), scale=4).paths][:2] == [
        "a_out.png",
        "b_out.jpg",
    ]
    assert (
        OutputPlan(OutputRules(suffix="-sr", ext="webp"), files, str(out), scale=2).paths[1].name
        == "b-sr.webp"
    )
    # one input and an image file name: that file; a trailing separator means a folder
    assert OutputPlan(OutputRules(), files[:1], str(tmp_path / "x.tif"), scale=2).single_file
    folder = OutputPlan(OutputRules(), files[:1], str(tmp_path / "x.tif") + os.sep, scale=2)
    assert not folder.single_file and folder.paths[0].name == "a_x2.png"


@pytest.mark.parametrize(
    "kw,needle",
    [
        ({"force": True, "skip_existing": True}, "pass one"),
        ({"suffix": "../up"}, "path separators"),
        ({"suffix": "a/b"}, "path separators"),
        ({"ext": "gif"}, "--ext 'gif'"),
    ],
)
def test_bad_rules_are_one_line_config_errors(kw, needle):
    with pytest.raises(ConfigError, match=needle) as ei:
        OutputRules(**kw)
    assert "\n" not in str(ei.value)


def test_trees_are_mirrored_for_folders_and_globs(tmp_path):
    root = tmp_path / "in"
    for rel in ("top.png", "l1/a.png", "l1/l2/b.png"):
        _img(root / rel)
    rels: dict = {}
    notes: list = []
    files, problems = expand_inputs([str(root)], rels=rels, notes=notes)
    assert [f.name for f in files] == ["top.png"] and not problems and "--recursive" in notes[0]
    rels = {}
    files, _ = expand_inputs([str(root)], recursive=True, rels=rels)
    plan = OutputPlan(OutputRules(), files, str(tmp_path / "o"), scale=2, rels=rels)
    got = sorted(p.relative_to(tmp_path / "o").as_posix() for p in plan.paths)
    assert got == ["l1/a_x2.png", "l1/l2/b_x2.png", "top_x2.png"]
    rels = {}
    files, _ = expand_inputs([str(root / "l1" / "**" / "*.png")], rels=rels)
    plan = OutputPlan(OutputRules(), files, str(tmp_path / "g"), scale=2, rels=rels)
    assert sorted(p.relative_to(tmp_path / "g").as_posix() for p in plan.paths) == ["a_x2.png", "l2/b_x2.png"]
    _, problems = expand_inputs([str(tmp_path / "nope"), str(tmp_path / "*.none")])
    assert len(problems) == 2 and all("\n" not in p for p in problems)


def test_an_input_is_never_the_output_not_even_with_force_or_through_a_hard_link(tmp_path):
    a = _img(tmp_path / "a.png")
    before = a.read_bytes()
    for dst in (a, tmp_path / "." / "a.png"):
        with pytest.raises(ImageError, match="would overwrite an input file"):
            check_target(a, dst, overwrite=True)
    link = tmp_path / "link.png"
    os.link(a, link)
    with pytest.raises(ImageError, match="would overwrite an input file"):
        check_target(a, link, overwrite=True)
    # in a batch, no input's output may be another input either
    b = _img(tmp_path / "b.png")
    plan = OutputPlan(OutputRules(suffix="", force=True), [a], str(tmp_path), scale=2, inputs=[a, b])
    with pytest.raises(ImageError, match="would overwrite an input"):
        plan.claim(a, tmp_path / "b.png")
    assert a.read_bytes() == before


def test_existing_outputs_need_force_or_are_kept_with_skip_existing_and_clashes_are_named(tmp_path):
    a, b = _img(tmp_path / "in" / "a.png"), _img(tmp_path / "in" / "a.bmp")
    out = tmp_path / "o"
    _img(out / "a_x2.png")
    with pytest.raises(ImageError, match="already exists; pass --skip-existing to keep it or --force"):
        check_target(a, out / "a_x2.png")
    assert check_target(a, out / "a_x2.png", overwrite=True) == out / "a_x2.png"
    with pytest.raises(Skipped):
        check_target(a, out / "a_x2.png", skip_existing=True)
    # --ext png: two inputs, one output name
    plan = OutputPlan(OutputRules(ext="png", skip_existing=True), [a, b], str(out), scale=2)
    assert plan.paths == [out / "a_x2.png"] * 2
    assert plan.resume(a, plan.paths[0])  # exists: skipped before decoding
    assert not plan.resume(b, plan.paths[1])  # the second is still the clash
    with pytest.raises(ImageError, match=f"is also the output of {a}"):
        plan.claim(b, plan.paths[1])


def test_transparency_goes_to_png_only_where_the_extension_would_lose_it(tmp_path):
    rgba = Image(pixels=np.zeros((4, 4, 3), np.uint8), alpha=np.zeros((4, 4), np.uint8))
    rgb = Image(pixels=np.zeros((4, 4, 3), np.uint8))
    a, b = _img(tmp_path / "a.jpg"), _img(tmp_path / "b.jpg")
    plan = OutputPlan(OutputRules(), [a, b], str(tmp_path / "o"), scale=2)
    assert plan.claim(a, plan.paths[0], rgba).name == "a_x2.png"
    assert plan.claim(b, plan.paths[1], rgb).name == "b_x2.jpg"
    asked = OutputPlan(OutputRules(ext="jpg"), [a], str(tmp_path / "o2"), scale=2)
    assert asked.claim(a, asked.paths[0], rgba).name == "a_x2.jpg"  # --ext asked for JPEG: flattened


def test_upscale_file_refuses_an_existing_output_before_upscaling(tmp_path, monkeypatch):
    src = _img(tmp_path / "a.png")
    dst = _img(tmp_path / "b.png")
    kept = dst.read_bytes()
    up = Upscaler("bicubic-x2", device="cpu")
    calls = []
    real = Upscaler.upscale_image
    monkeypatch.setattr(
        Upscaler, "upscale_image", lambda self, *a, **k: calls.append(1) or real(self, *a, **k)
    )
    with pytest.raises(ImageError, match="already exists"):
        up.upscale_file(src, dst)
    with pytest.raises(ImageError, match="input file"):
        up.upscale_file(src, lambda img: src, overwrite=True)  # a chosen name is checked too
    assert calls == [] and dst.read_bytes() == kept
    res = up.upscale_file(src, dst, overwrite=True)
    assert calls == [1] and read_image(dst).pixels.shape == (10, 12, 3) == res.pixels.shape


def test_transparency_rule_does_not_depend_on_whether_the_folder_exists_and_a_named_file_keeps_its_name(
    tmp_path, capsys
):
    from srlab.cli import main

    src = tmp_path / "photo.jpg"  # a PNG with transparency behind a .jpg name
    _img(tmp_path / "t.png", alpha=True).rename(src)
    for out in (tmp_path / "new", tmp_path / "existing"):
        (tmp_path / "existing").mkdir(exist_ok=True)
        assert main(["upscale", str(src), "-o", str(out), "-m", "bicubic-x2", "-q"]) == 0
        assert [p.name for p in out.iterdir()] == ["photo_x2.png"]
        assert read_image(out / "photo_x2.png").alpha is not None
    named = tmp_path / "named.jpg"
    assert main(["upscale", str(src), "-o", str(named), "-m", "bicubic-x2", "-q"]) == 0
    assert named.is_file() and not named.with_suffix(".png").exists()
    assert read_image(named).alpha is None and "flattening onto white" in capsys.readouterr().err
