"""The study's training loop as config options: D before G (``d_first``), which weights a stage exports
(``keep``), fp16 only where its gradient scaler runs, and the study recipes as shipped."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from PIL import Image

from srlab.errors import ConfigError
from srlab.models.registry import build_model
from srlab.train.checkpoint import list_checkpoints, load_checkpoint
from srlab.train.config import StageConfig, config_from_dict, load_config
from srlab.train.losses import PerceptualLoss, gan_g_loss
from srlab.train.recipes import StageRunner
from srlab.train.trainer import Trainer
from trainutil import load_weights as _weights
from trainutil import make_cfg as _cfg
from trainutil import run_quiet as _run
from trainutil import same_tensors as _same

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(3)
    for sub, n, size in (("train", 6, 48), ("val", 2, 32)):
        (r / sub).mkdir()
        for i in range(n):
            small = rng.integers(0, 256, size=(size // 8, size // 8, 3)).astype(np.uint8)
            Image.fromarray(small).resize((size, size), Image.BICUBIC).save(r / sub / f"{i:03d}.png")
    return r


GAN = {
    "name": "tiny_study_gan",
    "scale": 2,
    "protocol": "study",
    "model": {"name": "study_rrdbnet", "hparams": {"num_block": 1, "num_feat": 8, "num_grow_ch": 4}},
    "data": {"train": "train", "mode": "random", "crop": 32, "degradation": "study", "quantize_lr": False},
    "val": {"set": "val", "protocol": "study", "every": 0, "ssim": False},
    "stages": {
        "gan": {
            "kind": "gan",
            "iterations": 4,
            "batch_size": 2,
            "d_first": True,
            "losses": {
                "pixel": "l1",
                "perceptual": "vgg19",
                "perceptual_layers": {"conv1_1": 1.0},
                "perceptual_normalize": False,
                "perceptual_weights": "random",
                "gan": "ragan_sum",
                "gan_weight": 0.1,
            },
            "discriminator": {"name": "study_discriminator", "hparams": {"input_size": 32, "num_feat": 4}},
        }
    },
    "checkpoint": {"every": 0},
    "log": {"every": 1, "progress": False, "tensorboard": False},
    "runtime": {"threads": 1},
}

SRCNN = {
    "scale": 2,
    "model": {"name": "srcnn", "hparams": {"scale": 2, "n1": 8, "n2": 4, "f1": 3, "f2": 1, "f3": 3}},
    "data": {"train": "train", "mode": "random", "crop": 16},
    "val": {"set": None},
    "stages": {
        "train": {
            "iterations": 12,
            "batch_size": 2,
            "keep": "best_train_loss",
            "optim": {"lr": 3e-2},  # a bumpy descent: its lowest loss comes before the last step
            "losses": {"pixel": "mse"},
        }
    },
    "checkpoint": {"every": 1, "keep": 0},
    "log": {"every": 1, "progress": False, "tensorboard": False},
    "runtime": {"threads": 1},
}


# ------------------------------------------------------------------------------------------------ config
def test_the_new_keys_default_to_todays_loop_and_refuse_what_cannot_work():
    st = StageConfig()
    assert (st.d_first, st.keep) == (False, "last")
    with pytest.raises(ConfigError, match=r"stages\.train\.d_first is set but the stage kind is psnr"):
        config_from_dict({"stages": {"train": {"d_first": True}}})
    with pytest.raises(ConfigError, match=r"keep: best_train_loss .* set ema: 0 or keep: last"):
        config_from_dict({"stages": {"train": {"keep": "best_train_loss", "ema": 0.9}}})
    with pytest.raises(ConfigError, match=r"stages\.train\.keep"):
        config_from_dict({"stages": {"train": {"keep": "best"}}})
    with pytest.raises(ConfigError, match="ragan, ragan_sum, vanilla or lsgan"):
        config_from_dict({"stages": {"g": {"kind": "gan"}}})


# ------------------------------------------------------------------------------------------ step order
def _runner(d_first: bool):
    torch.manual_seed(0)
    g, _ = build_model("srcnn", scale=2, n1=8, n2=4, f1=3, f2=1, f3=3)
    st = StageConfig(
        kind="gan",
        d_first=d_first,
        losses={"pixel": "l1", "gan": "ragan_sum", "gan_weight": 1.0},
        discriminator={"name": "study_discriminator", "hparams": {"input_size": 32, "num_feat": 4}},
    )
    return StageRunner("gan", st, g, device=torch.device("cpu"), amp_dtype=None, seed=0)


@pytest.mark.parametrize("d_first", [True, False])
def test_with_d_first_the_generator_step_sees_the_updated_discriminator(d_first):
    runner = _runner(d_first)
    torch.manual_seed(1)
    lr, hr = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 32, 32)
    g0, d0 = copy.deepcopy(runner.g), copy.deepcopy(runner.d)
    out = runner.step(lr, hr, 0)
    d1 = copy.deepcopy(runner.d)
    assert not _same(d0.state_dict(), d1.state_dict())  # D took its step

    with torch.no_grad():
        sr = g0(lr)  # G's output before its own update: the one both losses of the step saw

        def adversarial(d):  # the G loss's adversarial term against discriminator ``d`` (train mode, as used)
            d = copy.deepcopy(d)
            return gan_g_loss("ragan_sum", d(hr), d(sr))

        with_updated, with_old = adversarial(d1), adversarial(d0)
    assert not torch.isclose(with_updated, with_old)
    used, other = (with_updated, with_old) if d_first else (with_old, with_updated)
    torch.testing.assert_close(out["l_gan"], used, rtol=1e-6, atol=0)
    assert not torch.isclose(out["l_gan"], other)
    # D learned from the same detached output in either order
    with torch.no_grad():
        d = copy.deepcopy(d0)
        from srlab.train.losses import gan_d_loss

        torch.testing.assert_close(out["l_d"], gan_d_loss("ragan_sum", d(hr), d(sr)), rtol=1e-6, atol=0)
    assert all(p.requires_grad for p in runner.d.parameters())  # D is trainable again after the step


def test_a_tiny_gan_run_differs_by_order_is_finite_and_resumes_bitwise(root, tmp_path):
    first = _run(_cfg(GAN), tmp_path / "d_first", root)
    after = _run(_cfg(GAN, **{"stages.gan.d_first": False}), tmp_path / "g_first", root)
    assert first.completed and after.completed
    a, b = (
        _weights(tmp_path / "d_first" / "model.safetensors"),
        _weights(tmp_path / "g_first" / "model.safetensors"),
    )
    assert all(torch.isfinite(v).all() for v in (*a.values(), *b.values()))
    assert a.keys() == b.keys() and not _same(a, b)
    rows = [json.loads(x) for x in (tmp_path / "d_first" / "scalars.jsonl").read_text().splitlines()]
    losses = [r["l_g_total"] for r in rows if "l_g_total" in r] + [r["l_d"] for r in rows if "l_d" in r]
    assert len(losses) == 8 and all(np.isfinite(losses))
    # interrupted after 2 of 4 iterations, resumed: the same generator and discriminator, bit for bit
    part = _run(_cfg(GAN, **{"runtime.stop_after": 2}), tmp_path / "resumed", root)
    assert not part.completed and part.last_checkpoint.name == "ckpt_s0_gan_00000002.pt"
    assert _run(_cfg(GAN), tmp_path / "resumed", root, resume="auto").completed
    assert _same(a, _weights(tmp_path / "resumed" / "model.safetensors"))
    ca = load_checkpoint(list_checkpoints(tmp_path / "d_first" / "checkpoints")[-1][2])
    cr = load_checkpoint(list_checkpoints(tmp_path / "resumed" / "checkpoints")[-1][2])
    assert _same(ca["models"]["d"], cr["models"]["d"])


# ------------------------------------------------------------------------------------------------ keep
def _losses_by_step(run_dir) -> dict[int, float]:
    """The total training loss of each step t (the row of iteration t + 1), computed with the weights after t
    updates."""
    rows = [json.loads(x) for x in (run_dir / "scalars.jsonl").read_text().splitlines()]
    return {r["iteration"] - 1: r["l_total"] for r in rows if "l_total" in r}


def test_keep_best_train_loss_exports_the_lowest_loss_weights_and_survives_resume(
    root, tmp_path, monkeypatch
):
    last = _run(_cfg(SRCNN, **{"stages.train.keep": "last"}), tmp_path / "last", root)
    best = _run(_cfg(SRCNN), tmp_path / "best", root)
    assert last.completed and best.completed
    losses = _losses_by_step(tmp_path / "last")
    assert losses == _losses_by_step(tmp_path / "best")  # keeping a copy changes nothing in the training
    k = min(losses, key=losses.get)
    assert 0 < k < 11, (
        losses
    )  # the lowest loss is not at the last step: the two rules export different weights
    # the export is the generator after k updates, i.e. what the checkpoint of iteration k of the plain run holds
    ck = {it: p for _s, it, p in list_checkpoints(tmp_path / "last" / "checkpoints")}
    want = load_checkpoint(ck[k])["models"]["g"]
    got = _weights(tmp_path / "best" / "model.safetensors")
    assert _same(got, want) and not _same(got, _weights(tmp_path / "last" / "model.safetensors"))
    kept = best.stages["train"]["kept"]
    assert kept == {
        "rule": "best_train_loss",
        "iteration": k,
        "train_loss": pytest.approx(losses[k], rel=1e-6),
    }
    from srlab.weights.io import read_metadata

    assert read_metadata(tmp_path / "best" / "model.safetensors")["kept"]["iteration"] == k
    assert "kept" not in read_metadata(tmp_path / "last" / "model.safetensors")
    assert f"keeping the weights after {k} iterations" in (tmp_path / "best" / "train.log").read_text()
    # stopped after the best step, resumed: the best copy and its loss came back from the checkpoint
    part = _run(_cfg(SRCNN, **{"runtime.stop_after": k + 1}), tmp_path / "resumed", root)
    ckpt = load_checkpoint(part.last_checkpoint)
    assert ckpt["stage_state"]["best_train_loss"]["iteration"] == k and "best_g" in ckpt["models"]
    assert _same(ckpt["models"]["best_g"], want)
    res = _run(_cfg(SRCNN), tmp_path / "resumed", root, resume="auto")
    assert res.stages["train"]["kept"]["iteration"] == k
    assert _same(_weights(tmp_path / "resumed" / "model.safetensors"), got)
    # the on-device choice (CUDA's: no host sync per step) keeps the same weights
    init = StageRunner.__init__
    monkeypatch.setattr(
        StageRunner, "__init__", lambda self, *a, **kw: init(self, *a, **{**kw, "sync_checks": False})
    )
    _run(_cfg(SRCNN), tmp_path / "device", root)
    assert _same(_weights(tmp_path / "device" / "model.safetensors"), got)


# ------------------------------------------------------------------------------------ the study recipes
def test_fp16_trains_only_where_its_gradient_scaler_runs(root, tmp_path):
    tr = Trainer(
        _cfg(SRCNN, **{"runtime.amp": "fp16", "stages.train.iterations": 1, "checkpoint.every": 0}),
        out_dir=tmp_path / "o",
        data_root=root,
        echo=None,
    )
    assert tr.run().completed and (tr.precision, tr.amp) == ("fp32", None)
    assert not tr.runner.scaler_g.is_enabled()
    log = (tmp_path / "o" / "train.log").read_text()
    assert "runtime.amp fp16 trains on CUDA only; fp32 on cpu" in log


def test_the_study_recipes_are_the_studys_training():
    cfg, _ = load_config("esrgan_x2_study")
    assert list(cfg.stages) == ["gan"] and cfg.model.name == "study-esrgan-x2"
    st = cfg.stages["gan"]
    assert st.init is None and st.kind == "gan"  # one GAN stage from random initialisation
    assert (st.iterations, st.batch_size, st.d_first, st.keep) == (6000, 20, True, "last")
    for o in (st.optim, st.optim_d):
        assert (o.type, o.lr, o.betas) == ("adam", 1e-4, (0.9, 0.999))
    L = st.losses
    assert (L.pixel, L.pixel_weight, L.gan, L.gan_weight) == ("l1", 1.0, "ragan_sum", 1e-3)
    assert (L.perceptual, L.perceptual_weight, L.perceptual_layers) == ("vgg19", 1.0, {"pool3": 1.0})
    assert (L.perceptual_criterion, L.perceptual_normalize, L.perceptual_weights) == ("l1", False, None)
    assert len(PerceptualLoss(L.perceptual_layers, weights="random").vgg.features) == 19  # features[:19]
    assert (st.discriminator.name, st.discriminator.hparams) == ("study_discriminator", {"input_size": 128})
    d = cfg.data
    assert (d.train, d.mode, d.crop, d.degradation, d.quantize_lr, d.flip, d.rot90) == (
        "DIV2K_train_crop128", "center", 128, "study", False, False, False
    )  # fmt: skip
    assert cfg.runtime.amp == "fp16" and cfg.protocol == "study"
    # the networks it names are the study's (parameter counts of its generator and discriminator)
    g, desc = build_model(cfg.model.name, init_weights=False, **cfg.model.hparams)
    dnet, _ = build_model(st.discriminator.name, init_weights=False, **st.discriminator.hparams)
    assert (desc.arch, desc.scale, desc.params) == ("study_rrdbnet", 2, 11_604_803)
    assert sum(p.numel() for p in dnet.parameters()) == 14_499_401

    s, _ = load_config("srcnn_x2_study")
    t = s.stages["train"]
    assert s.model.name == "srcnn-study-x2" and list(s.stages) == ["train"]
    assert (t.iterations, t.batch_size, t.losses.pixel, t.optim.lr, t.optim.betas) == (
        1600, 20, "mse", 1e-4, (0.9, 0.999)
    )  # fmt: skip
    net, sd = build_model(s.model.name, **s.model.hparams)
    assert (sd.hparams["upsampler"], net.conv1.padding_mode, sd.params) == ("bilinear", "zeros", 69_251)
    assert s.runtime.amp == "fp16" and s.data.degradation == "study" and not s.data.quantize_lr
    for name in ("esrgan_x2_study", "srcnn_x2_study"):  # the quick budgets stay short
        q, _ = load_config(name, quick=True)
        assert all(x.iterations <= 1000 for x in q.stages.values())
