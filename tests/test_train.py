"""Training: config schema and overrides, schedules, bitwise resume, two-stage ESRGAN, exports, NaN policy."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from srlab.errors import ConfigError, SrlabError, WeightsError
from srlab.train.checkpoint import list_checkpoints, load_checkpoint
from srlab.train.config import ScheduleConfig, configs_dir, load_config
from srlab.train.optim import build_optimizer, lr_at
from srlab.train.recipes import NonFiniteLossError, RunnerOptions, StageRunner
from trainutil import load_weights as _weights
from trainutil import make_cfg as _cfg
from trainutil import run_quiet as _run
from trainutil import same_tensors as _same


def _write_images(folder, n, size, seed):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        small = rng.integers(0, 256, size=(size // 8, size // 8, 3)).astype(np.uint8)
        Image.fromarray(small).resize((size, size), Image.BICUBIC).save(folder / f"{i:03d}.png")
    return folder


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("data")
    _write_images(r / "small", 6, 48, 0)
    _write_images(r / "big", 3, 128, 1)
    _write_images(r / "val", 2, 40, 2)
    return r


SRCNN = {
    "scale": 2,
    "model": {"name": "srcnn", "hparams": {"scale": 2, "n1": 16, "n2": 8, "f1": 5, "f2": 1, "f3": 3}},
    "data": {"train": "small", "mode": "random", "crop": 24},
    "val": {"set": "val", "every": 4, "ssim": False},
    "stages": {
        "train": {
            "iterations": 8,
            "batch_size": 4,
            "optim": {"lr": 1e-3},
            "schedule": {"type": "cosine", "warmup": 2},
            "losses": {"pixel": "mse"},
            "grad_clip": 0.5,
            "ema": 0.9,
        }
    },
    "checkpoint": {"every": 4},
    "log": {"every": 2, "progress": False, "tensorboard": False},
    "runtime": {"threads": 1},  # tiny models: one thread is as fast, and robust to a busy machine
}

ESRGAN = {
    "name": "tiny_esrgan",
    "scale": 4,
    "model": {"name": "rrdbnet", "hparams": {"scale": 4, "num_block": 1, "num_feat": 8, "num_grow_ch": 4}},
    "data": {"train": "big", "mode": "center", "crop": 128},
    "val": {"set": "val", "every": 0, "ssim": False},
    "stages": {
        "psnr": {"iterations": 2, "batch_size": 2, "optim": {"lr": 2e-4}, "losses": {"pixel": "l1"}},
        "gan": {
            "kind": "gan",
            "init": "psnr",
            "iterations": 4,
            "batch_size": 2,
            "ema": 0.5,
            "losses": {
                "pixel": "l1",
                "pixel_weight": 0.01,
                "perceptual": "vgg19",
                "perceptual_layers": {"conv1_1": 1.0},
                "perceptual_weights": "random",
                "gan": "ragan",
                "gan_weight": 5e-3,
            },
            "discriminator": {"name": "vgg_discriminator", "hparams": {"input_size": 128, "num_feat": 8}},
        },
    },
    "checkpoint": {"every": 0},
    "log": {"every": 1, "progress": False, "tensorboard": False},
    "runtime": {"threads": 1},
}


# ------------------------------------------------------------------------------------------------ config
def test_unknown_keys_name_the_closest_valid_key(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({**SRCNN, "stages": {"train": {"iteratons": 5}}}))
    with pytest.raises(
        ConfigError,
        match=r"unknown config key 'stages\.train\.iteratons'; did you mean 'stages\.train\.iterations'",
    ):
        load_config(p)
    with pytest.raises(ConfigError, match=r"'data\.crop'"):
        load_config(_ok(tmp_path), ["data.crpo=3"])
    with pytest.raises(ConfigError, match=r"unknown stage 'trian'.*stages\.train"):
        load_config(_ok(tmp_path), ["stages.trian.iterations=3"])
    with pytest.raises(ConfigError, match=r"'adamw'"):
        load_config(_ok(tmp_path), ["stages.train.optim.type=adamx"])
    with pytest.raises(ConfigError, match=r"expected int"):
        load_config(_ok(tmp_path), ["stages.train.iterations=many"])


def _ok(tmp_path):
    p = tmp_path / "ok.yaml"
    p.write_text(yaml.safe_dump(SRCNN, sort_keys=False))
    return p


def test_overrides_are_yaml_typed_and_wildcards_apply_to_every_stage(tmp_path):
    p = tmp_path / "e.yaml"
    p.write_text(yaml.safe_dump(ESRGAN, sort_keys=False) + "\nquick: {stages.*.iterations: 1}\n")
    cfg, _ = load_config(
        p, ["stages.*.batch_size=1", "stages.gan.optim.lr=1e-5", "stages.gan.optim.betas=[0.5, 0.9]"]
    )
    assert [s.batch_size for s in cfg.stages.values()] == [1, 1]
    assert cfg.stages["gan"].optim.lr == 1e-5 and isinstance(
        cfg.stages["gan"].optim.lr, float
    )  # "1e-5" in YAML 1.1
    assert cfg.stages["gan"].optim.betas == (0.5, 0.9)
    assert cfg.name == "tiny_esrgan" and load_config(_ok(tmp_path))[0].name == "ok"
    q, _ = load_config(p, quick=True)
    assert [s.iterations for s in q.stages.values()] == [1, 1]


def test_packaged_recipes_validate_and_say_what_the_papers_and_the_study_did():
    names = sorted(p.stem for p in configs_dir().glob("*.yaml"))
    for want in (
        "srcnn_x2_study",
        "esrgan_x2_study",
        "srcnn_x2_paper",
        "srcnn_x3_paper",
        "srcnn_x4_paper",
        "rrdb_psnr_x4_paper",
        "esrgan_x4_paper",
    ):
        assert want in names
    cfgs = {n: load_config(n)[0] for n in names}
    es = cfgs["esrgan_x2_study"].stages["gan"]
    assert cfgs["esrgan_x2_study"].model.name == "study-esrgan-x2" and es.iterations == 6000
    assert es.losses.perceptual_layers == {"pool3": 1.0} and not es.losses.perceptual_normalize
    assert (es.losses.gan, es.losses.gan_weight, es.losses.pixel, es.losses.pixel_weight) == (
        "ragan_sum",
        1e-3,
        "l1",
        1.0,
    )
    assert (es.d_first, es.keep, es.batch_size, es.discriminator.name) == (
        True,
        "last",
        20,
        "study_discriminator",
    )
    assert es.optim.lr == 1e-4 and cfgs["esrgan_x2_study"].data.degradation == "study"
    x4 = cfgs["esrgan_x4_paper"]
    assert list(x4.stages) == ["psnr", "gan"] and x4.stages["gan"].init == "psnr"
    assert x4.stages["psnr"].schedule.step_size == 200000 and x4.stages["psnr"].optim.lr == 2e-4
    g = x4.stages["gan"]
    assert g.schedule.milestones == [50000, 100000, 200000, 300000]
    assert (g.losses.perceptual_layers, g.losses.perceptual_normalize) == ({"conv5_4": 1.0}, True)
    assert (g.losses.gan_weight, g.losses.pixel_weight, g.batch_size, x4.data.crop) == (5e-3, 1e-2, 16, 128)
    p3 = cfgs["srcnn_x3_paper"]
    assert p3.scale == 3 and p3.model.hparams["scale"] == 3 and p3.data.crop == 33 and p3.data.color == "y"
    assert cfgs["srcnn_x2_paper_sgd"].stages["train"].optim.param_lr == {"conv3": 1e-5}
    for n in ("srcnn_x2_paper", "srcnn_x2_study"):
        assert load_config(n, quick=True)[0].stages["train"].iterations < 10000


def test_schedules_and_per_layer_learning_rates():
    ms = ScheduleConfig(type="multistep", milestones=[10, 20], gamma=0.5)
    assert [lr_at(ms, 1.0, i, 30) for i in (0, 9, 10, 19, 20)] == [1, 1, 0.5, 0.5, 0.25]
    st = ScheduleConfig(type="step", step_size=200, gamma=0.5)
    assert lr_at(st, 2e-4, 399, 1000) == 1e-4 and lr_at(st, 2e-4, 400, 1000) == 5e-5
    cos = ScheduleConfig(type="cosine", eta_min=0.1)
    assert lr_at(cos, 1.0, 0, 100) == 1.0 and math.isclose(lr_at(cos, 1.0, 50, 100), 0.55)
    assert math.isclose(lr_at(cos, 1.0, 100, 100), 0.1)
    from srlab.models.srcnn import SRCNN as Net
    from srlab.train.config import OptimConfig

    net = Net(scale=2, num_channels=1)
    opt = build_optimizer(
        list(net.named_parameters()),
        OptimConfig(type="sgd", lr=1e-4, param_lr={"conv3": 1e-5}),
        cuda=False,
        path="o",
    )
    assert sorted((g["lr"], len(g["params"])) for g in opt.param_groups) == [(1e-5, 2), (1e-4, 4)]
    with pytest.raises(ConfigError, match="matches no parameter"):
        build_optimizer(
            list(net.named_parameters()), OptimConfig(param_lr={"conv9": 1e-5}), cuda=False, path="o"
        )


def test_runner_options_are_read_from_the_config_in_one_place():
    over = {
        "runtime.compile": True,
        "runtime.compile_mode": "max-autotune",
        "runtime.channels_last": False,
        "runtime.fused_blocks": True,
        "data.pre_upsample": "bicubic",
    }
    opts = RunnerOptions.from_config(_cfg(SRCNN, **over), world=2, local_rank=1)
    assert opts == RunnerOptions(
        channels_last=False,
        compile=True,
        compile_mode="max-autotune",
        fused_blocks=True,
        pre_upsampled=True,
        ddp=True,
        local_rank=1,
    )
    assert not RunnerOptions.from_config(_cfg(SRCNN)).ddp


# ------------------------------------------------------------------------------------------------ resume
def test_srcnn_resume_is_bitwise_identical(root, tmp_path):
    full = _run(_cfg(SRCNN), tmp_path / "a", root)
    assert full.completed
    part = _run(_cfg(SRCNN, **{"runtime.stop_after": 3}), tmp_path / "b", root)
    assert not part.completed and part.last_checkpoint.name == "ckpt_s0_train_00000003.pt"
    with pytest.raises(SrlabError, match="--resume auto"):
        _run(_cfg(SRCNN), tmp_path / "b", root)  # never silently mixes two runs
    done = _run(_cfg(SRCNN), tmp_path / "b", root, resume="auto")
    assert done.completed
    a, b = _weights(tmp_path / "a" / "model.safetensors"), _weights(tmp_path / "b" / "model.safetensors")
    assert _same(a, b)
    # the optimiser state is the same too, and checkpoints load with weights_only=True
    ca = load_checkpoint(list_checkpoints(tmp_path / "a" / "checkpoints")[-1][2])
    cb = load_checkpoint(list_checkpoints(tmp_path / "b" / "checkpoints")[-1][2])
    sa, sb = ca["stage_state"]["opt_g"]["state"], cb["stage_state"]["opt_g"]["state"]
    assert all(torch.equal(sa[k]["exp_avg_sq"], sb[k]["exp_avg_sq"]) for k in sa)
    assert ca["iteration"] == 8 and ca["stage_done"]
    data = dict(ca["data"])
    assert data.pop("digest") == cb["data"]["digest"]  # what the resume checked: the same images
    assert data == {"seed": 0, "samples_seen": 32, "epoch": 5, "position_in_epoch": 2, "items": 6}
    # logs: resumed rows replace nothing twice -- one row per (iteration, tag)
    rows = (tmp_path / "b" / "scalars.csv").read_text().splitlines()[1:]
    keys = [tuple(r.split(",")[:3]) for r in rows]
    assert (
        len(keys) == len(set(keys)) and ("8", "train", "l_pix") in keys and ("4", "train", "val_psnr") in keys
    )
    jl = [json.loads(x) for x in (tmp_path / "a" / "scalars.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in jl if "l_pix" in r] == [2, 4, 6, 8]
    best = ca["summary"]["train"]["best"]
    assert best["iteration"] in (4, 8) and best["protocol"] == "standard"
    assert (tmp_path / "a" / "best_train.safetensors").exists()
    assert sorted((tmp_path / "a" / "samples").iterdir())


def test_tiny_esrgan_runs_both_stages_resumes_bitwise_and_exports_a_loadable_generator(root, tmp_path):
    full = _run(_cfg(ESRGAN), tmp_path / "a", root)
    assert full.completed and full.stages["gan"]["perceptual_weights"] == "random"
    # interrupted in the gan stage, resumed: the same generator, bit for bit
    part = _run(_cfg(ESRGAN, **{"runtime.stop_after": 4}), tmp_path / "b", root)
    assert part.last_checkpoint.name == "ckpt_s1_gan_00000002.pt"
    ck = load_checkpoint(part.last_checkpoint)
    assert set(ck["models"]) == {"g", "d", "ema"} and ck["perceptual_weights"] == "random"
    _run(_cfg(ESRGAN), tmp_path / "b", root, resume="auto")
    a, b = _weights(tmp_path / "a" / "model.safetensors"), _weights(tmp_path / "b" / "model.safetensors")
    assert _same(a, b)
    # stage 2 started from stage 1 and moved away from it
    p = _weights(tmp_path / "a" / "psnr.safetensors")
    assert not _same(a, p)
    from srlab.weights.io import read_metadata

    meta = read_metadata(tmp_path / "a" / "model.safetensors")
    assert meta["arch"] == "rrdbnet" and meta["perceptual_weights"] == {"psnr": "none", "gan": "random"}
    assert meta["iterations"] == {"psnr": 2, "gan": 4} and meta["recipe"] and meta["protocol"] == "standard"
    assert meta["best_val_psnr"] is not None and meta["ema"] is True

    import srlab

    model, desc = srlab.load_model(str(tmp_path / "a" / "model.safetensors"))
    assert desc.scale == 4 and desc.hparams["num_block"] == 1
    x = torch.rand(1, 3, 8, 8)
    assert model(x).shape == (1, 3, 32, 32)
    # and through the upscale command
    from srlab.cli import main

    src = root / "val" / "000.png"
    rc = main(
        [
            "upscale",
            str(src),
            "-o",
            str(tmp_path / "up.png"),
            "-m",
            str(tmp_path / "a" / "model.safetensors"),
            "-q",
        ]
    )
    assert rc == 0 and Image.open(tmp_path / "up.png").size == (160, 160)


def test_missing_vgg_weights_stop_training_unless_random_is_explicit(root, tmp_path, monkeypatch):
    monkeypatch.setenv("SRLAB_CACHE", str(tmp_path / "cache"))  # an empty weights cache
    with pytest.raises(WeightsError, match=r"vgg19.*srlab weights fetch vgg19.*perceptual_weights: random"):
        _run(_cfg(ESRGAN, **{"stages.gan.losses.perceptual_weights": None}), tmp_path / "z", root)
    assert not (tmp_path / "z" / "checkpoints").exists()  # refused before the psnr stage ran
    over = {"stages.gan.losses.perceptual_weights": str(tmp_path / "no_vgg19.pth")}
    with pytest.raises(WeightsError, match="no_vgg19.pth"):
        _run(_cfg(ESRGAN, **over), tmp_path / "x", root)
    assert not (tmp_path / "x" / "checkpoints").exists()


def test_nonfinite_loss_stops_with_a_clear_message_and_never_writes_a_nan_checkpoint(
    root, tmp_path, monkeypatch
):
    bad = {
        "stages.train.optim.lr": 1e30,
        "stages.train.iterations": 6,
        "checkpoint.every": 1,
        "val.set": None,
    }
    with pytest.raises(NonFiniteLossError, match=r"non-finite at iteration (\d+) .*skip_nonfinite") as e1:
        _run(_cfg(SRCNN, **bad), tmp_path / "n", root)
    first = re.search(r"iteration (\d+)", str(e1.value)).group(1)
    assert "last good checkpoint" in str(e1.value)
    for _si, _it, p in list_checkpoints(tmp_path / "n" / "checkpoints"):
        g = load_checkpoint(p)["models"]["g"]
        assert all(torch.isfinite(t).all() for t in g.values())
    res = _run(_cfg(SRCNN, **bad, **{"stages.train.skip_nonfinite": True}), tmp_path / "s", root)
    assert res.completed and res.stages["train"]["skipped_steps"] > 0
    # the deferred check (CUDA's default: no host sync per step) names the same iteration and, checked before
    # every save, still never lets a NaN checkpoint through
    init = StageRunner.__init__
    monkeypatch.setattr(
        StageRunner, "__init__", lambda self, *a, **k: init(self, *a, **{**k, "sync_checks": False})
    )
    with pytest.raises(NonFiniteLossError, match=rf"non-finite at iteration {first};"):
        _run(_cfg(SRCNN, **{**bad, "checkpoint.every": 3, "log.every": 5}), tmp_path / "d", root)
    for _si, _it, p in list_checkpoints(tmp_path / "d" / "checkpoints"):
        assert all(torch.isfinite(t).all() for t in load_checkpoint(p)["models"]["g"].values())


def test_cli_reports_config_errors_in_one_line(root, tmp_path, capsys):
    from srlab.cli import main

    p = _ok(tmp_path)
    rc = main(["train", str(p), "stages.train.itrations=3", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "did you mean 'stages.train.iterations'" in err and len(err.strip().splitlines()) == 1
    rc = main(["train", str(p), "--print-config", "stages.train.iterations=3"])
    out = capsys.readouterr().out
    assert rc == 0 and yaml.safe_load(out)["stages"]["train"]["iterations"] == 3
    rc = main(
        [
            "train",
            str(p),
            "--data-root",
            str(root),
            "--out",
            str(tmp_path / "o"),
            "stages.train.iterations=2",
            "val.set=null",
        ]
    )
    assert rc == 0 and (tmp_path / "o" / "model.safetensors").exists()
    # LR synthesised batch-wise on the training device
    args = [
        "train",
        str(p),
        "--data-root",
        str(root),
        "--out",
        str(tmp_path / "dev"),
        "data.lr_on_device=true",
    ]
    assert main([*args, "stages.train.iterations=2", "val.set=null"]) == 0


def test_fused_blocks_train_the_same_generator_and_compile_modes_reach_torch_compile(
    root, tmp_path, monkeypatch
):
    # fused dense blocks: same function and parameters, so the same training run within float rounding
    plain = _run(_cfg(ESRGAN, **{"stages.gan.iterations": 2}), tmp_path / "plain", root)
    fused = _run(
        _cfg(ESRGAN, **{"stages.gan.iterations": 2, "runtime.fused_blocks": True}), tmp_path / "fused", root
    )
    assert plain.completed and fused.completed
    a, b = (
        _weights(tmp_path / "plain" / "model.safetensors"),
        _weights(tmp_path / "fused" / "model.safetensors"),
    )
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst < 1e-4, worst
    # the compile mode is handed to torch.compile for G and D (recorded, not compiled: fast on a CPU)
    seen = []

    def fake_compile(mod, mode=None, **kw):
        seen.append((type(mod).__name__, mode))
        return mod

    monkeypatch.setattr(torch, "compile", fake_compile)
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))  # the user's choice is kept
    cfg = _cfg(
        ESRGAN,
        **{"stages.psnr.iterations": 1, "stages.gan.iterations": 1, "runtime.compile": True,
           "runtime.compile_mode": "reduce-overhead"},
    )  # fmt: skip
    assert _run(cfg, tmp_path / "c", root).completed
    assert ("RRDBNet", "reduce-overhead") in seen and ("VGGStyleDiscriminator", "reduce-overhead") in seen
    import os

    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "inductor")
    with pytest.raises(ConfigError, match="compile_mode"):
        _cfg(ESRGAN, **{"runtime.compile_mode": "fastest"})


def test_resume_auto_with_more_iterations_continues_a_finished_stage(root, tmp_path):
    """A finished run resumed with a longer stage trains the extra iterations (and says so)."""
    base = {**SRCNN, "stages": {"train": {**SRCNN["stages"]["train"], "ema": 0.0}}}
    done = _run(_cfg(base), tmp_path / "r", root)
    assert done.completed
    first = _weights(tmp_path / "r" / "model.safetensors")
    said: list[str] = []
    from srlab.train.trainer import Trainer

    more = Trainer(
        _cfg(base, **{"stages.train.iterations": 12}),
        out_dir=tmp_path / "r",
        data_root=root,
        echo=said.append,
        resume="auto",
    ).run()
    assert more.completed
    assert any("training 4 more iterations" in m for m in said)
    ck = load_checkpoint(list_checkpoints(tmp_path / "r" / "checkpoints")[-1][2])
    assert ck["iteration"] == 12 and ck["stage_done"]
    assert not _same(first, _weights(tmp_path / "r" / "model.safetensors"))
    rows = (tmp_path / "r" / "scalars.csv").read_text().splitlines()[1:]
    assert ("12", "train", "l_pix") in [tuple(r.split(",")[:3]) for r in rows]


def test_unpadded_srcnn_equals_the_centre_of_the_padded_one_and_trains_on_the_centre(root, tmp_path):
    from srlab.models.srcnn import SRCNN as SRCNNNet

    net = SRCNNNet(scale=2, num_channels=1).eval()
    x = torch.rand(2, 1, 40, 40)
    with torch.no_grad():
        full, valid = net.forward_upsampled(x), net.forward_upsampled(x, padded=False)
    r = (9 + 5 + 5 - 3) // 2
    assert valid.shape[-2:] == (40 - 2 * r, 40 - 2 * r)
    torch.testing.assert_close(valid, full[..., r:-r, r:-r], rtol=1e-5, atol=1e-6)
    over = {
        "model.hparams": {"scale": 2, "num_channels": 1},
        "data.color": "y",
        "data.mode": "subimages",
        "data.crop": 33,
        "data.stride": 14,
        "data.pre_upsample": "bicubic",
        "data.unpadded": True,
        "runtime.channels_last": True,
        "stages.train.ema": 0.0,
    }
    cfg = _cfg(SRCNN, **over)
    assert RunnerOptions.from_config(cfg).unpadded
    res = _run(cfg, tmp_path / "u", root)
    assert res.completed
    losses = [json.loads(x) for x in (tmp_path / "u" / "scalars.jsonl").read_text().splitlines()]
    assert all(math.isfinite(r["l_pix"]) for r in losses if "l_pix" in r)
    with pytest.raises(ConfigError, match="needs data.pre_upsample"):
        _cfg(SRCNN, **{"data.unpadded": True})


def test_bf16_training_on_a_cpu_without_bf16_kernels_falls_back_to_fp32(monkeypatch):
    import srlab.runtime as rt

    cpu = torch.device("cpu")
    monkeypatch.setattr(rt, "_cpu_bf16_kernels", lambda: True)
    assert rt.resolve_precision("bf16", cpu, training=True) == "bf16"
    assert rt.resolve_precision("auto", cpu, training=True) == "fp32"  # bf16 on the CPU only when asked
    monkeypatch.setattr(rt, "_cpu_bf16_kernels", lambda: False)
    with pytest.warns(UserWarning, match="bf16 is not supported"):
        assert rt.resolve_precision("bf16", cpu, training=True) == "fp32"
    assert rt.resolve_precision("bf16", cpu) == "bf16"  # inference still runs it (emulated where need be)
