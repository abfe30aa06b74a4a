"""The study's shape: frozen records between the stages, no private names across modules, figures made from
what the evaluation kept, overrides handed to the trainer as data."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pytest

STUDY = Path(__file__).resolve().parents[1] / "src" / "srlab" / "study"


def _imports(path: Path):
    """Every ``from X import Y`` of a module (function-local ones included) as (module, name) pairs."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            for a in node.names:
                yield node.module or "", a.name
        elif isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, ""


def _records(tmp_path):
    from srlab.study import Figures, Inputs, Plan, Run, Scores, Setup, Trained, load_spec
    from srlab.study.records import KeptImage, ProtocolScores, Report, Study

    setup = Setup(load_spec("quick"), tmp_path, None)
    inputs = Inputs(roles={"natural": {"dataset": "natural", "path": str(tmp_path), "n": 1}})
    run = Run("srcnn_trained-study", "srcnn", "study", "srcnn_x2_study", {"seed": 0}, {"train": "srcnn"})
    plan = Plan((run,))
    kept = KeptImage("a.png", np.zeros((2, 2, 3), np.uint8), np.zeros((1, 1, 3)), {})
    proto = ProtocolScores("study", [], {}, {}, kept={"natural": kept})
    scores = Scores({"study": proto})
    report = Report("srlab reproduce", {}, {}, {}, {}, "r.md", "r.html", 1.0)
    study = Study(setup, inputs, plan, Trained(), scores, Figures())
    return [setup, inputs, run, plan, Trained(), kept, proto, scores, Figures(), report, study]


def test_every_stage_record_is_frozen(tmp_path):
    import srlab.study.records as records

    made = _records(tmp_path)
    classes = {
        obj
        for obj in vars(records).values()
        if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == records.__name__
    }
    assert classes == {type(r) for r in made}  # a new record type gets a line in _records
    for rec in made:
        name = dataclasses.fields(rec)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(rec, name, None)
    # the spec, the first record, is a frozen pydantic model (its sections too)
    spec = made[0].spec
    with pytest.raises(Exception, match="frozen"):
        spec.scale = 4
    with pytest.raises(Exception, match="frozen"):
        spec.roles["natural"].crop = 256


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_no_study_module_imports_a_private_name_or_inspects_signatures():
    offenders = []
    for path in sorted(STUDY.glob("*.py")):
        for module, name in _imports(path):
            if _private(name) or any(_private(p) for p in module.split(".")):
                offenders.append(f"{path.name}: from {module} import {name}")
            if module == "inspect":
                offenders.append(f"{path.name}: imports inspect")
    assert offenders == []


def test_figures_do_not_evaluate_again():
    mods = {m for m, _ in _imports(STUDY / "figures.py")}
    assert "srlab.eval.loop" not in mods and not any(m.startswith("srlab.eval.loop") for m in mods)
    assert ("srlab.eval.loop", "evaluate") in set(_imports(STUDY / "evaluation.py"))  # the one evaluation


def test_evaluation_keeps_the_images_as_scored(tmp_path):
    """What the panels show is what was scored: the kept SR of each model gives the row's PSNR, and it is
    the image ``save_dir`` writes."""
    from srlab.eval.loop import evaluate
    from srlab.imaging.io import read_image, write_image

    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        write_image(tmp_path / "set" / f"{name}.png", rng.integers(0, 256, (24, 20, 3), np.uint8))
    keep = tmp_path / "set" / "b.png"
    for proto in ("standard", "study"):
        res = evaluate(
            ["bicubic", "bilinear"],
            ["mine"],
            [2],
            protocol=proto,
            set_paths={"mine": tmp_path / "set"},
            device="cpu",
            hr_crop=0,
            save_dir=tmp_path / proto,
            progress=False,
            log=lambda m: None,
            keep=[keep],
        )
        assert list(res.kept) == [(str(keep.resolve()), 2)]
        k = res.kept[(str(keep.resolve()), 2)]
        assert k["hr"].shape == (24, 20, 3) and k["lr"].shape == (12, 10, 3)
        for model in ("bicubic", "bilinear"):
            sr = k["sr"][model]
            row = next(r for r in res.rows if r["model"] == model and r["image"] == "b")
            mse = float(np.mean((sr - k["hr"].astype(np.float64)) ** 2))  # RGB, no border crop under study
            if proto == "study":
                assert 10 * np.log10(255.0**2 / mse) == pytest.approx(row["psnr_rgb"], abs=1e-9)
            else:  # uint8-rounded SR: the 8-bit file holds it exactly
                saved = read_image(tmp_path / proto / model / "mine" / "x2" / "b.png").pixels
                assert np.array_equal(saved, sr.astype(np.uint8)) and np.array_equal(sr, np.round(sr))
    no_keep = evaluate(["bicubic"], ["mine"], [2], set_paths={"mine": tmp_path / "set"}, log=lambda m: None)
    assert no_keep.kept == {}


def test_overrides_reach_the_trainer_as_values(tmp_path):
    """A spec override is handed to the training config as it is: a float stays a float (a ``k=<json>``
    string parsed back as YAML made ``1e-05`` a string), a path with YAML-like text stays a string."""
    from srlab.study import Inputs, Setup, build_config, load_spec, plan_runs

    spec = load_spec("quick", {"models.srcnn.train.overrides.stages.train.optim.lr": 1e-5})
    train = tmp_path / "train: yes"  # would be a mapping if it were parsed as YAML
    inputs = Inputs(roles={}, train_sets={"DIV2K_train_crop128": {"path": str(train)}})
    run = plan_runs(Setup(spec, tmp_path / "out", None), inputs)[0]
    assert run.overrides["data.train"] == str(train.resolve())
    cfg, raw = build_config(run, progress=False)
    lr = raw["stages"]["train"]["optim"]["lr"]
    assert isinstance(lr, float) and lr == 1e-5 and cfg.stages["train"].optim.lr == 1e-5
    assert raw["data"]["train"] == str(train.resolve()) and raw["name"] == "srcnn_trained-study"


def test_references_stage_returns_a_new_record(tmp_path):
    """prepare_references adds the pretrained rows to a new record; the training record it was given is
    unchanged."""
    import yaml

    from srlab.models.registry import build_model
    from srlab.study import Trained, load_spec, prepare_references
    from srlab.study.records import Setup
    from srlab.weights.io import save_model

    net, _ = build_model("srcnn", scale=2, num_channels=3, n1=8, n2=4)
    save_model(tmp_path / "mine.safetensors", net)
    (tmp_path / "s.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "mine",
                "roles": {"pics": {"title": "pics", "path": "pics"}},
                "models": {"mine": {"title": "Mine", "pretrained": {"weights": "mine.safetensors"}}},
            }
        )
    )
    setup = Setup(load_spec(tmp_path / "s.yaml"), tmp_path / "out", None, "cpu")
    before = Trained(models={"x": {"path": "x.safetensors", "row": "x"}}, notes=("trained",))
    after = prepare_references(setup, before)
    assert before.models == {"x": {"path": "x.safetensors", "row": "x"}} and before.references == {}
    assert list(after.models) == ["x", "mine"] and after.notes == ("trained",)
    assert after.references["mine"]["how"] == "used as it is"
    assert Path(after.models["mine"]["path"]).read_bytes() == (tmp_path / "mine.safetensors").read_bytes()
