"""srlab.runtime: compile policy, precision rules (fake descriptors), threads, the cache folder, devices."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from srlab import runtime
from srlab.errors import ConfigError

CPU, CUDA, MPS = torch.device("cpu"), torch.device("cuda"), torch.device("mps")


def _desc(fp16=True, bf16=True):
    return SimpleNamespace(supports_fp16=fp16, supports_bf16=bf16, name="fake")


# ---------------------------------------------------------------------------------------------- compile
def test_check_compile_mode_refuses_unknown_modes():
    for mode in runtime.COMPILE_MODES:
        assert runtime.check_compile_mode(mode) == mode
    with pytest.raises(
        ConfigError, match="unknown compile mode 'fastest'; use one of default, reduce-overhead"
    ):
        runtime.check_compile_mode("fastest")


class _FakeCompiled:
    """What the fake torch.compile returns: records the cache variable seen at each call."""

    def __init__(self, module, mode):
        self.module, self.mode, self.seen = module, mode, []
        self.extra = "passes through"

    def __call__(self, x):
        self.seen.append(os.environ.get("TORCHINDUCTOR_CACHE_DIR"))
        return x + 1


@pytest.fixture
def fake_compile(monkeypatch, tmp_path):
    made = []

    def compile(module, mode=None, **kw):
        made.append(_FakeCompiled(module, mode))
        return made[-1]

    monkeypatch.setattr(torch, "compile", compile)
    monkeypatch.setenv("SRLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    return made


def test_compile_module_sets_the_inductor_cache_only_during_a_call(fake_compile, tmp_path):
    mod = torch.nn.Identity()
    wrapped = runtime.compile_module(mod, "reduce-overhead")
    inner = fake_compile[0]
    assert inner.module is mod and inner.mode == "reduce-overhead"
    assert "TORCHINDUCTOR_CACHE_DIR" not in os.environ  # compile_module itself leaves the environment alone
    assert wrapped(1) == 2
    want = str(runtime.cache_dir("inductor"))
    assert want == str(tmp_path / "cache" / "inductor") and Path(want).is_dir()
    assert inner.seen == [want]
    assert "TORCHINDUCTOR_CACHE_DIR" not in os.environ  # removed again after the call
    assert wrapped.extra == "passes through" and wrapped.module is mod  # attributes of the compiled module
    # "default" is torch.compile's own default mode
    runtime.compile_module(mod, "default")
    assert fake_compile[1].mode is None
    with pytest.raises(ConfigError):
        runtime.compile_module(mod, "fastest")


def test_compile_module_restores_a_variable_set_after_it_was_made(fake_compile, monkeypatch, tmp_path):
    wrapped = runtime.compile_module(torch.nn.Identity())
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/later")
    wrapped(0)
    assert fake_compile[0].seen == [str(tmp_path / "cache" / "inductor")]
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == "/later"


def test_compile_module_respects_a_user_set_inductor_cache(fake_compile, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    assert runtime.compile_cache_dir() == tmp_path / "mine"
    wrapped = runtime.compile_module(torch.nn.Identity())
    wrapped(0)
    assert fake_compile[0].seen == [str(tmp_path / "mine")]
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "mine")
    assert not (tmp_path / "cache").exists()


# -------------------------------------------------------------------------------------------- precision
@pytest.fixture
def gpu(monkeypatch):
    """Pretend a CUDA device exists; ``gpu(bf16=...)`` says whether it has bf16."""

    def make(bf16=True):
        monkeypatch.setattr(runtime, "cuda_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)

    return make


def test_training_precision_auto(gpu):
    rp = runtime.resolve_precision
    assert rp("auto", CPU, _desc(), training=True) == "fp32"
    assert rp("auto", MPS, _desc(), training=True) == "fp32"
    gpu(bf16=True)
    assert rp("auto", CUDA, _desc(), training=True) == "bf16"
    assert rp(None, CUDA, None, training=True) == "bf16"
    assert rp("auto", CUDA, _desc(bf16=False), training=True) == "fp16"
    assert rp("auto", CUDA, _desc(fp16=False, bf16=False), training=True) == "fp32"
    gpu(bf16=False)
    assert rp("auto", CUDA, _desc(), training=True) == "fp16"
    assert rp("auto", CUDA, _desc(fp16=False), training=True) == "fp32"


def test_inference_precision_auto(gpu):
    rp = runtime.resolve_precision
    assert rp("auto", CPU, _desc()) == "fp32"
    gpu(bf16=True)
    assert rp("auto", CUDA, _desc()) == "fp16"  # bf16 only when asked
    assert rp("auto", MPS, _desc()) == "fp16"
    assert rp("auto", CUDA, _desc(fp16=False)) == "fp32"


def test_explicit_precisions_and_what_the_model_or_device_cannot_run(gpu):
    rp = runtime.resolve_precision
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert rp("off", CPU, _desc(), training=True) == "fp32"  # the training configs' "no autocast"
        assert rp("fp32", CUDA, _desc(False, False)) == "fp32"
        assert rp("bf16", CPU, _desc(), training=True) == "bf16"
        assert rp("FP16", CPU, _desc()) == "fp16"
    with pytest.warns(UserWarning, match="does not support fp16"):
        assert rp("fp16", CPU, _desc(fp16=False), training=True) == "fp32"
    with pytest.warns(UserWarning, match="bf16 is not supported by model fake"):
        assert rp("bf16", CPU, _desc(bf16=False), training=True) == "fp32"
    with pytest.warns(UserWarning, match="on cuda"):
        assert rp("bf16", CUDA, _desc()) == "fp32"  # no CUDA here: no bf16 on it
    gpu(bf16=False)
    with pytest.warns(UserWarning):
        assert rp("bf16", CUDA, _desc(), training=True) == "fp32"
    with pytest.raises(ConfigError, match="unknown precision 'fp8'"):
        rp("fp8", CPU)


def test_amp_and_torch_dtypes():
    assert runtime.amp_dtype("fp32") is None
    assert runtime.amp_dtype("fp16") is torch.float16 and runtime.amp_dtype("bf16") is torch.bfloat16
    assert runtime.torch_dtype("fp32") is torch.float32


# ---------------------------------------------------------------------------------------------- threads
def test_threads_restores_the_count():
    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    with runtime.threads(other):
        assert torch.get_num_threads() == other
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), runtime.threads(other):
        raise RuntimeError("inside")
    assert torch.get_num_threads() == before
    for leave in (None, 0):
        with runtime.threads(leave):
            assert torch.get_num_threads() == before
    with runtime.one_thread(CPU):
        assert torch.get_num_threads() == 1
    with runtime.one_thread(CUDA):
        assert torch.get_num_threads() == before
    assert torch.get_num_threads() == before


# ------------------------------------------------------------------------------------------------ cache
def test_cache_root_honours_srlab_cache_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("SRLAB_CACHE", str(tmp_path / "s"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert runtime.cache_root() == tmp_path / "s"
    assert runtime.cache_dir("weights") == tmp_path / "s" / "weights"
    monkeypatch.setenv("SRLAB_CACHE", "~/srl")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert runtime.cache_root() == tmp_path / "home" / "srl"
    monkeypatch.delenv("SRLAB_CACHE")
    assert runtime.cache_root() == tmp_path / "x" / "srlab"
    assert runtime.cache_dir("onnx") == tmp_path / "x" / "srlab" / "onnx"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert runtime.cache_root() == tmp_path / "home" / ".cache" / "srlab"


# ---------------------------------------------------------------------------------------------- devices
def test_resolve_device(monkeypatch):
    assert runtime.resolve_device("cpu") == CPU and runtime.resolve_device(CUDA) is CUDA
    with pytest.raises(ConfigError, match="unknown device 'tpu'"):
        runtime.resolve_device("tpu")
    monkeypatch.setattr(runtime, "cuda_available", lambda: False)
    monkeypatch.setattr(runtime, "_mps_available", lambda: False)
    assert runtime.resolve_device("auto") == CPU and runtime.resolve_device(None) == CPU
    with pytest.raises(ConfigError, match="no CUDA device is available"):
        runtime.resolve_device("cuda:0")
    with pytest.raises(ConfigError, match="MPS is not available"):
        runtime.resolve_device("mps")
    monkeypatch.setattr(runtime, "_mps_available", lambda: True)
    assert runtime.resolve_device("auto") == MPS
    monkeypatch.setattr(runtime, "cuda_available", lambda: True)
    assert runtime.resolve_device("auto") == CUDA
