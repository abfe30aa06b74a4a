"""Inference speed: srlab's fast path vs a plain PyTorch reference, in the same process.

Cases (``--cases``): SRCNN x2, RRDBNet x2/x4 with 16 and 23 blocks, SRVGG x4, each on one SIZE x SIZE input
(model level), and a large image (``--large WxH``, default 1920x1080 on CUDA) through srlab's tiler
(``srlab.inference.Upscaler``, the code `srlab upscale` runs) end to end: uint8 array in, uint8 array out.

Reference: fp32, eager, contiguous NCHW, batch 1 -- what the official ESRGAN test.py and BasicSR do; for the
large image, the reference walks the image in non-overlapping tiles one at a time (Real-ESRGAN's tiler).
"srlab" is what srlab runs by default -- ``Upscaler`` with its automatic choices (CUDA: fp16 +
channels_last + fused dense blocks, tiles batched, ``--compile`` optional; CPU: ONNX Runtime for SRCNN,
SRVGG and RRDBNet, else PyTorch fp32 with a channels_last input). Alternatives (CUDA: batched fp16, fused,
compiled; CPU: PyTorch channels_last, ONNX Runtime, bf16 autocast with ``--cpu-bf16``) are timed beside
them, and the fastest is reported as "best". All variants of a case are timed interleaved, round by round.

Prints a table (ratio vs reference, Mpx/s of output, achieved TFLOP/s from counted conv FLOPs, peak memory,
and "dB vs ref": PSNR between srlab's 8-bit output and the fp32 reference's -- the check that fp16/bf16
stays >= 50 dB) and writes JSON with ``--out``. Inputs are crops of a real photo (``--image``, default
scikit-image's astronaut). Weights are random unless ``--weights NAME|FILE`` gives real ones for the cases of
that architecture (speed does not depend on them; the precision check does).

    python benchmarks/infer_bench.py                      # CPU here: small sizes
    python benchmarks/infer_bench.py --size 256 --compile --weights realesrgan-x4plus --out bench_gpu.json
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    conv_flops,
    device_info,
    peak_mib,
    peak_per_variant,
    print_table,
    reset_peak,
    time_interleaved,
    verdict,
    write_json,
)
from srlab.models.registry import build_model  # noqa: E402
from srlab.runtime import resolve_device, synchronize  # noqa: E402

CASES = {
    "srcnn-x2": ("srcnn-955-x2", {}),
    "rrdb16-x2": ("rrdbnet", dict(scale=2, num_block=16)),
    "rrdb16-x4": ("rrdbnet", dict(scale=4, num_block=16)),
    "rrdb23-x2": ("rrdbnet", dict(scale=2, num_block=23)),
    "rrdb23-x4": ("rrdbnet", dict(scale=4, num_block=23)),
    "srvgg-x4": ("srvgg-animevideov3-x4", {}),
    "rrdb6-x4": ("rrdbnet", dict(scale=4, num_block=6)),
}
# CPU: the shipped/installed weights of each case (the recorded reduced-precision check is per weights, so
# srlab's CPU default depends on them); a case without any (RRDBNet 16 blocks) runs random weights.
CPU_WEIGHTS = {
    "srcnn-x2": "srcnn-x2",
    "srvgg-x4": "realesr-animevideov3-x4",
    "rrdb23-x4": "realesrgan-x4plus",
    "rrdb6-x4": "realesrgan-x4plus-anime",
}
CPU_SIZES = {"srcnn-x2": 128, "srvgg-x4": 128}  # LR side; RRDBNet cases use --size (64)


def _alternatives(key, model, x, device, args):
    """(label, callable, images per call) candidates besides srlab's default path, for comparison."""
    out = []
    model = copy.deepcopy(model)  # the variants change memory format / dtype in place
    if device.type == "cuda":
        dtype = torch.bfloat16 if args.precision == "bf16" else torch.float16
        m = model.to(dtype=dtype, memory_format=torch.channels_last)
        xf = x.to(dtype=dtype, memory_format=torch.channels_last)
        if args.batch > 1:
            xf = xf.repeat(args.batch, 1, 1, 1).contiguous(memory_format=torch.channels_last)
        label = f"{args.precision} channels_last b{args.batch}"
        out.append((label, lambda: m(xf), args.batch))
        mf = None
        if getattr(model, "arch", "") == "rrdbnet":
            from srlab.models.rrdbnet import set_fused_blocks

            mf = copy.deepcopy(m)
            set_fused_blocks(mf)
            out.append((label + " fused-RDB", lambda: mf(xf), args.batch))
        if args.compile and key in args.compile_cases.split(","):
            for tag, mod in (("", m), (" fused-RDB", mf)):
                if mod is None:
                    continue
                t0 = time.perf_counter()
                fn = torch.compile(mod, mode=args.compile_mode, dynamic=False)
                with torch.no_grad():
                    fn(xf)
                synchronize(device)
                out.append(
                    (
                        label + tag + f" compiled({time.perf_counter() - t0:.0f}s)",
                        lambda fn=fn: fn(xf),
                        args.batch,
                    )
                )
    else:
        mcl = copy.deepcopy(model).to(memory_format=torch.channels_last)
        xcl = x.contiguous(memory_format=torch.channels_last)
        out.append(("torch fp32 channels_last", lambda: mcl(xcl), 1))
        if args.cpu_bf16:

            def bf16():
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    return mcl(xcl)

            out.append(("torch bf16 autocast channels_last", bf16, 1))
        if not args.no_onnx:
            try:
                from srlab.export import cached_onnx

                om = cached_onnx(copy.deepcopy(model).to(memory_format=torch.contiguous_format))
                out.append(("onnxruntime fp32", lambda: om(x), 1))
            except Exception as exc:  # noqa: BLE001 - optional backend
                print(f"  (onnxruntime skipped: {exc})")
    return out


