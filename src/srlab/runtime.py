"""Where srlab runs: device, precision, CPU threads, the cache folder and ``torch.compile``.

Every command (``upscale``, ``eval``, ``train``, ``reproduce``) and the Python API resolve these here, so
``--device auto`` or ``precision: auto`` means the same thing everywhere:

- device ``auto``: CUDA if available, else Apple MPS, else the CPU. ``cuda``, ``cuda:N`` and ``mps`` are
  refused with one line when that device is not there.
- precision ``auto``: fp32 on the CPU (PyTorch's fp16/bf16 CPU kernels are slower than fp32 on most CPUs
  and bf16 autocast has no fast training convolutions there); on a GPU, inference runs fp16 where the model
  supports it (bf16 keeps 8 mantissa bits, up to a grey level near white, so only when asked) and training
  autocasts to bf16 where the GPU has it (no loss scaling needed), else fp16. ``bf16`` training on the CPU
  runs only where the CPU has native bf16 (AVX512-BF16 / AMX; falls back to fp32 with a warning elsewhere):
  there SRCNN's training step is several times faster than fp32 (benchmarks/train_bench.py --cpu-bf16).
- the cache root: ``$SRLAB_CACHE``, else ``$XDG_CACHE_HOME/srlab``, else ``~/.cache/srlab``; weights, data
  sets, ONNX exports and compiled graphs each have a folder below it.
- compiled graphs are cached under the cache root, so a model compiled once starts fast in later processes
  (PyTorch's own default is the temp folder, which is wiped on reboot).
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from srlab.errors import ConfigError

__all__ = [
    "COMPILE_MODES",
    "DEVICES",
    "PRECISIONS",
    "amp_dtype",
    "cache_dir",
    "cache_root",
    "check_compile_mode",
    "compile_cache_dir",
    "compile_module",
    "cpu_flags",
    "cpu_int8_dot",
    "cpu_native_bf16",
    "cuda_available",
    "cuda_rng_state",
    "free_cores",
    "full_fp32",
    "gpu_names",
    "one_thread",
    "resolve_device",
    "resolve_precision",
    "set_cuda_rng_state",
    "synchronize",
    "threads",
]

DEVICES = ("auto", "cpu", "cuda", "mps")
# int8 is inference on the CPU through OpenVINO only (srlab.inference.cpu_choice); PyTorch refuses it
PRECISIONS = ("auto", "fp32", "fp16", "bf16", "int8")
# Training configs spell "no autocast" as "off"; it is fp32.
_PRECISION_ALIASES = {"off": "fp32", "none": "fp32", "float32": "fp32", "float16": "fp16", "half": "fp16"}
_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


# ----------------------------------------------------------------------------------------------- device


def cuda_available() -> bool:
    return torch.cuda.is_available()


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """The one device rule: ``auto`` = cuda, else mps, else cpu; an explicit device must exist."""
    if isinstance(device, torch.device):
        return device
    spec = str(device or "auto").strip().lower()
    if spec == "auto":
        if cuda_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(spec)
    except RuntimeError:
        raise ConfigError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        if not cuda_available():
            raise ConfigError(f"device {spec!r} requested but no CUDA device is available; use cpu or auto")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {spec!r}: only {torch.cuda.device_count()} CUDA device(s) here (cuda:0 ...)"
            )
    elif dev.type == "mps" and not _mps_available():
        raise ConfigError(f"device {spec!r} requested but MPS is not available; use cpu or auto")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps")
    return dev


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work (for honest timings); a no-op on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


@contextlib.contextmanager
def full_fp32(device: torch.device) -> Iterator[None]:
    """fp32 convolutions and matmuls without TF32 inside the block on CUDA (PyTorch lets cuDNN use TF32,
    10 mantissa bits, by default): evaluation numbers must not depend on the GPU generation."""
    if device.type != "cuda":
        yield
        return
    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


def gpu_names() -> list[str]:
    if not cuda_available():
        return []
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def cuda_rng_state() -> list[torch.Tensor] | None:
    """Every CUDA device's RNG state, or None where CUDA was never initialised (nothing to save)."""
    if cuda_available() and torch.cuda.is_initialized():
        return list(torch.cuda.get_rng_state_all())
    return None


