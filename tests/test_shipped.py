"""The models srlab trained and ships: each loads by name, its metadata is whole, and ``srlab eval`` re-makes
the Set5 numbers recorded at release to 0.01 dB."""

from __future__ import annotations

import hashlib
import json

import pytest

from srlab.eval.loop import evaluate
from srlab.train.config import configs_dir
from srlab.weights.io import read_metadata
from srlab.weights.loader import known_names, load_model
from srlab.weights.shipped import SHIPPED, get_shipped, recorded_metrics, release_info, shipped_path

PRESENT = [n for n in SHIPPED if get_shipped(n)]


def test_every_listed_model_ships():
    """The package carries a file for every entry (a missing one would be an incomplete release)."""
    assert PRESENT == list(SHIPPED)


@pytest.mark.parametrize("name", PRESENT)
def test_a_shipped_model_loads_by_name_and_records_its_recipe(name):
    model, desc = load_model(name)
    entry = SHIPPED[name]
    assert desc.name == name and desc.params > 0 and name in known_names()
    meta = read_metadata(shipped_path(name))
    rel = meta["release"]
    canon = json.dumps(meta["config"], sort_keys=True, separators=(",", ":"), default=str)
    assert rel["config_sha256"] == hashlib.sha256(canon.encode()).hexdigest()
    assert (configs_dir() / f"{entry.recipe}.yaml").is_file() and rel["command"].startswith(
        f"srlab train {entry.recipe}"
    )
    assert meta["config"]["protocol"] == entry.protocol and meta["config"]["scale"] == desc.scale
    assert rel["data"]["images"] > 0 and len(rel["data"]["sha256"]) == 64
    assert rel["wall_time_s"] > 0 and rel["machine"]["torch"]
    assert {r["dataset"] for r in recorded_metrics(name)} >= {"Set5", "Set14", "B100"}


@pytest.mark.parametrize("name", PRESENT)
def test_eval_remakes_the_recorded_set5_numbers(name, data_root):
    entry = SHIPPED[name]
    rec = next(r for r in recorded_metrics(name) if r["dataset"] == "Set5")
    res = evaluate(
        [name],
        ["Set5"],
        [rec["scale"]],
        protocol=entry.protocol,
        data_root=data_root,
        progress=False,
        log=lambda _m: None,
    )
    assert len(res.rows) == rec["images"] == 5
    for key in ("psnr_y", "psnr_rgb"):
        got = sum(r[key] for r in res.rows) / len(res.rows)
        assert abs(got - rec[key]) < 0.01, (name, key, got, rec[key])
    for key in ("ssim_y", "ssim_rgb"):
        got = sum(r[key] for r in res.rows) / len(res.rows)
        assert abs(got - rec[key]) < 1e-4, (name, key, got, rec[key])


def test_a_shipped_name_initialises_a_training_stage(tmp_path):
    """The x3/x4 recipes start from srcnn-x2 by name: the stage's init resolves shipped names."""
    from srlab.train.config import load_config
    from srlab.train.outputs import RunOutputs

    cfg, _ = load_config(configs_dir() / "srcnn_x3_release.yaml", [])
    assert cfg.stages["train"].init == "srcnn-x2"
    outs = RunOutputs(cfg, tmp_path)
    assert outs.init_path("train", "srcnn-x2") == shipped_path("srcnn-x2")
    assert outs.init_path("train", str(tmp_path / "w.safetensors")) == tmp_path / "w.safetensors"
    assert release_info("srcnn-x2")["name"] == "srcnn-x2"


def test_a_study_spec_can_use_a_shipped_model_instead_of_training_one():
    from srlab.errors import ConfigError
    from srlab.study.spec import load_spec

    sp = load_spec("quick", trained={"srcnn": "srcnn-study-x2-recipe"})
    m = sp.models["srcnn"]
    assert m.kind == "pretrained" and m.pretrained.weights == "srcnn-study-x2-recipe"
    assert "srcnn-study-x2-recipe" in m.title and sp.models["esrgan"].kind == "train"
    with pytest.raises(ConfigError, match="not a trained model"):
        load_spec("quick", trained={"bicubic": "srcnn-x2"})


def test_docs_models_md_is_what_the_shipped_files_say():
    """docs/models.md is generated from the release records (scripts/model_cards.py); a re-released model
    without regenerated cards fails here."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "model_cards.py"
    spec = importlib.util.spec_from_file_location("model_cards", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.DOC.read_text(encoding="utf-8") == mod.render()
    for n in PRESENT:
        set5 = next(r for r in recorded_metrics(n) if r["dataset"] == "Set5")
        key = "psnr_y" if SHIPPED[n].protocol == "standard" else "psnr_rgb"
        assert f"| Set5 | {set5[key]:.2f} /" in mod.DOC.read_text(encoding="utf-8")


@pytest.mark.skipif(get_shipped("span-x2") is None, reason="span-x2 is not in this install")
def test_span_x2_upscales_in_the_default_install(tmp_path):
    """srlab's own SPAN runs without the optional spandrel backend (nor torchvision) ever being imported."""
    import subprocess
    import sys

    import numpy as np

    from srlab.imaging.io import read_image, write_image

    rng = np.random.default_rng(0)
    write_image(tmp_path / "in.png", rng.integers(0, 256, (20, 26, 3), dtype=np.uint8))
    code = (
        "import sys\n"
        "from srlab.cli import main\n"
        f"rc = main(['upscale', {str(tmp_path / 'in.png')!r}, '-o', {str(tmp_path / 'out')!r}, '-m', 'span-x2', '-q'])\n"
        "assert rc == 0, rc\n"
        "assert not {'spandrel', 'torchvision'} & set(sys.modules), 'spandrel imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    (out,) = (tmp_path / "out").iterdir()
    assert read_image(out).pixels.shape == (40, 52, 3)