def photo(w: int, h: int, path: str | None = None):
    """A real photo as a (h, w, 3) uint8 array: ``path`` (centre crop, or resized up when smaller) or
    scikit-image's astronaut; random noise only when neither is available (labelled so)."""
    import numpy as np
    from PIL import Image

    if path:
        img, src = Image.open(path).convert("RGB"), "file " + path
    else:
        try:
            from skimage import data

            img, src = Image.fromarray(data.astronaut()), "skimage astronaut"
        except ImportError:
            rng = np.random.default_rng(0)
            return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8), "random noise"
    f = max(w / img.width, h / img.height)
    if f > 1:
        img = img.resize((max(w, round(img.width * f)), max(h, round(img.height * f))), Image.BICUBIC)
    x0, y0 = (img.width - w) // 2, (img.height - h) // 2
    return np.asarray(img.crop((x0, y0, x0 + w, y0 + h))), src


def _psnr_u8(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR (srlab.eval.metrics, RGB) between two outputs on [0, 1] as 8-bit images (inf when identical)."""
    from srlab.eval.metrics import psnr

    def u8(t):
        return (t.detach().float().cpu().clamp(0, 1) * 255).round()

    return float(psnr(u8(a), u8(b), channel="rgb"))


def _build(key, args):
    """The case's model: random weights, or ``--weights`` when they fit the case's architecture."""
    name, hp = CASES[key]
    model, desc = build_model(name, **hp)
    if args.weights:
        import srlab

        wm, wd = srlab.load_model(args.weights)
        same = wd.arch == desc.arch and all(wd.hparams.get(k) == v for k, v in desc.hparams.items())
        if same:
            return wm, wd, True
    return model, desc, False


def model_case(key, device, args) -> dict:
    """One SIZE x SIZE input: the plain reference, srlab's default path (``Upscaler``, untiled: what
    `srlab upscale` runs on such an image) and the alternatives, timed interleaved."""
    from srlab.inference import Upscaler

    model, desc, real_w = _build(key, args)
    model = model.eval().to(device)
    s = args.size
    if desc.in_channels == 3:
        arr, src = photo(s, s, args.image)
        x = torch.from_numpy(arr.copy()).permute(2, 0, 1)[None].float().div(255).to(device)
    else:
        x, src = torch.rand(1, desc.in_channels, s, s, device=device), "random noise"
    flops = conv_flops(model, x)
    out_px = (s * desc.scale) ** 2
    row = {
        "case": key,
        "input": f"{s}x{s}",
        "params": desc.params,
        "image": src,
        "weights": args.weights if real_w else "random",
    }
    compiled = args.compile and device.type == "cuda" and key in args.compile_cases.split(",")
    up = Upscaler((model, desc), device=str(device), tile=0, compile=args.compile_mode if compiled else False)
    x_img = x[0].cpu()
    cands = [
        ("reference fp32 eager NCHW", lambda: model(x), 1),
        ("srlab", lambda: up.upscale_tensor(x_img), 1),
    ]
    with torch.no_grad():
        cands += _alternatives(key, model, x, device, args)
        fns = {label: fn for label, fn, _ in cands}
        per_call = {label: b for label, _, b in cands}
        peaks = peak_per_variant(fns, device)
        t = time_interleaved(fns, device, warmup=args.warmup, repeats=args.repeats)
        # srlab's output against the fp32 reference's (the precision check: >= 50 dB wanted)
        psnr = _psnr_u8(up.upscale_tensor(x_img), model(x)[0])
    variants = []
    for label in fns:
        per_img = t[label]["median_s"] / per_call[label]
        variants.append(
            {
                "variant": label,
                "ms": per_img * 1e3,
                "min_ms": t[label]["min_s"] / per_call[label] * 1e3,
                "max_ms": t[label]["max_s"] / per_call[label] * 1e3,
                "times_ms": [v / per_call[label] * 1e3 for v in t[label]["times"]],
                "mpx": out_px / per_img / 1e6,
                "tflops": flops / per_img / 1e12,
                "peak_mib": peaks[label],
            }
        )
        print(f"  {key:10s} {label:46s} {per_img * 1e3:9.1f} ms/img")
    labels = list(fns)
    row["vs_ref"] = verdict(t[labels[0]], t[labels[1]])
    ref, fast = variants[0], variants[1]
    best = min(variants[1:], key=lambda v: v["ms"])
    row.update(
        ref_ms=ref["ms"],
        ref_mpx=ref["mpx"],
        ref_tflops=ref["tflops"],
        ref_peak_mib=ref["peak_mib"],
        fast=f"srlab: {up.describe()}",
        fast_ms=fast["ms"],
        fast_mpx=fast["mpx"],
        fast_tflops=fast["tflops"],
        fast_peak_mib=fast["peak_mib"],
        best=best["variant"],
        best_ms=best["ms"],
        best_ratio=ref["ms"] / best["ms"],
        best_tflops=best["tflops"],
        psnr_vs_ref=psnr,
        variants=variants,
    )
    row["ratio"] = row["ref_ms"] / row["fast_ms"]
    if args.profile and key in args.profile.split(","):
        row["profile"] = profile_kernels(fns[best["variant"]], device)
    return row


def profile_kernels(fn, device, top: int = 12) -> list[dict]:
    """Which kernels dominate one call of ``fn`` (torch.profiler, device time)."""
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with torch.no_grad(), profile(activities=acts) as prof:
        fn()
        synchronize(device)
    key = "device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    events = [e for e in prof.key_averages() if getattr(e, key, 0) > 0]
    total = sum(getattr(e, key) for e in events) or 1
    rows = []
    for e in sorted(events, key=lambda e: getattr(e, key), reverse=True)[:top]:
        rows.append(
            {
                "kernel": e.key[:90],
                "ms": getattr(e, key) / 1e3,
                "share": getattr(e, key) / total,
                "calls": e.count,
            }
        )
    print("  top kernels:")
    for r in rows:
        print(f"    {r['share'] * 100:5.1f}%  {r['ms']:8.2f} ms  x{r['calls']:<5d} {r['kernel']}")
    return rows


def large_case(key, device, args) -> dict:
    """End to end through srlab's Upscaler on a large uint8 image vs a plain sequential tile loop."""

    from srlab.inference import Upscaler

    model, desc, real_w = _build(key, args)
    model = model.eval()
    w, h = (int(v) for v in args.large.split("x"))
    img, src = photo(w, h, args.image)
    out_px = h * w * desc.scale**2
    flops_per_px = conv_flops(model, torch.rand(1, 3, 32, 32)) / (32 * 32)
    flops = flops_per_px * h * w

    ref_model = model.to(device)
    tile = args.ref_tile

    def reference():
        t = torch.from_numpy(img).permute(2, 0, 1).float().div(255).unsqueeze(0)
        out = torch.empty(1, 3, h * desc.scale, w * desc.scale)
        with torch.no_grad():
            for y in range(0, h, tile):
                for x0 in range(0, w, tile):
                    patch = t[..., y : y + tile, x0 : x0 + tile].to(device)
                    sr = ref_model(patch).cpu()
                    s = desc.scale
                    out[..., y * s : (y + patch.shape[-2]) * s, x0 * s : (x0 + patch.shape[-1]) * s] = sr
        return (out.clamp(0, 1) * 255).round().byte()

    kw = dict(device=str(device))
    if args.tile:
        kw["tile"] = args.tile
    fuse = {"auto": None, "on": True, "off": False}[args.fuse]
    compile = args.compile_mode if args.compile else False
    up = Upscaler((model, desc), precision="auto", compile=compile, fuse=fuse, **kw)
    t0 = time.perf_counter()
    up(img)  # first call: compile / backend choice / export
    synchronize(device)
    first = time.perf_counter() - t0
    reset_peak(device)
    reference()
    ref_peak = peak_mib(device)
    reset_peak(device)
    up(img)
    fast_peak = peak_mib(device)
    t = time_interleaved(
        {"reference": reference, "srlab": lambda: up(img)}, device, warmup=1, repeats=args.large_repeats
    )
    ref, fast = t["reference"], t["srlab"]
    vs = verdict(ref, fast)
    row = {
        "case": f"{key} tiler",
        "input": f"{w}x{h}",
        "image": src,
        "weights": args.weights if real_w else "random",
        "params": desc.params,
        "ref_ms": ref["median_s"] * 1e3,
        "ref_mpx": out_px / ref["median_s"] / 1e6,
        "ref_tflops": flops / ref["median_s"] / 1e12,
        "ref_peak_mib": ref_peak,
        "fast": f"srlab Upscaler ({up.describe() if hasattr(up, 'describe') else 'default'})",
        "fast_ms": fast["median_s"] * 1e3,
        "fast_mpx": out_px / fast["median_s"] / 1e6,
        "fast_tflops": flops / fast["median_s"] / 1e12,
        "fast_peak_mib": fast_peak,
        "first_call_s": first,
        "vs_ref": vs,
        "ref_times_ms": [v * 1e3 for v in ref["times"]],
        "fast_times_ms": [v * 1e3 for v in fast["times"]],
    }
    row["ratio"] = row["ref_ms"] / row["fast_ms"]
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto")
    p.add_argument("--cases", default="srcnn-x2,rrdb16-x2,rrdb23-x4,srvgg-x4")
    p.add_argument("--large-cases", default="rrdb23-x4", help="cases run through the tiler on --large")
    p.add_argument(
        "--size", type=int, default=None, help="model-level input size (default 256 CUDA / 64 CPU)"
    )
    p.add_argument(
        "--large", default=None, help="WxH of the tiler image (default 1920x1080 CUDA / 256x192 CPU)"
    )
    p.add_argument(
        "--ref-tile", type=int, default=None, help="reference tile size (default 256 CUDA / 128 CPU)"
    )
    p.add_argument("--tile", type=int, default=None, help="srlab tile size (default: the Upscaler's choice)")
    p.add_argument("--batch", type=int, default=4, help="CUDA fast path batch of tiles")
    p.add_argument("--precision", choices=["fp16", "bf16"], default="fp16")
    p.add_argument("--compile", action="store_true")
    p.add_argument(
        "--compile-mode",
        default="default",
        choices=["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"],
    )
    p.add_argument("--compile-cases", default="rrdb23-x4", help="model-level cases also measured compiled")
    p.add_argument("--no-onnx", action="store_true")
    p.add_argument(
        "--peak-tflops",
        type=float,
        default=None,
        help="the device's dense peak (e.g. 989 for H100/H200 fp16, 0.157 for 2 Zen 3 cores fp32 at 2.45 GHz): "
        "adds a %% of peak column",
    )
    p.add_argument(
        "--image", default=None, help="a photo to crop the inputs from (default: skimage astronaut)"
    )
    p.add_argument(
        "--weights", default=None, help="name or file of real weights for the cases of that architecture"
    )
    p.add_argument("--cpu-bf16", action="store_true", help="CPU: also time bf16 autocast (slow on most CPUs)")
    p.add_argument("--large-repeats", type=int, default=3, help="interleaved repeats of the large-image case")
    p.add_argument("--fuse", choices=["auto", "on", "off"], default="auto", help="Upscaler fused-RDB setting")
    p.add_argument("--profile", default="", help="model-level cases to profile (kernel time shares)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default=None)
    p.add_argument("--fma-pipes", type=int, default=2, help="CPU: FMA pipes per core (for the peak)")
    p.add_argument(
        "--datapath-bits", type=int, default=256, help="CPU: width of each FMA pipe (for the peak)"
    )
    p.add_argument("--clock-ghz", type=float, default=None, help="CPU: clock for the peak (/proc/cpuinfo)")
    p.add_argument("--random-weights", action="store_true", help="CPU: random weights in every case")
    p.add_argument(
        "--e2e", default="480x320", help="CPU: WxH photo for `srlab upscale` before/after ('' skips)"
    )
    p.add_argument("--e2e-image", default=None, help="CPU: the photo for --e2e (default: --image)")
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    if device.type == "cpu":
        return cpu_main(args)
    args.size = args.size or (256 if cuda else 64)
    args.large = args.large or ("1920x1080" if cuda else "256x192")
    args.ref_tile = args.ref_tile or (256 if cuda else 128)
    if cuda:
        torch.backends.cudnn.benchmark = True
    info = device_info(device)
    print(f"device: {info}")
    rows = []
    for key in [c for c in args.cases.split(",") if c]:
        rows.append(model_case(key, device, args))
    for key in [c for c in args.large_cases.split(",") if c]:
        rows.append(large_case(key, device, args))
    for r in rows:
        if args.peak_tflops and r.get("fast_tflops"):
            r["pct_peak"] = 100 * r["fast_tflops"] / args.peak_tflops
    print()
    print_table(
        rows,
        [
            ("case", "case", "s"),
            ("input", "input", "s"),
            ("ref_ms", "ref ms", ".1f"),
            ("fast_ms", "fast ms", ".1f"),
            ("ratio", "x faster", ".2f"),
            ("vs_ref", "vs ref", "s"),
            ("ref_mpx", "ref Mpx/s", ".2f"),
            ("fast_mpx", "fast Mpx/s", ".2f"),
            ("fast_tflops", "fast TFLOP/s", ".3f"),
            ("pct_peak", "% peak", ".0f"),
            ("fast_peak_mib", "peak MiB", ".0f"),
            ("best_ratio", "best x", ".2f"),
            ("psnr_vs_ref", "dB vs ref", ".1f"),
            ("fast", "srlab path", "s"),
        ],
    )
    print(
        "(ref = plain fp32 eager NCHW PyTorch; fast = what srlab runs by default; best x = the fastest "
        "variant tried, see the per-case lines above)"
    )
    write_json(args.out, {"info": info, "args": vars(args), "rows": rows})
    return 0


def cpu_main(args) -> int:
    """The CPU benchmark (benchmarks/_infer_cpu.py): every runtime and precision per case, then end to end."""
    from _infer_cpu import cpu_model_case, cpu_peak_gflops, e2e_case
    from srlab.runtime import cpu_flags

    args.cpu_weights, args.cpu_sizes = CPU_WEIGHTS, ({} if args.size else CPU_SIZES)
    args.size = args.size or 64
    peak, how = cpu_peak_gflops(args)
    flags = sorted(
        (cpu_flags() or frozenset()) & {"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16"}
    )
    info = {**device_info(torch.device("cpu")), "cpu_flags": flags, "peak_fp32_gflops": peak, "peak": how}
    print(f"device: {info}")
    rows = [cpu_model_case(k, args, CASES, photo, peak) for k in args.cases.split(",") if k]
    if args.e2e:
        rows.append(e2e_case(args, photo))
    print()
    print_table(
        rows,
        [
            ("case", "case", "s"),
            ("input", "input", "s"),
            ("weights", "weights", "s"),
            ("ref_ms", "torch fp32 ms", ".1f"),
            ("fast_ms", "srlab ms", ".1f"),
            ("ratio", "x vs torch", ".2f"),
            ("best_allowed", "fastest allowed peer", "s"),
            ("default_vs_best", "peer/srlab", ".2f"),
            ("vs_best", "vs peer", "s"),
            ("fast_gflops", "GFLOP/s", ".1f"),
            ("pct_peak", "% peak", ".0f"),
            ("psnr_vs_ref", "dB vs fp32", ".1f"),
            ("fast", "srlab path", "s"),
        ],
    )
    print(f"(peak: {how}; bf16 x2, int8 x4. peer/srlab >= 1: srlab's default at least as fast as the fastest")
    print(" variant allowed by the recorded quality check; for the e2e row, ref = the onnxruntime fp32 run)")
    write_json(args.out, {"info": info, "args": vars(args), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