def set_cuda_rng_state(states: list[torch.Tensor] | None) -> None:
    """Restore :func:`cuda_rng_state`'s result when this machine has the same number of CUDA devices."""
    if states and cuda_available() and len(states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states)


# -------------------------------------------------------------------------------------------- precision


def _bf16_ok(device: torch.device, *, training: bool = False) -> bool:
    if device.type == "cpu":
        # Inference can always run bf16 (emulated where need be); bf16 training autocast only pays on CPUs
        # with native bf16 (AVX512-BF16 / AMX); elsewhere its convolutions are far slower than fp32.
        return not training or _cpu_bf16_kernels()
    return device.type == "cuda" and cuda_available() and torch.cuda.is_bf16_supported()


def _cpu_bf16_kernels() -> bool:
    """oneDNN has bf16 kernels and, where the CPU's flags can be read (Linux), the CPU runs bf16 natively
    (AVX512-BF16 or AMX): emulated bf16 training is slower than fp32."""
    try:
        if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return False
    except (AttributeError, RuntimeError):
        return False
    flags = cpu_flags()
    return True if flags is None else cpu_native_bf16(flags)


# CPU instruction-set extensions that make reduced precision pay on the CPU (names as /proc/cpuinfo spells
# them): bf16 dot products, and 8-bit integer dot products (VNNI: one instruction per 4 multiply-adds).
CPU_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
CPU_INT8_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})


def cpu_flags() -> frozenset[str] | None:
    """The CPU's feature flags from /proc/cpuinfo (None where they cannot be read: not Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def cpu_native_bf16(flags: frozenset[str] | None = None) -> bool:
    """The CPU has bf16 arithmetic (AVX512-BF16 or AMX-BF16); ``flags``: :func:`cpu_flags` (read if None)."""
    flags = cpu_flags() if flags is None else flags
    return bool(flags and flags & CPU_BF16_FLAGS)


def cpu_int8_dot(flags: frozenset[str] | None = None) -> bool:
    """The CPU has 8-bit integer dot products (AVX512-VNNI, AVX-VNNI or AMX-INT8)."""
    flags = cpu_flags() if flags is None else flags
    return bool(flags and flags & CPU_INT8_FLAGS)


def resolve_precision(
    precision: str | None, device: torch.device, descriptor: Any = None, *, training: bool = False
) -> str:
    """``'fp32'``, ``'fp16'`` or ``'bf16'`` for ``precision`` in :data:`PRECISIONS` (training also takes
    ``'off'``). A precision the model (``descriptor.supports_fp16/bf16``) or device cannot run falls back to
    fp32: with a warning when it was asked for explicitly."""
    p = str(precision or "auto").strip().lower()
    p = _PRECISION_ALIASES.get(p, p)
    if p not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if p == "int8":
        raise ConfigError(
            "int8 runs only for inference on the CPU, with OpenVINO (--backend openvino or auto)"
        )
    fp16_ok = bool(getattr(descriptor, "supports_fp16", True))
    model_bf16 = bool(getattr(descriptor, "supports_bf16", True))
    name = getattr(descriptor, "name", "the model")
    if p == "auto":
        if training:
            if device.type != "cuda":
                return "fp32"
            if model_bf16 and _bf16_ok(device):
                return "bf16"
            return "fp16" if fp16_ok else "fp32"
        if device.type not in ("cuda", "mps"):
            return "fp32"
        return "fp16" if fp16_ok else "fp32"
    if p == "fp16" and not fp16_ok:
        warnings.warn(f"model {name} does not support fp16; running fp32", stacklevel=3)
        return "fp32"
    if p == "bf16" and not (model_bf16 and _bf16_ok(device, training=training)):
        warnings.warn(f"bf16 is not supported by model {name} on {device.type}; running fp32", stacklevel=3)
        return "fp32"
    return p


def amp_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype for a resolved precision; None for fp32 (no autocast)."""
    return None if precision == "fp32" else _DTYPES[precision]


def torch_dtype(precision: str) -> torch.dtype:
    return _DTYPES[precision]


# ---------------------------------------------------------------------------------------------- threads


