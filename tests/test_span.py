"""srlab's own SPAN against the upstream network spandrel vendors.

The upstream class is the independent reference: random weights in one load in the other (both ways) and
give the same outputs in the training form (the branches) and the evaluation form (the re-parameterised
conv); srlab's training form (one product kernel per step) has the branches' outputs and gradients; files
srlab writes load in spandrel and in ``srlab.load_model`` without spandrel.
"""

from __future__ import annotations

import sys

import pytest
import torch

import srlab
from spandrelutil import import_spandrel  # the torchvision stand-in for the one import
from srlab.errors import WeightsError
from srlab.models.span import SPAN, RepConv3
from srlab.weights.io import read_metadata, save_model

pytestmark = pytest.mark.usefixtures("one_thread")
TOL = 1e-5


@pytest.fixture(scope="module")
def upstream_cls():
    import_spandrel()
    from spandrel.architectures.SPAN import SPAN as UpstreamSPAN

    return UpstreamSPAN


def _randomise(net: torch.nn.Module, seed: int = 0) -> None:
    # weights of the size a trained network has (PyTorch's default init makes outputs far outside [0, 1])
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.02)


def _close(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-6)).item()


@pytest.mark.parametrize("scale, feat, norm", [(2, 16, True), (4, 8, True), (3, 8, False)])
def test_outputs_equal_upstream_in_both_forms(upstream_cls, scale, feat, norm):
    theirs = upstream_cls(num_in_ch=3, num_out_ch=3, feature_channels=feat, upscale=scale, norm=norm)
    _randomise(theirs)
    ours, desc = srlab.build_model("span", scale=scale, feature_channels=feat, norm=norm)
    ours.load_state_dict(theirs.state_dict())
    assert desc.params == sum(p.numel() for p in theirs.parameters())
    x = torch.rand(2, 3, 13, 17)
    ref = theirs.train()(x)
    assert ref.shape == (2, 3, 13 * scale, 17 * scale)
    assert _close(ours.train()(x), ref) < TOL  # the product kernel
    ours.branch_forward = True
    assert _close(ours(x), ref) < TOL  # the branches themselves
    with torch.no_grad():
        ev = theirs.eval()(x)
        assert _close(ours.eval()(x), ev) < TOL
        # the re-parameterised conv is the branches' function (upstream's eval form is its own check)
        assert _close(ev, ref.detach()) < TOL


def test_product_kernel_training_has_the_branch_gradients():
    torch.manual_seed(1)
    a, _ = srlab.build_model("span", scale=2, feature_channels=8)
    _randomise(a, 2)
    b, _ = srlab.build_model("span", scale=2, feature_channels=8)
    b.load_state_dict(a.state_dict())
    b.branch_forward = True
    x, y = torch.rand(2, 3, 12, 12), torch.rand(2, 3, 24, 24)
    for net in (a, b):
        net.train()
        (net(x) - y).abs().mean().backward()
    grads = {n: p.grad for n, p in a.named_parameters() if p.requires_grad}
    assert grads and all(g is not None for g in grads.values())
    for n, p in b.named_parameters():
        if n in grads:
            assert _close(grads[n], p.grad) < 1e-4, n
        else:
            assert p.grad is None and "eval_conv" in n  # the re-parameterised conv is never trained


def test_eval_conv_follows_the_branches_on_eval_load_and_save(tmp_path):
    conv = RepConv3(4, 6)
    _randomise(conv, 3)  # eval_conv now random too: stale
    x = torch.rand(1, 4, 9, 9)
    train_out = conv.train()(x).detach()
    sd = conv.state_dict()  # saving refreshes eval_conv
    w, b = conv.fused()
    assert torch.allclose(sd["eval_conv.weight"], w) and torch.allclose(sd["eval_conv.bias"], b)
    with torch.no_grad():
        conv.eval_conv.weight.zero_()
        assert _close(conv.eval()(x), train_out) < TOL  # switching to eval refreshes it
        other = RepConv3(4, 6).eval()
        other.load_state_dict({**sd, "eval_conv.weight": torch.zeros_like(sd["eval_conv.weight"])})
        assert _close(other(x), train_out) < TOL  # so does loading (a stale eval_conv in a file)


