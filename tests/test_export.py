import os

import pytest
import torch

from srlab.errors import ConfigError, SrlabError
from srlab.models.registry import build_model

pytest.importorskip("onnxruntime")

from srlab.export import OnnxModel, cached_onnx, export_onnx  # noqa: E402

CASES = [
    ("rrdbnet", dict(scale=4, num_block=2, num_feat=16, num_grow_ch=8)),
    ("rrdbnet", dict(scale=2, num_block=1, num_feat=8, num_grow_ch=4, pixel_unshuffle=True)),
    ("srvgg", dict(scale=3, num_conv=4, num_feat=16)),
    ("srcnn", dict(scale=2, num_channels=1)),
    ("srcnn", dict(scale=3, upsampler="bilinear")),
]


@pytest.mark.parametrize("arch,hp", CASES)
def test_onnx_matches_pytorch_with_dynamic_size(tmp_path, arch, hp):
    model, desc = build_model(arch, **hp)
    model.eval()
    path = export_onnx(model, tmp_path / "m.onnx", descriptor=desc)
    onnx_model = OnnxModel(path, threads=1)
    assert onnx_model.scale == desc.scale and onnx_model.descriptor.hparams == desc.hparams
    # a size and batch different from the export sample
    x = torch.rand(2, desc.in_channels, 20, 28)
    with torch.no_grad():
        ref = model(x)
    got = onnx_model(x)
    assert got.shape == ref.shape
    assert (got - ref).abs().max().item() <= 1e-4


def test_interpolation_has_nothing_to_export(tmp_path):
    model, _ = build_model("bicubic-x2")
    with pytest.raises(ConfigError, match="nothing to export"):
        export_onnx(model, tmp_path / "b.onnx")


def test_bad_onnx_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx model at all")
    with pytest.raises(SrlabError, match="bad.onnx"):
        OnnxModel(bad)


def test_cache_reuses_export(tmp_path, monkeypatch):
    monkeypatch.setenv("SRLAB_CACHE", str(tmp_path))
    model, _ = build_model("srvgg", scale=2, num_conv=2, num_feat=8)
    a = cached_onnx(model, threads=1)
    mtime = a.path.stat().st_mtime_ns
    b = cached_onnx(model, threads=1)
    assert a.path == b.path and b.path.stat().st_mtime_ns == mtime
    # different weights -> different file
    with torch.no_grad():
        model.body[0].weight.add_(1.0)
    c = cached_onnx(model, threads=1)
    assert c.path != a.path


def test_truncated_cached_export_is_exported_again(tmp_path, monkeypatch):
    monkeypatch.setenv("SRLAB_CACHE", str(tmp_path))
    model, _ = build_model("srvgg", scale=2, num_conv=2, num_feat=8)
    model.eval()
    first = cached_onnx(model, threads=1)
    good = first.path.read_bytes()
    x = torch.rand(1, 3, 10, 12)
    for cut in (len(good) // 2, len(good) - 40, 0):
        first.path.write_bytes(good[:cut])
        with pytest.warns(UserWarning, match="exported it again") as record:
            again = cached_onnx(model, threads=1)
        assert len(record) == 1 and str(first.path) in str(record[0].message)
        assert again.path == first.path and again.path.read_bytes() == good
        with torch.no_grad():
            assert (again(x) - model(x)).abs().max().item() <= 1e-4
    assert sorted(p.name for p in first.path.parent.iterdir()) == [first.path.name]  # no temp file left


def test_exported_file_follows_the_umask(tmp_path):
    import stat

    model, _ = build_model("srvgg", scale=2, num_conv=1, num_feat=4)
    old = os.umask(0o022)
    try:
        path = export_onnx(model.eval(), tmp_path / "m.onnx")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_export_onto_a_folder_is_one_line(tmp_path):
    model, _ = build_model("srvgg", scale=2, num_conv=1, num_feat=4)
    (tmp_path / "out").mkdir()
    with pytest.raises(SrlabError, match="is a folder"):
        export_onnx(model.eval(), tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == [] and sorted(os.listdir(tmp_path)) == ["out"]
