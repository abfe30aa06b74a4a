"""infer_bench.py's CPU cases: srlab's default beside every CPU runtime and precision, and `srlab upscale`.

Per model case (one LR input, real weights where installed): plain PyTorch fp32 (the reference), srlab's
default (``Upscaler`` untiled, automatic backend and precision), PyTorch channels_last, ONNX Runtime fp32,
OpenVINO fp32/bf16/int8, timed interleaved round by round. Each variant's 8-bit PSNR against the reference
is printed, and the recorded check of these weights (src/srlab/inference/reduced_precision.json) says which
reduced precisions are within the published threshold: "best allowed" is the fastest variant that is.

Achieved GFLOP/s counts the convolutions' multiply-adds x 2 (``conv_flops``). The peak is
cores x clock x FMA pipes x lanes per pipe x 2 (a fused multiply-add is 2 FLOPs): lanes = datapath bits / 32
for fp32, x 2 for bf16 (a bf16 dot-product instruction does two products per fp32 lane), x 4 for int8
(VNNI: four 8-bit products per 32-bit lane). Clock: the highest "cpu MHz" in /proc/cpuinfo (nominal;
boost clocks make the true peak higher). FMA pipes and datapath width are the CPU design's (``--fma-pipes``,
``--datapath-bits``: Zen 4 runs AVX-512 on two 256-bit pipes).

End to end (``--e2e WxH``): `srlab upscale` of a photo as a subprocess, ``--backend onnxruntime --precision
fp32`` (srlab before OpenVINO) and the default, back to back; wall time and peak RSS (VmHWM).
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from _common import conv_flops, time_interleaved, verdict  # noqa: I001 - benchmarks/ is on sys.path

PRECISION_FACTOR = {"fp32": 1, "bf16": 2, "int8": 4}


def cpu_peak_gflops(args) -> tuple[float, str]:
    """fp32 peak GFLOP/s of this machine and how it was computed."""
    mhz = 0.0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                mhz = max(mhz, float(line.split(":")[1]))
    except (OSError, ValueError):
        pass
    ghz = args.clock_ghz or mhz / 1000 or 2.0
    cores = os.cpu_count() or 1
    lanes = args.datapath_bits // 32
    peak = cores * ghz * args.fma_pipes * lanes * 2
    how = f"{cores} cores x {ghz:.2f} GHz x {args.fma_pipes} FMA pipes x {lanes} fp32 lanes x 2 = {peak:.0f} GFLOP/s"
    return peak, how


def _psnr_u8(a: torch.Tensor, b: torch.Tensor) -> float:
    from srlab.eval.metrics import psnr

    def u8(t):
        t = t.detach().float().cpu().clamp(0, 1)
        t = t.expand(-1, 3, -1, -1) if t.shape[1] == 1 else t
        return (t * 255).round()

    return float(psnr(u8(a), u8(b), channel="rgb"))


def _load(key, args, cases):
    """(model, descriptor, weights label) for a CPU case: its installed weights when present, else random."""
    import srlab
    from srlab.models.registry import build_model

    name = args.weights or (None if args.random_weights else args.cpu_weights.get(key))
    if name:
        try:
            m, d = srlab.load_model(name)
            return m.eval(), d, name
        except Exception as exc:  # noqa: BLE001 - not installed: random weights, labelled so
            print(f"  ({key}: {name} not available: {exc}; random weights)")
    arch, hp = cases[key]
    m, d = build_model(arch, **hp)
    return m.eval(), d, "random"


def cpu_model_case(key, args, cases, photo, peak) -> dict:
    from srlab.export import cached_onnx, weights_digest
    from srlab.inference import Upscaler, cpu_choice
    from srlab.inference.openvino_backend import cached_openvino

    model, desc, wname = _load(key, args, cases)
    s = args.cpu_sizes.get(key, args.size)
    arr, src = photo(s, s, args.image)
    x = torch.from_numpy(arr.copy()).permute(2, 0, 1)[None].float().div(255)
    if desc.in_channels == 1:
        x = x.mean(1, keepdim=True)  # a Y model's input: one channel of the same photo
    flops = conv_flops(model, x)
    up = Upscaler((model, desc), device="cpu", tile=0)
    x_img = x[0]
    mcl = copy.deepcopy(model).to(memory_format=torch.channels_last)
    xcl = x.contiguous(memory_format=torch.channels_last)
    variants = {
        "torch fp32 (reference)": ("fp32", lambda: model(x)),
        f"srlab default ({up.backend} {up.precision})": (
            up.precision,
            lambda: up.upscale_tensor(x_img)[None],
        ),
        "torch fp32 channels_last": ("fp32", lambda: mcl(xcl)),
    }
    try:
        om = cached_onnx(copy.deepcopy(model))
        variants["onnxruntime fp32"] = ("fp32", lambda: om(x))
    except Exception as exc:  # noqa: BLE001 - optional backend
        print(f"  (onnxruntime skipped: {exc})")
    for p in ("fp32", "bf16", "int8"):
        try:
            t0 = time.perf_counter()
            ov = cached_openvino(copy.deepcopy(model), p)
            variants[f"openvino {p}"] = (p, lambda ov=ov: ov(x))
            print(f"  {key}: openvino {p} ready in {time.perf_counter() - t0:.1f} s (conversion cached)")
        except Exception as exc:  # noqa: BLE001 - optional backend
            print(f"  (openvino {p} skipped: {exc})")
    if args.cpu_bf16:

        def bf16():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return mcl(xcl)

        variants["torch bf16 autocast"] = ("bf16", bf16)
    with torch.no_grad():
        ref = model(x)
        db = {k: _psnr_u8(fn(), ref) for k, (_, fn) in variants.items()}
        t = time_interleaved(
            {k: fn for k, (_, fn) in variants.items()},
            torch.device("cpu"),
            warmup=args.warmup,
            repeats=args.repeats,
        )
    digest = weights_digest(model)
    table = cpu_choice.quality_table()
    rows = []
    for k, (p, _) in variants.items():
        ms = t[k]["median_s"] * 1e3
        gf = flops / t[k]["median_s"] / 1e9
        if p == "fp32" or k.startswith("srlab"):
            allowed = True  # srlab's own choice is the subject, fp32 the reference precision
        else:
            allowed = k.startswith("openvino") and cpu_choice.approved(digest, p, table)
        rows.append(
            dict(
                variant=k,
                precision=p,
                ms=ms,
                min_ms=t[k]["min_s"] * 1e3,
                times_ms=[v * 1e3 for v in t[k]["times"]],
                gflops=gf,
                pct_peak=100 * gf / (peak * PRECISION_FACTOR[p]),
                db_vs_ref=db[k],
                allowed=allowed,
            )
        )
        print(
            f"  {key:10s} {k:34s} {ms:9.1f} ms  {gf:6.1f} GFLOP/s ({rows[-1]['pct_peak']:4.1f}% of {p} peak)"
            f"  {db[k]:6.1f} dB{'' if allowed else '  (not allowed by the recorded check)'}"
        )
    labels = list(variants)
    ref_row, srl = rows[0], rows[1]
    peers = [r for r in rows[2:] if r["allowed"]]
    best = min(peers, key=lambda r: r["ms"])
    return {
        "case": key,
        "input": f"{s}x{s}",
        "weights": wname,
        "image": src,
        "gflop": flops / 1e9,
        "ref_ms": ref_row["ms"],
        "fast": labels[1],
        "fast_ms": srl["ms"],
        "ratio": ref_row["ms"] / srl["ms"],
        "vs_ref": verdict(t[labels[0]], t[labels[1]]),
        "best_allowed": best["variant"],
        "best_allowed_ms": best["ms"],
        "default_vs_best": best["ms"] / srl["ms"],
        "vs_best": verdict(t[best["variant"]], t[labels[1]]),
        "fast_gflops": srl["gflops"],
        "pct_peak": srl["pct_peak"],
        "psnr_vs_ref": srl["db_vs_ref"],
        "variants": rows,
    }


def _hwm_mib(pid: int) -> float | None:
    """The process's peak resident memory so far (VmHWM); None once it has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _run_cli(cmd: list[str], env: dict) -> tuple[float, float, str]:
    """(wall s, peak RSS MiB, stderr) of one `srlab upscale` process. The peak is VmHWM read every 0.2 s until
    the process ends (the high-water mark only grows, so the last read holds all but its last moments;
    ``ru_maxrss`` would count the forking benchmark's own memory)."""
    t0 = time.perf_counter()
    peak = 0.0
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
        while proc.poll() is None:
            peak = max(peak, _hwm_mib(proc.pid) or 0.0)
            time.sleep(0.2)
        wall = time.perf_counter() - t0
        err.seek(0)
        text = err.read().decode(errors="replace")
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{text[-2000:]}")
    return wall, peak, text