def test_srlab_file_loads_in_spandrel_and_in_srlab_without_spandrel(upstream_cls, tmp_path, monkeypatch):
    ours, _ = srlab.build_model("span-x2")
    _randomise(ours, 4)
    path = save_model(tmp_path / "span.safetensors", ours.train())  # saved from the training form
    x = torch.rand(1, 3, 16, 20)
    with torch.no_grad():
        ref = ours.eval()(x)

    from safetensors.torch import load_file

    theirs = upstream_cls(num_in_ch=3, num_out_ch=3, feature_channels=48, upscale=2)
    theirs.load_state_dict(load_file(str(path)))
    with torch.no_grad():
        assert _close(theirs.eval()(x), ref) < TOL

    monkeypatch.setitem(sys.modules, "spandrel", None)  # any import of spandrel now fails
    for file in (path, tmp_path / "bare.pth"):
        if file.suffix == ".pth":  # a foreign checkpoint: detected by its keys, hparams from shapes
            torch.save({"params_ema": theirs.state_dict()}, file)
        model, desc = srlab.load_model(file)
        assert isinstance(model, SPAN) and desc.arch == "span" and desc.scale == 2
        assert desc.hparams["feature_channels"] == 48 and not model.training
        with torch.no_grad():
            assert _close(model(x), ref) < TOL
    assert read_metadata(path)["arch"] == "span"


def test_layout_detection_reads_the_shapes(upstream_cls, tmp_path):
    from srlab.weights.convert import convert_state_dict, detect_layout

    for kw, want in (
        (dict(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=4), (4, 3, 3, 8, True)),
        (dict(num_in_ch=1, num_out_ch=1, feature_channels=8, upscale=2, norm=False), (2, 1, 1, 8, False)),
    ):
        sd = upstream_cls(**kw).state_dict()
        assert detect_layout(sd) == "span"
        arch, hp, _, unmapped = convert_state_dict(sd)
        assert arch == "span" and not unmapped
        assert (hp["scale"], hp["num_in_ch"], hp["num_out_ch"], hp["feature_channels"], hp["norm"]) == want
        with pytest.raises(WeightsError, match=f"x{want[0]} SPAN network, not x3"):
            convert_state_dict(sd, scale=3)


def test_forged_span_files_are_one_line_errors(tmp_path):
    net, _ = srlab.build_model("span", scale=2, feature_channels=8)
    sd = net.state_dict()
    cases = {
        "extra_block": ({**sd, "block_7.c1_r.sk.weight": sd["block_1.c1_r.sk.weight"]}, "block_1 .. block_6"),
        "bad_upsampler": ({**sd, "upsampler.0.weight": torch.zeros(13, 8, 3, 3)}, "upsampler has 13 outputs"),
        "bad_shape": ({**sd, "conv_cat.weight": torch.zeros(8, 5, 1, 1)}, "conv_cat.weight"),
    }
    for name, (bad, msg) in cases.items():
        path = tmp_path / f"{name}.pth"
        torch.save(bad, path)
        with pytest.raises(WeightsError, match=msg) as exc:
            srlab.load_model(path)
        assert str(path) in str(exc.value) and "\n" not in str(exc.value)


def test_a_few_training_steps_lower_the_loss():
    torch.manual_seed(5)
    net, _ = srlab.build_model("span", scale=2, feature_channels=8)
    net.train()
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=2e-3)
    hr = torch.rand(4, 3, 24, 24)
    lr = torch.nn.functional.avg_pool2d(hr, 2)
    losses = []
    for _ in range(30):
        loss = (net(lr) - hr).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    with torch.no_grad():  # the trained branches and the re-parameterised conv still agree
        assert _close(net.eval()(lr), net.train()(lr)) < TOL


def test_exports_to_onnx(tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from srlab.export import export_onnx

    net, desc = srlab.build_model("span", scale=2, feature_channels=8)
    _randomise(net, 6)
    net.eval()
    out = export_onnx(net, tmp_path / "span.onnx", descriptor=desc)
    x = torch.rand(1, 3, 11, 14)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {"lr": x.numpy()})
    with torch.no_grad():
        assert _close(torch.from_numpy(got), net(x)) < 1e-4
