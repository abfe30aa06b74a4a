"""Shared helpers for the benchmark scripts: timing (CUDA events / perf_counter, warm-up excluded, median of
repeats; several variants interleaved round by round so that a slow spell of a shared machine hits them all
alike), convolution FLOP counting, peak memory, device info and JSON/table output. Devices and
synchronisation are srlab.runtime's (``resolve_device``, ``synchronize``)."""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from srlab.runtime import synchronize


def _time_once(fn: Callable[[], object], device: torch.device) -> float:
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000.0
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def time_interleaved(
    fns: dict[str, Callable[[], object]],
    device: torch.device,
    *,
    warmup: int = 2,
    repeats: int = 5,
    before: Callable[[str], None] | None = None,
) -> dict[str, dict]:
    """Time several variants round-robin: each round runs every variant once, in an order rotated by one
    per round, so drifts of a shared machine (other jobs, clock changes) hit all variants alike.

    Returns per label: median_s, min_s, max_s, times (all repeats). ``before(label)`` runs untimed before
    each timed call (e.g. resetting peak-memory counters)."""
    labels = list(fns)
    for label in labels:
        for _ in range(warmup):
            fns[label]()
    synchronize(device)
    times: dict[str, list[float]] = {k: [] for k in labels}
    for r in range(repeats):
        k = r % len(labels)
        for label in labels[k:] + labels[:k]:
            if before is not None:
                before(label)
            times[label].append(_time_once(fns[label], device))
    return {
        k: {"median_s": statistics.median(v), "min_s": min(v), "max_s": max(v), "times": v}
        for k, v in times.items()
    }


def verdict(ref: dict, fast: dict) -> str:
    """Paired sign test over the interleaved rounds (round i of each variant ran back to back): 'faster n/n'
    when the variant beat the reference in every round, 'slower n/n' when it lost every round, else
    'within noise k/n' (k = rounds it was faster). With 5 rounds, all-or-none has p = 1/32 under 'no
    difference' -- a median ratio of 0.98 or 1.02 alone says nothing on a shared machine."""
    pairs = list(zip(ref["times"], fast["times"]))
    n = len(pairs)
    k = sum(f < r for r, f in pairs)
    if n >= 3 and k == n:
        return f"faster {k}/{n}"
    if n >= 3 and k == 0:
        return f"slower {n}/{n}"
    return f"within noise {k}/{n}"


def conv_flops(model: nn.Module, *inputs: torch.Tensor) -> int:
    """FLOPs (2 x MACs) of every Conv2d / Linear in one forward pass on ``inputs`` (hooks; eager)."""
    total = 0

    def conv_hook(mod, inp, out):
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1] * (mod.in_channels // mod.groups)
        total += 2 * out.numel() * k

    def lin_hook(mod, inp, out):
        nonlocal total
        total += 2 * out.numel() * mod.in_features

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(lin_hook))
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for h in hooks:
            h.remove()
    return total


def step_flops(step: Callable[[], object], modules: list[nn.Module]) -> int:
    """FLOPs of one training step: every Conv2d / Linear call inside ``modules`` during ``step()`` counts its
    forward FLOPs, plus the same again for the weight gradient when its weight requires grad and again
    for the input gradient when its input requires grad (what autograd will compute). Eager only."""
    total = 0

    def hook(mod, inp, out):
        nonlocal total
        if isinstance(mod, nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1] * (mod.in_channels // mod.groups)
        else:
            k = mod.in_features
        f = 2 * out.numel() * k
        total += f
        if torch.is_grad_enabled():
            total += f * (int(mod.weight.requires_grad) + int(bool(inp) and inp[0].requires_grad))

    hooks = [
        m.register_forward_hook(hook)
        for mod in modules
        for m in mod.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    try:
        step()
    finally:
        for h in hooks:
            h.remove()
    return total


def peak_per_variant(fns: dict[str, Callable[[], object]], device: torch.device) -> dict[str, float | None]:
    """Peak device memory (MiB; None on CPU) of one call of each variant, after one untimed call (which
    also warms it up)."""
    peaks = {}
    for label, fn in fns.items():
        fn()
        synchronize(device)
        reset_peak(device)
        fn()
        synchronize(device)
        peaks[label] = peak_mib(device)
    return peaks


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_mib(device: torch.device) -> float | None:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return None


def device_info(device: torch.device) -> dict:
    info = {
        "device": str(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_threads": torch.get_num_threads(),
        "machine": platform.machine(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def print_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> None:
    """columns: (key, header, format spec)."""
    heads = [h for _, h, _ in columns]
    cells = [[("" if r.get(k) is None else format(r[k], f)) for k, _, f in columns] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(heads)]
    print("  ".join(h.rjust(w) for h, w in zip(heads, widths)))
    for c in cells:
        print("  ".join(v.rjust(w) for v, w in zip(c, widths)))


def write_json(path: str | None, payload: dict) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(payload, indent=2))
        print(f"wrote {path}")