def e2e_case(args, photo) -> dict:
    """`srlab upscale photo.png` (default model, x4): srlab before OpenVINO vs the default, back to back."""
    from PIL import Image

    w, h = (int(v) for v in args.e2e.split("x"))
    arr, src = photo(w, h, args.e2e_image or args.image)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        inp = Path(tmp, "photo.png")
        Image.fromarray(arr).save(inp)
        base = [sys.executable, "-m", "srlab", "upscale", str(inp), "-f"]
        runs = {
            "before: --backend onnxruntime --precision fp32": [
                "--backend",
                "onnxruntime",
                "--precision",
                "fp32",
            ],
            "after: default": [],
        }
        for label, extra in runs.items():
            out = Path(tmp, f"out{len(rows)}.png")
            wall, rss, text = _run_cli([*base, "-o", str(out), *extra], env)
            notes = [ln for ln in text.replace("\r", "\n").splitlines() if ln.startswith(("srlab", "note"))]
            rows[label] = {"s": wall, "peak_rss_mib": rss, "messages": notes, "out": out}
            print(f"  e2e {label:48s} {wall:7.1f} s  {rss:6.0f} MiB peak RSS")
            for ln in notes:
                print(f"      | {ln}")
        import numpy as np

        a, b = (np.asarray(Image.open(r["out"])).astype(np.float64) for r in rows.values())
        mse = float(np.mean((a - b) ** 2))
        db = 99.0 if mse == 0 else 10 * np.log10(255**2 / mse)
    for r in rows.values():
        r.pop("out")
    (before, after) = rows.values()
    return {
        "case": "srlab upscale (default model) x4",
        "input": f"{w}x{h}",
        "image": src,
        "ref_ms": before["s"] * 1e3,
        "fast_ms": after["s"] * 1e3,
        "ratio": before["s"] / after["s"],
        "psnr_vs_ref": db,
        "fast": "srlab upscale default vs --backend onnxruntime --precision fp32",
        "runs": rows,
    }