@contextlib.contextmanager
def threads(n: int | None) -> Iterator[None]:
    """Use ``n`` CPU threads inside the block, then restore the previous count (None or 0: leave it)."""
    old = torch.get_num_threads()
    if not n or n == old:
        yield
        return
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def one_thread(device: torch.device) -> contextlib.AbstractContextManager[None]:
    """One CPU thread for small memory-bound tensor arithmetic (metrics): OpenMP's barrier waits cost more
    than the second thread gains there, badly so when another process shares the cores."""
    return threads(1 if device.type == "cpu" else None)


def _cpu_ticks() -> tuple[int, int] | None:
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        vals = [int(v) for v in fields]
    except (OSError, ValueError, IndexError):
        return None
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    return sum(vals), sum(vals) - idle


def _own_ticks() -> int | None:
    try:
        f = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        return int(f[11]) + int(f[12])
    except (OSError, ValueError, IndexError):
        return None


def busy_cores(window: float = 0.5) -> float | None:
    """How many cores other processes keep busy, sampled over ``window`` seconds (None where /proc is
    missing: not Linux)."""

    a, o1 = _cpu_ticks(), _own_ticks()
    if a is None or o1 is None:
        return None
    time.sleep(window)
    b, o2 = _cpu_ticks(), _own_ticks()
    if b is None or o2 is None or b[0] == a[0]:
        return None
    cores = os.cpu_count() or 1
    busy = (b[1] - a[1]) / (b[0] - a[0]) * cores
    own = (o2 - o1) / ((b[0] - a[0]) / cores)  # /proc/stat's total advances `cores` ticks per wall tick
    return max(0.0, busy - own)


def free_cores(base: int) -> tuple[int, float | None]:
    """(threads to use, busy cores seen): at most ``base``, leaving the cores other processes keep busy.

    OpenMP threads sharing a core with another busy process wait on each other, so a 2-thread step can run
    several times slower than 1 thread; results differ only by float rounding.
    """
    busy = busy_cores()
    if busy is None:
        return base, None
    cores = os.cpu_count() or 1
    return max(1, min(base, cores - int(round(busy)))), busy


# ------------------------------------------------------------------------------------------------ cache


def cache_root() -> Path:
    """srlab's one cache folder: ``$SRLAB_CACHE``, else ``$XDG_CACHE_HOME/srlab``, else ``~/.cache/srlab``."""
    env = os.environ.get("SRLAB_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "srlab"


def cache_dir(kind: str) -> Path:
    """A folder below the cache root: ``weights``, ``data``, ``onnx`` or ``inductor``."""
    return cache_root() / kind


# ---------------------------------------------------------------------------------------------- compile


def check_compile_mode(mode: str) -> str:
    if mode not in COMPILE_MODES:
        raise ConfigError(f"unknown compile mode {mode!r}; use one of {', '.join(COMPILE_MODES)}")
    return mode


def compile_cache_dir() -> Path:
    """Where compiled graphs are cached: ``$TORCHINDUCTOR_CACHE_DIR`` if the user set it, else the cache root."""
    env = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    return Path(env) if env else cache_dir("inductor")


@contextlib.contextmanager
def _inductor_cache(path: Path | None) -> Iterator[None]:
    # PyTorch reads its compile-cache location only from this variable, at compile time (which is the first
    # call, not torch.compile); set it for the call alone so the user's process environment is left as it was.
    if path is None:
        yield
        return
    old = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
        else:
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = old


class CompiledModule:
    """A ``torch.compile``-d module whose calls compile into srlab's cache; attributes pass through."""

    def __init__(self, compiled: Any, cache: Path | None) -> None:
        self.compiled = compiled
        self.cache = cache

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with _inductor_cache(self.cache):
            return self.compiled(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["compiled"], name)


def compile_module(module: Any, mode: str = "default") -> CompiledModule:
    """``torch.compile(module, mode=...)`` whose graphs are cached under the cache root (unless the user
    set ``TORCHINDUCTOR_CACHE_DIR``, or the folder cannot be made: then PyTorch's default)."""
    check_compile_mode(mode)
    cache: Path | None = None
    if not os.environ.get("TORCHINDUCTOR_CACHE_DIR"):
        path = compile_cache_dir()
        try:
            path.mkdir(parents=True, exist_ok=True)
            cache = path
        except OSError:
            cache = None
    return CompiledModule(torch.compile(module, mode=None if mode == "default" else mode), cache)
