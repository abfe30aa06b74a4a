"""Any architecture trains by name: srlab's own families and the spandrel-backed ones.

For each listed architecture a tiny network trains a few iterations through srlab's trainer on a few tiny
images (the same batch every iteration, so the L1 loss must fall), and the released model then exports to
ONNX (or is refused with the family's recorded reason), loads back in srlab and in spandrel's own loader
(equal outputs), upscales an image and is evaluated by ``srlab.eval.loop``.

Outside the per-architecture runs: hyper-parameters are checked against the upstream signature, refused
architectures say why, and without torchvision the networks still build (spandrel's registry is bypassed)
while one that needs it names the install command.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

import srlab
from spandrelutil import import_spandrel
from srlab.errors import ConfigError
from srlab.models.registry import FAMILIES, PRESETS, build_model, family_of
from srlab.weights.io import read_metadata, read_state_dict
from trainutil import make_cfg, run_quiet

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.filterwarnings("ignore")]

# tiny hyper-parameters (x2) for every architecture the brief lists; drop-path off so the loss is smooth
TINY = {
    "swinir": dict(upscale=2, img_size=16, window_size=4, embed_dim=12, depths=[2], num_heads=[2],
                   mlp_ratio=2.0, upsampler="pixelshuffledirect", drop_path_rate=0.0),
    "hat": dict(upscale=2, img_size=16, window_size=4, embed_dim=12, depths=[2], num_heads=[2],
                compress_ratio=3, squeeze_factor=4, mlp_ratio=2.0, num_feat=8, drop_path_rate=0.0),
    "dat": dict(upscale=2, img_size=16, embed_dim=32, split_size=[2, 4], depth=[2], num_heads=[2],
                expansion_factor=2.0, drop_path_rate=0.0),
    "atd": dict(upscale=2, img_size=16, embed_dim=12, depths=[2], num_heads=[2], window_size=4,
                category_size=256,  # spandrel cannot read it from the tensors and assumes 256
        num_tokens=8, reducted_dim=4, mlp_ratio=1.0, upsampler="pixelshuffledirect"),
    "drct": dict(upscale=2, img_size=16, embed_dim=12, depths=[2], num_heads=[2], window_size=4, gc=8,
                 upsampler="pixelshuffle", drop_path_rate=0.0),
    "rgt": dict(upscale=2, img_size=16, embed_dim=32, depth=[2], num_heads=[2], split_size=[2, 4],
                mlp_ratio=2.0, drop_path_rate=0.0),
    "swin2sr": dict(upscale=2, img_size=16, window_size=4, embed_dim=12, depths=[2], num_heads=[2],
                    mlp_ratio=2.0, upsampler="pixelshuffledirect", drop_path_rate=0.0),
    "span": dict(scale=2, num_in_ch=3, num_out_ch=3, feature_channels=8),  # native (srlab.models.span)
    "omnisr": dict(up_scale=2, num_feat=16, block_num=1, window_size=4, res_num=1),
    "safmn": dict(upscaling_factor=2, dim=8, n_blocks=2),
    "plksr": dict(upscaling_factor=2, dim=16, n_blocks=2, kernel_size=7),
    "rcan": dict(scale=2, n_resgroups=1, n_resblocks=2, n_feats=8, reduction=4),
    "craft": dict(upscale=2, window_size=16, embed_dim=32, depths=[2], num_heads=[2], split_size_0=2,
                  split_size_1=8),
    "realcugan": dict(scale=2),
    # more plain SR networks spandrel carries
    "ditn": dict(upscale=2, dim=12, ITL_blocks=1, SAL_blocks=1, UFONE_blocks=1, patch_size=8),
    "dctlsa": dict(upscale=2, nf=10, num_modules=6, num_head=5),  # upstream concatenates exactly 6 modules
    "seemore": dict(scale=2, embedding_dim=8, num_layers=1, num_experts=2, recursive=2),
    "mosr": dict(upscale=2, n_block=1, dim=8),
    "swiftsrgan": dict(upscale_factor=2, num_channels=8, num_blocks=1),
    "realplksr": dict(upscaling_factor=2, dim=16, n_blocks=2, kernel_size=7),
    "compact": dict(scale=2, num_feat=8, num_conv=2),  # native srvgg
    "esrgan": dict(scale=2, num_block=1, num_feat=8, num_grow_ch=32),  # native rrdbnet (spandrel: growth 32)
}  # fmt: skip
SPANDREL_ID = {"esrgan": "ESRGAN", "compact": "Compact", "realplksr": "PLKSR", "span": "SPAN"}
CROP = {"realcugan": 64}  # its x2 network needs 32-pixel inputs
LR = {"swiftsrgan": 1e-2}  # its tanh output moves slowly at 2e-3 in six steps


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("data")
    for sub, n, size, seed in (("train", 4, 64, 0), ("val", 2, 48, 1)):
        (r / sub).mkdir()
        rng = np.random.default_rng(seed)
        for i in range(n):
            small = rng.integers(0, 256, size=(size // 8, size // 8, 3)).astype(np.uint8)
            Image.fromarray(small).resize((size, size), Image.BICUBIC).save(r / sub / f"{i}.png")
    return r


def _config(name: str) -> dict:
    return {
        "name": f"tiny_{name}",
        "scale": 2,
        "model": {"name": name, "hparams": TINY[name]},
        "data": {"train": "train", "mode": "center", "crop": CROP.get(name, 32), "flip": False,
                 "rot90": False, "shuffle": False},
        "val": {"set": "val", "every": 0, "ssim": False},
        "stages": {"train": {"iterations": 6, "batch_size": 4, "optim": {"lr": LR.get(name, 2e-3)}, "losses": {"pixel": "l1"}}},
        "checkpoint": {"every": 0},
        "log": {"every": 1, "progress": False, "tensorboard": False},
        "runtime": {"threads": 1},
    }  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TINY))
def test_trains_exports_reloads_upscales_and_evaluates(name, root, tmp_path):
    from srlab.eval.loop import evaluate
    from srlab.inference import Upscaler

    out = tmp_path / "run"
    res = run_quiet(make_cfg(_config(name)), out, root)
    assert res.completed and res.model_path.is_file()
    rows = [json.loads(ln) for ln in (out / "scalars.jsonl").read_text().splitlines()]
    losses = [r["l_pix"] for r in rows if "l_pix" in r]
    assert len(losses) == 6 and losses[-1] < 0.9 * losses[0], losses

    path = res.model_path
    model, desc = srlab.load_model(path)
    rec = family_of(name)
    assert desc.scale == 2 and read_metadata(path)["arch"] == desc.arch
    if rec.backend == "spandrel":
        assert desc.arch == name and read_metadata(path)["hparams"] == TINY[name]
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        ours = model(x)

    # spandrel reads the file srlab wrote as it is (the upstream key layout)
    spandrel = import_spandrel()
    loaded = spandrel.ModelLoader().load_from_state_dict(read_state_dict(path))
    assert loaded.architecture.id == SPANDREL_ID.get(name, loaded.architecture.id)
    assert loaded.architecture.id.lower() == name or name in SPANDREL_ID
    with torch.no_grad():
        theirs = loaded.model.eval()(x.clone())
    assert (ours - theirs).abs().max().item() < 1e-4

    img = (np.random.default_rng(2).random((20, 28, 3)) * 255).astype(np.uint8)
    up = Upscaler(str(path), device="cpu", tile=0, precision="fp32", backend="torch")(img)
    assert up.shape == (40, 56, 3) and up.dtype == np.uint8

    ev = evaluate(
        [str(path)], ["val"], [2], set_paths={"val": root / "val"}, device="cpu", log=lambda m: None
    )
    assert len(ev.rows) == 2 and all(np.isfinite(r["psnr_y"]) and r["psnr_y"] > 5 for r in ev.rows)

    pytest.importorskip("onnxruntime")
    from srlab.export import OnnxModel, export_onnx

    if rec.hints.no_onnx:  # the recorded reason stays true: the export fails, or its graph runs one size only
        with pytest.raises(Exception):  # noqa: B017,PT011 - torch.onnx raises several kinds
            OnnxModel(export_onnx(model, tmp_path / "m.onnx"))(torch.rand(1, 3, 32, 48))
        pytest.skip(f"{name}: no ONNX export: {rec.hints.no_onnx}")
    onnx_model = OnnxModel(export_onnx(model, tmp_path / "m.onnx"))
    y = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        assert (onnx_model(y) - model(y)).abs().max().item() < 1e-4


def test_every_listed_architecture_is_registered_with_presets():
    for name in TINY:
        rec = family_of(name)
        assert rec is not None and rec.trainable and not rec.missing(), name
    spandrel_backed = {f for f, r in FAMILIES.items() if r.backend == "spandrel"}
    assert spandrel_backed >= set(TINY) - {"compact", "esrgan", "span"}
    assert FAMILIES["span"].backend == "native"  # srlab's own SPAN keeps the name
    assert family_of("compact").family == "srvgg" and family_of("esrgan").family == "rrdbnet"  # native wins
    assert family_of("spandrel:SwinIR").family == "swinir"  # a foreign SwinIR file finds the same record
    light = PRESETS["swinir-light-x2"]
    assert light[0] == "swinir" and light[1] == dict(
        upscale=2, img_size=64, window_size=8, embed_dim=60, depths=[6] * 4, num_heads=[6] * 4,
        mlp_ratio=2.0, upsampler="pixelshuffledirect", img_range=1.0, resi_connection="1conv",
    )  # fmt: skip
    for p in ("swinir-classical-x2", "hat-s-x4", "hat-x4", "rcan-x2", "omnisr-x2", "safmn-x2", "span-x4"):
        assert p in PRESETS and PRESETS[p][2], p


def test_a_preset_builds_the_published_network():
    model, desc = build_model("swinir-light-x2")
    assert desc.scale == 2 and desc.arch == "swinir"
    assert 850_000 < desc.params < 950_000  # SwinIR-light x2: 910K parameters (the paper's Table 3)
    model, desc = build_model("rcan-x2")
    assert 15_000_000 < desc.params < 16_000_000  # RCAN: about 15.4M parameters (the paper's Table 7)
    assert build_model("safmn-x4")[1].params == 239_520  # SAFMN x4: 240K (the paper's Table 2)


def test_unknown_hyper_parameters_are_named_with_the_upstream_ones(root, tmp_path):
    with pytest.raises(ConfigError) as e:
        build_model("swinir", upscale=2, embed_dims=12)
    msg = str(e.value)
    assert "'embed_dims'" in msg and "'swinir'" in msg and "embed_dim," in msg and "\n" not in msg
    cfg = _config("swinir")
    cfg["model"]["hparams"] = {**TINY["swinir"], "windows": 4}
    with pytest.raises(
        ConfigError, match=r"unknown hyper-parameter 'windows' for 'swinir'; valid: .*window_size"
    ):
        run_quiet(make_cfg(cfg), tmp_path / "bad", root)


@pytest.mark.parametrize(("name", "why"), [("lama", "mask"), ("gfpgan", "face"), ("codeformer", "face")])
def test_architectures_that_are_not_plain_sr_are_refused_with_the_reason(name, why):
    with pytest.raises(ConfigError, match=f"srlab does not build '{name}': .*{why}"):
        build_model(name)


def test_without_torchvision_the_networks_still_build_and_one_that_needs_it_names_the_install():
    """spandrel's own package import fails without torchvision; the architecture modules load anyway."""
    code = textwrap.dedent(
        """
        import importlib.abc, sys
        class NoTorchvision(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "torchvision":
                    raise ModuleNotFoundError("No module named 'torchvision'", name="torchvision")
        sys.meta_path.insert(0, NoTorchvision())
        import torch
        from srlab.errors import ConfigError
        from srlab.models.registry import build_model
        from srlab.models.spandrel_net import import_arch_module
        m, d = build_model("rcan", scale=2, n_resgroups=1, n_resblocks=2, n_feats=8, reduction=4)
        assert m(torch.rand(1, 3, 8, 8)).shape == (1, 3, 16, 16)
        assert not hasattr(sys.modules.get("spandrel"), "MAIN_REGISTRY")
        try:
            import_arch_module("LaMa")
        except ConfigError as exc:
            print("REFUSED", exc)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (
        "REFUSED spandrel's LaMa needs torchvision: pip install torch torchvision --index-url" in out.stdout
    )
    assert "download.pytorch.org/whl/cpu" in out.stdout


def test_srlab_models_lists_the_spandrel_backed_names(capsys):
    from srlab.cli import main

    assert main(["models", "swinir*"]) == 0
    rows = {ln.split()[0]: ln.split() for ln in capsys.readouterr().out.splitlines()[1:]}
    assert rows["swinir"][1:4] == ["architecture", "spandrel", "swinir"]
    assert rows["swinir-light-x2"][1:5] == ["preset", "spandrel", "swinir", "2"]
    assert main(["models", "lama"]) == 0
    line = capsys.readouterr().out.splitlines()[1]
    assert line.split()[:3] == ["lama", "refused", "spandrel"] and "needs a mask" in line


def test_hyper_parameters_spandrel_cannot_read_back_are_named():
    """CRAFT's window size is not in its tensors: spandrel's loader assumes 16."""
    hp = {**TINY["craft"], "window_size": 8}
    with pytest.warns(UserWarning, match=r"craft: spandrel's own loader reads .*'window_size': 16"):
        model, _ = build_model("craft", **hp)
    assert model.spandrel_reads_otherwise == {"window_size": 16}
    assert build_model("craft", **TINY["craft"])[0].spandrel_reads_otherwise == {}


@pytest.mark.slow
def test_a_spandrel_backed_run_resumes_bitwise_with_ema(root, tmp_path):
    """Checkpoints, EMA and resume go through the wrapper's state dict (the upstream keys) both ways."""
    from trainutil import load_weights, same_tensors

    base = _config("swinir")
    base["stages"]["train"].update(ema=0.9, iterations=4)
    base["checkpoint"] = {"every": 2}
    full = run_quiet(make_cfg(base), tmp_path / "a", root)
    part = run_quiet(make_cfg(base, **{"runtime.stop_after": 2}), tmp_path / "b", root)
    assert full.completed and not part.completed
    done = run_quiet(make_cfg(base), tmp_path / "b", root, resume="auto")
    assert done.completed
    a, b = load_weights(full.model_path), load_weights(done.model_path)
    assert same_tensors(a, b) and not any(k.startswith("model.") for k in a)
    assert set(a) == set(build_model("swinir", **TINY["swinir"])[0].model.state_dict())
