"""Study specs: a user's own comparison in one YAML file, the study's plan, and one-line errors for bad specs."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest

from srlab.errors import ConfigError


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _pictures(folder: Path, n: int = 3) -> None:
    """Smooth colour images with some edges (random noise would make every model equal)."""
    from srlab.imaging.io import write_image

    yy, xx = np.mgrid[0:40, 0:48].astype(np.float64)
    for i in range(n):
        a = np.stack(
            [
                128 + 100 * np.sin(xx / (3 + i) + yy / 7),
                128 + 90 * np.cos(yy / (4 + i)),
                128 + 80 * np.sign(np.sin((xx + yy) / (5 + i))),
            ],
            axis=-1,
        )
        write_image(folder / f"img{i}.png", np.clip(a, 0, 255).astype(np.uint8))


def _tiny_models(folder: Path) -> None:
    import torch

    from srlab.models.registry import build_model
    from srlab.weights.io import save_model

    torch.manual_seed(0)
    save_model(folder / "mine_srcnn.safetensors", build_model("srcnn", scale=2, n1=8, n2=4)[0])
    save_model(
        folder / "mine_rrdb.safetensors",
        build_model("rrdbnet", scale=2, num_block=1, num_feat=8, num_grow_ch=4)[0],
    )


USER_SPEC = """\
name: mine
title: "my two checkpoints against bicubic on my pictures"
needs_data_root: false
protocols: [study, standard]
roles:
  pics: {title: my pictures, path: pics}
models:
  bicubic: {title: Bicubic, interpolation: bicubic}
  small: {title: "My SRCNN", pretrained: {weights: mine_srcnn.safetensors}}
  rrdb: {title: "My RRDBNet", pretrained: {weights: mine_rrdb.safetensors}}
