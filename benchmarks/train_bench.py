"""Training throughput: the study's SRCNN step and ESRGAN step (G + D + VGG19), plain PyTorch vs srlab.

Settings default to the study's (x2, batch 16, HR 128 / LR 64, RRDBNet 16 blocks, VGG-style D on 128x128,
VGG19 features through pool3, RaGAN): ``configs/srcnn_x2_study.yaml`` and ``configs/esrgan_x2_study.yaml``.
On a CPU the ESRGAN step at those settings takes about a minute, so there the defaults shrink (batch 2,
4 blocks, 2 timed steps); ``--batch``, ``--blocks``, ``--hr``, ``--steps`` set them explicitly.

Variants, in one process on the same random batch:

- ``reference``: plain PyTorch -- fp32, eager, NCHW, ``torch.optim.Adam`` (default implementation), the
  step written out by hand (what the study's notebook and BasicSR do);
- ``srlab``: srlab's training step (:class:`srlab.train.recipes.StageRunner`) with its defaults for the
  device: on CUDA bf16 autocast (fp16 + GradScaler without bf16), channels_last, fused Adam; on CPU fp32;
- ``srlab-bf16`` (CPU, ``--cpu-bf16``): the same with bf16 autocast. Measured on the 2-core dev box (AMD
  EPYC Zen 3: AVX2, no AVX-512 and no native bf16): the SRCNN step is ~60x *slower* than fp32 -- autocast
  training convolutions fall back to ``_slow_conv2d`` -- which is why srlab trains in fp32 on CPUs unless
  asked, and ``runtime.amp: bf16`` falls back to fp32 on CPUs without native bf16; on a Xeon with AMX
  (``--cases srcnn --cpu-bf16 --batch 16``) the bf16 SRCNN step ran at 4.68x the reference (fp32: 1.37x);
- ``srlab-compile`` (``--compile``): plus ``torch.compile`` of G and D (compile time reported, excluded),
  in ``--compile-mode`` (``reduce-overhead``: CUDA graphs);
- ``srlab-fused`` / ``srlab-compile-fused`` (``--variants``): RRDBNet dense blocks evaluated without
  concatenations (``runtime.fused_blocks``: same function and parameters).

FLOPs per step are counted on the reference (forward convolutions and linears of G, D and VGG, plus their
weight- and input-gradient products where autograd computes them); TFLOP/s = that / time per step.

Timing: warm-up steps excluded, CUDA events around each repeat of ``--steps`` steps, median of
``--repeats``; the variants of a case are built first and timed interleaved, round by round, so that load
on a shared machine hits them alike (min and max are printed beside the median). Throughput is iterations/s and HR output megapixels/s (batch x HR^2 x it/s). The VGG19
weights are random (speed does not depend on them). Prints a table; ``--out FILE`` writes JSON.

    python benchmarks/train_bench.py                       # CPU: shrunken settings
    python benchmarks/train_bench.py --compile --out train_bench_gpu.json    # on a GPU: study settings
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    device_info,
    peak_per_variant,
    print_table,
    step_flops,
    time_interleaved,
    verdict,
    write_json,
)
from srlab.models.registry import build_model  # noqa: E402
from srlab.runtime import (  # noqa: E402
    COMPILE_MODES,
    amp_dtype,
    resolve_device,
    resolve_precision,
    synchronize,  # noqa: E402
)
from srlab.train.config import load_config  # noqa: E402
from srlab.train.losses import PerceptualLoss, gan_d_loss, gan_g_loss  # noqa: E402
from srlab.train.recipes import RunnerOptions, StageRunner  # noqa: E402


def _stage(config: str, overrides: list[str]):
    cfg, _ = load_config(config, overrides)
    name = cfg.stage_names()[0]
    return cfg, name, cfg.stages[name]


# ---------------------------------------------------------------------------------------- reference
class RefSRCNN:
    """Plain fp32 SRCNN step: bilinear-upsampled input, MSE, Adam."""

    def __init__(self, g, lr_rate):
        self.g = g
        self.opt = torch.optim.Adam(g.parameters(), lr=lr_rate, betas=(0.9, 0.999))

    def step(self, lr, hr):
        sr = self.g(lr)
        loss = F.mse_loss(sr, hr)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss


class RefESRGAN:
    """Plain fp32 ESRGAN step (as the study's notebook / BasicSR): G with L1 + VGG + RaGAN, then D."""

    def __init__(self, g, d, vgg, st):
        self.g, self.d, self.vgg, self.L = g, d, vgg, st.losses
        self.opt_g = torch.optim.Adam(g.parameters(), lr=st.optim.lr, betas=tuple(st.optim.betas))
        self.opt_d = torch.optim.Adam(d.parameters(), lr=st.optim_d.lr, betas=tuple(st.optim_d.betas))

    def step(self, lr, hr):
        L = self.L
        for p in self.d.parameters():
            p.requires_grad_(False)
        sr = self.g(lr)
        l_pix = L.pixel_weight * F.l1_loss(sr, hr)
        l_per = L.perceptual_weight * self.vgg(sr, hr)
        real = self.d(hr).detach()
        fake = self.d(sr)
        l_gan = L.gan_weight * gan_g_loss("ragan", real, fake)
        self.opt_g.zero_grad()
        (l_pix + l_per + l_gan).backward()
        self.opt_g.step()
        for p in self.d.parameters():
            p.requires_grad_(True)
        real = self.d(hr)
        fake = self.d(sr.detach())
        l_d = gan_d_loss("ragan", real, fake)
        self.opt_d.zero_grad()
        l_d.backward()
        self.opt_d.step()
        return l_d


class SrlabStep:
    def __init__(self, runner: StageRunner):
        self.runner = runner
        self.it = 0

    def step(self, lr, hr):
        out = self.runner.step(lr, hr, self.it)
        self.it += 1
        return out


# ------------------------------------------------------------------------------------------- cases
VARIANTS = ("reference", "srlab", "srlab-fused", "srlab-bf16", "srlab-compile", "srlab-compile-fused")


def build_case(case: str, variant: str, args, device):
    torch.manual_seed(0)
    if case == "srcnn":
        cfg, name, st = _stage("srcnn_x2_study", [f"stages.train.batch_size={args.batch}"])
    else:
        cfg, name, st = _stage(
            "esrgan_x2_study",
            [
                f"stages.gan.batch_size={args.batch}",
                f"model.hparams.num_block={args.blocks}",
                "stages.gan.losses.perceptual_weights=random",
            ],
        )
    g, desc = build_model(cfg.model.name, **cfg.model.hparams)
    g = g.to(device)
    if variant == "reference":
        if case == "srcnn":
            return RefSRCNN(g, st.optim.lr), None
        d, _ = build_model(st.discriminator.name, **st.discriminator.hparams)
        L = st.losses
        vgg = PerceptualLoss(
            L.perceptual_layers,
            normalize=L.perceptual_normalize,
            criterion=L.perceptual_criterion,
            weights="random",
        ).to(device)
        return RefESRGAN(g, d.to(device), vgg, st), None
    amp = amp_dtype(
        resolve_precision("bf16" if variant == "srlab-bf16" else "auto", device, desc, training=True)
    )
    compiled = variant.startswith("srlab-compile")
    options = RunnerOptions(
        channels_last=True,
        compile=compiled,
        compile_mode=args.compile_mode if compiled else "default",
        fused_blocks=variant.endswith("fused") and case == "esrgan",
    )
    runner = StageRunner(name, st, g, device=device, amp_dtype=amp, seed=0, options=options)
    return SrlabStep(runner), amp


def run_case(case, variants, args, device, lr, hr) -> list[dict]:
    """Build every variant of one case, then time their steps interleaved (see _common.time_interleaved)."""
    steps, amps, compile_s = {}, {}, {}
    for v in variants:
        steps[v], amps[v] = build_case(case, v, args, device)
        compile_s[v] = None
        if v.startswith("srlab-compile"):  # first call compiles
            t0 = time.perf_counter()
            steps[v].step(lr, hr)
            synchronize(device)
            compile_s[v] = time.perf_counter() - t0

    def many(v):
        def run():
            for _ in range(args.steps):
                steps[v].step(lr, hr)

        return run

    flops = None
    if "reference" in steps:  # counted on the eager reference (the same math in every variant)
        ref = steps["reference"]
        mods = [m for m in (getattr(ref, "g", None), getattr(ref, "d", None), getattr(ref, "vgg", None)) if m]
        flops = step_flops(lambda: ref.step(lr, hr), mods)
    fns = {v: many(v) for v in variants}
    peaks = peak_per_variant(fns, device)  # also a warm-up
    t = time_interleaved(fns, device, warmup=args.warmup, repeats=args.repeats)
    rows = []
    for v in variants:
        per = t[v]["median_s"] / args.steps
        its = 1.0 / per
        amp = amps[v]
        prec = "fp32" if v == "reference" or amp is None else str(amp).replace("torch.", "")
        rows.append(
            {
                "case": case,
                "variant": v,
                "precision": prec,
                "ms_per_step": per * 1000,
                "min_ms": t[v]["min_s"] / args.steps * 1000,
                "max_ms": t[v]["max_s"] / args.steps * 1000,
                "times_ms": [x / args.steps * 1000 for x in t[v]["times"]],
                "it_per_s": its,
                "mpx_per_s": its * hr.shape[0] * hr.shape[-1] * hr.shape[-2] / 1e6,
                "peak_mib": peaks[v],
                "tflops": flops / per / 1e12 if flops else None,
                "compile_s": compile_s[v],
                "vs_ref": ""
                if v == "reference"
                else verdict(t["reference"], t[v])
                if "reference" in t
                else "",
            }
        )
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--cases", default="srcnn,esrgan")
    ap.add_argument("--batch", type=int, default=None, help="default 16 (CUDA) / 2 (CPU)")
    ap.add_argument("--blocks", type=int, default=None, help="RRDB blocks: default 16 (CUDA) / 4 (CPU)")
    ap.add_argument("--hr", type=int, default=128, help="HR patch size (the VGG-style D needs 128)")
    ap.add_argument(
        "--steps", type=int, default=None, help="timed steps per repeat: default 10 (CUDA) / 2 (CPU)"
    )
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--compile", action="store_true", help="also time srlab + torch.compile")
    ap.add_argument("--variants", help="comma-separated subset of " + ",".join(VARIANTS))
    ap.add_argument(
        "--compile-mode",
        default="default",
        choices=COMPILE_MODES,
        help="torch.compile mode of the srlab-compile variants (reduce-overhead: CUDA graphs)",
    )
    ap.add_argument("--cpu-bf16", action="store_true", help="on CPU, also time bf16 autocast (slow)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument(
        "--peak-tflops", type=float, default=None, help="the device's dense peak: adds a %% of peak column"
    )
    ap.add_argument("--out", help="write JSON here")
    args = ap.parse_args(argv)
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    if args.threads:
        torch.set_num_threads(args.threads)
    args.batch = args.batch or (16 if cuda else 2)
    args.blocks = args.blocks or (16 if cuda else 4)
    args.steps = args.steps or (10 if cuda else 2)
    args.warmup = args.warmup if args.warmup is not None else (3 if cuda else 1)
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    variants = ["reference", "srlab"]
    variants += ["srlab-bf16"] if args.cpu_bf16 and not cuda else []
    variants += ["srlab-compile"] if args.compile else []
    if args.variants:
        variants = args.variants.split(",")
        bad = [v for v in variants if v not in VARIANTS]
        if bad:
            ap.error(f"unknown variant {bad[0]!r}")
    g = torch.Generator().manual_seed(0)
    hr = torch.rand(args.batch, 3, args.hr, args.hr, generator=g).to(device)
    lr = F.interpolate(hr, scale_factor=0.5, mode="bilinear", align_corners=False, antialias=False)
    rows = []
    for case in args.cases.split(","):
        case_rows = run_case(case, variants, args, device, lr, hr)
        base = case_rows[0]["ms_per_step"]
        for r in case_rows:
            r["speedup"] = base / r["ms_per_step"]
            print(
                f"{case:7s} {r['variant']:14s} {r['ms_per_step']:9.1f} ms/step "
                f"(min {r['min_ms']:.1f}, max {r['max_ms']:.1f})",
                flush=True,
            )
        rows += case_rows
    for r in rows:
        if args.peak_tflops and r.get("tflops"):
            r["pct_peak"] = 100 * r["tflops"] / args.peak_tflops
    print(
        f"\ntraining step throughput on {device_info(device).get('gpu', device)} -- x2, batch {args.batch}, "
        f"HR {args.hr}, RRDB {args.blocks} blocks (ESRGAN = G + D + VGG19 pool3)"
    )
    print_table(
        rows,
        [
            ("case", "case", "s"),
            ("variant", "variant", "s"),
            ("precision", "precision", "s"),
            ("ms_per_step", "ms/step", ".1f"),
            ("min_ms", "min", ".1f"),
            ("max_ms", "max", ".1f"),
            ("it_per_s", "it/s", ".2f"),
            ("mpx_per_s", "Mpx/s", ".2f"),
            ("speedup", "x ref", ".2f"),
            ("vs_ref", "vs ref", "s"),
            ("tflops", "TFLOP/s", ".3f"),
            ("pct_peak", "% peak", ".0f"),
            ("peak_mib", "peak MiB", ".0f"),
            ("compile_s", "compile s", ".1f"),
        ],
    )
    write_json(
        args.out,
        {
            "benchmark": "train_bench",
            "settings": {
                "scale": 2,
                "batch": args.batch,
                "hr": args.hr,
                "blocks": args.blocks,
                "steps": args.steps,
                "warmup": args.warmup,
                "repeats": args.repeats,
            },
            "env": device_info(device),
            "rows": rows,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
