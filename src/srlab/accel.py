"""``torch.compile`` for inference and training, with a compile cache that outlives the process.

PyTorch caches compiled graphs (Inductor's FX-graph cache, and the AOT-autograd cache for training) on disk
by default, but under the system temp folder, which is wiped on reboot. srlab points that cache at
``$SRLAB_CACHE/inductor`` (default ``~/.cache/srlab/inductor``) unless ``TORCHINDUCTOR_CACHE_DIR`` is set,
so a model compiled once starts fast in every later process on that machine. Compile modes: ``default``,
``reduce-overhead`` (CUDA graphs), ``max-autotune`` (autotuned kernels + CUDA graphs),
``max-autotune-no-cudagraphs``.
"""

from __future__ import annotations

import os
from pathlib import Path

from srlab.errors import ConfigError

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def compile_cache_dir() -> Path:
    """Where compiled graphs are cached: ``TORCHINDUCTOR_CACHE_DIR`` if set, else srlab's cache folder."""
    from srlab.weights.download import cache_root

    env = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    return Path(env) if env else cache_root() / "inductor"


def check_mode(mode: str) -> str:
    if mode not in COMPILE_MODES:
        raise ConfigError(f"unknown compile mode {mode!r}; use one of {', '.join(COMPILE_MODES)}")
    return mode


def compile_module(module, mode: str = "default"):
    """``torch.compile(module, mode=...)`` with the persistent compile cache (see the module docstring)."""
    import torch

    check_mode(mode)
    if not os.environ.get("TORCHINDUCTOR_CACHE_DIR"):
        path = compile_cache_dir()
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError:  # read-only home: keep PyTorch's temp-folder default
            pass
        else:
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(path)
    return torch.compile(module, mode=None if mode == "default" else mode)