"""


@pytest.mark.slow
def test_user_spec_compares_saved_models_and_bicubic_on_a_folder(tmp_path):
    from srlab.cli import main
    from srlab.eval.results import read_results
    from srlab.study import reproduce

    (tmp_path / "pics").mkdir()
    _pictures(tmp_path / "pics")
    _tiny_models(tmp_path)
    (tmp_path / "mine.yaml").write_text(USER_SPEC)
    lines: list[str] = []
    out = tmp_path / "rep"
    s = reproduce(tmp_path / "mine.yaml", out=out, device="cpu", progress=False, log=lines.append)
    assert lines[0].startswith("[plan] study 'mine'") and "training runs (0):" in lines
    assert any("small: pretrained mine_srcnn.safetensors" in x for x in lines)
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    for proto in ("study", "standard"):
        for name in (f"panel_pics_{proto}", f"psnr_distribution_pics_{proto}"):
            p = out / "figures" / f"{name}.png"
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"figures/{name}.png" in md
    assert html.count('src="data:image/png;base64,') == 4
    # each row names the weights it used; the tables re-read from the CSV files equal `srlab eval`'s numbers
    assert "| My SRCNN (mine_srcnn.safetensors) |" in md and "| My RRDBNet (mine_rrdb.safetensors) |" in md
    for proto, ch in (("study", "rgb"), ("standard", "y")):
        argv = [
            "eval",
            "--models",
            f"bicubic,{tmp_path / 'mine_srcnn.safetensors'},{tmp_path / 'mine_rrdb.safetensors'}",
            "--datasets",
            "pics",
            "--set-path",
            f"pics={tmp_path / 'pics'}",
            "--scale",
            "2",
            "--protocol",
            proto,
            "--hr-crop",
            "0",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "check" / proto),
        ]
        assert main(argv) == 0
        ref = read_results(tmp_path / "check" / proto / "results.json")["rows"]
        table = {}
        for metric in ("psnr", "ssim"):
            with open(out / "tables" / f"table_{metric}_{proto}.csv", newline="") as f:
                rows = list(csv.reader(f))
            assert rows[0] == ["Model", "my pictures"]  # no published numbers: no 'study' column
            table[metric] = {r[0]: float(r[1]) for r in rows[1:]}
        for title, model in (
            ("Bicubic", "bicubic"),
            ("My SRCNN (mine_srcnn.safetensors)", "mine_srcnn"),
            ("My RRDBNet (mine_rrdb.safetensors)", "mine_rrdb"),
        ):
            vals = [r for r in ref if r["model"] == model]
            assert len(vals) == 3
            assert table["psnr"][title] == pytest.approx(np.mean([r[f"psnr_{ch}"] for r in vals]), abs=0.006)
            assert table["ssim"][title] == pytest.approx(np.mean([r[f"ssim_{ch}"] for r in vals]), abs=6e-5)
        assert table["psnr"]["Bicubic"] != table["psnr"]["My SRCNN (mine_srcnn.safetensors)"]
    assert s["spec"]["file"] == str((tmp_path / "mine.yaml").resolve()) and s["trained"]["runs"] == []


def _plan(capsys, *args) -> tuple[int, str]:
    from srlab.cli import main

    rc = main(["reproduce", *args, "--plan"])
    cap = capsys.readouterr()
    return rc, cap.out + cap.err


def _block(out: str, head: str) -> str:
    """The lines of one training run in the plan."""
    m = re.search(rf"^  {re.escape(head)}.*?(?=^  \S|^\S)", out, re.S | re.M)
    assert m, head
    return m.group(0)


def test_study_plan_lists_what_the_data_root_lacks_and_exits_2(tmp_path, capsys):
    from srlab.imaging.io import write_image

    root = tmp_path / "data"
    write_image(root / "Set5" / "HR" / "baby.png", np.zeros((16, 16, 3), np.uint8))
    rc, out = _plan(capsys, "study", "--data-root", str(root))
    assert rc == 2
    assert "[plan] cannot run: training set DIV2K_train_crop128 is missing; no test role was found" in out
    missing = out[out.index("missing inputs") :]
    for what in (
        "DIV2K_train_crop128",
        "BLOCKS THE RUN",
        "test role natural",
        "DIV2K_valid_HR",
        "test role faces",
    ):
        assert what in missing, what
    assert "test role anime" in missing and "UGATIT" in missing  # where to get selfie2anime
    assert "esrgan-x4-df2kost" in missing and "ESRGAN_SRx4_DF2KOST_official-ff704c30.pth" in missing
    assert not (tmp_path / "reports").exists()  # a plan writes nothing


def test_study_plan_shows_the_study_settings(tmp_path, capsys):
    rc, out = _plan(capsys, "study", "--data-root", str(tmp_path))
    assert rc == 2
    srcnn = _block(out, "srcnn_trained-study")
    assert "1,600 iterations x batch 20" in srcnn and "loss: 1·mse" in srcnn and "srcnn-study-x2" in srcnn
    assert "degradation study" in srcnn and "LR float" in srcnn and "protocol: study" in srcnn
    gan = _block(out, "esrgan_trained-study")
    assert "study-esrgan-x2" in gan and "6,000 iterations x batch 20" in gan
    assert "D updated before G each iteration" in gan and "ragan_sum" in gan and "study_discriminator" in gan
    assert "exports: the last weights" in gan
    # trained once, on the study's degradation: no standard-protocol runs
    assert "trained-standard" not in out and "training runs (2):" in out
    # the SRCNN length and why
    dev = out[out.index("deviations from the study") :]
    assert "SRCNN training length: 1,600 iterations at batch 20" in dev and "400 iteration" in dev
    assert "27.93 at 1,600" in dev
    assert "DIV2K test crop: 128x128 centre crops; 256x256 with --set roles.natural.crop=256" in dev
    # --budget scales what the plan shows; --set changes one value
    rc, out = _plan(
        capsys, "study", "--data-root", str(tmp_path), "--budget", "9", "--set", "roles.natural.crop=256"
    )
    assert "160 iterations x batch 20" in _block(out, "srcnn_trained-study")
    assert "600 iterations x batch 20" in _block(out, "esrgan_trained-study")
    assert "x 0.1 (the spec is sized for 90 min" in out


def test_quick_plan_can_run_without_data(capsys):
    rc, out = _plan(capsys, "quick")
    assert rc == 0 and "[plan] can run: 4 training runs, 1 of 3 test roles" in out
    assert "600 iterations x batch 16" in _block(out, "srcnn_trained-study")


@pytest.mark.parametrize(
    "text, message",
    [
        ("modles: {}\n", "unknown key 'modles'; did you mean 'models'?"),
        ("roles: {a: {title: A, path: x, crop: big}}\n", "roles.a.crop: expected int, got 'big'"),
        ("roles: {a: {title: A}}\n", "roles.a: a role needs 'sets' (data set names) or 'path' (a folder)"),
        (
            "models: {m: {title: M, interpolation: bicubic, pretrained: {weights: x.pth}}}\n",
            "models.m: a model is exactly one of 'interpolation', 'train' or 'pretrained' "
            "(this one has interpolation and pretrained)",
        ),
        (
            "models: {m: {title: M, interpolation: lanczos}}\n",
            "models.m.interpolation: 'lanczos' is not one of",
        ),
        ("protocols: [studdy]\n", "studdy"),
        ("published: {rows: {bicubc: {pics: [1, 0.5]}}}\n", "published.rows.bicubc: no model makes this row"),
        ("roles: [\n", "is not valid YAML"),
    ],
)
def test_bad_specs_are_one_line_errors(tmp_path, capsys, text, message):
    from srlab.cli import main
    from srlab.study import load_spec

    base = {
        "name": "name: x\n",
        "roles": "roles: {pics: {title: P, path: pics}}\n",
        "models": "models: {bicubic: {title: B, interpolation: bicubic}}\n",
    }
    key = text.split(":")[0]
    body = "".join(v for k, v in base.items() if k != key) + text
    p = tmp_path / "bad.yaml"
    p.write_text(body)
    with pytest.raises(ConfigError) as e:
        load_spec(p)
    msg = str(e.value)
    assert "\n" not in msg and (msg.startswith("bad.yaml") or str(p) in msg)
    assert message in msg, msg
    assert main(["reproduce", str(p), "--plan"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_spec_lookup_and_training_rows_are_checked(tmp_path):
    from srlab.study import bundled_specs, load_spec

    assert {"quick", "study", "papers"} <= set(bundled_specs())
    with pytest.raises(ConfigError, match=r"study 'paper' not found \(did you mean 'papers'\?\)"):
        load_spec("paper")  # no aliases: a bundled study by its file's name
    with pytest.raises(ConfigError, match=r"study 'stduy' not found \(did you mean 'study'\?\)"):
        load_spec("stduy")
    with pytest.raises(ConfigError, match="does not exist"):
        load_spec(tmp_path / "none.yaml")
    # a stage the recipe does not have, and an override the recipe's schema refuses
    from srlab.study import Inputs, Setup, plan_runs

    none = Inputs(roles={})

    spec = load_spec("study", {"models.srcnn.train.rows": {"trian": "srcnn"}})
    with pytest.raises(ConfigError, match="models.srcnn.train.rows: srcnn_x2_study has no stage 'trian'"):
        plan_runs(Setup(spec, tmp_path, None, "cpu"), none)
    spec = load_spec("study", {"models.srcnn.train.overrides.stages.train.batchsize": 20})
    with pytest.raises(ConfigError, match=r"models.srcnn.train \(srcnn_x2_study\): .*batchsize"):
        plan_runs(Setup(spec, tmp_path, None, "cpu"), none)


@pytest.mark.parametrize("bad", ["../../x", "a/b", ".hidden", "..", "x\\\\y"])
def test_a_spec_name_is_a_name_not_a_path(tmp_path, bad):
    import yaml as _yaml

    from srlab.study.spec import load_spec

    doc = _yaml.safe_load((Path(__file__).resolve().parents[1] / "configs/studies/quick.yaml").read_text())
    doc["name"] = bad
    path = tmp_path / "spec.yaml"
    path.write_text(_yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match="not a plain name"):
        load_spec(str(path))
    assert not (tmp_path.parent / "x").exists()
