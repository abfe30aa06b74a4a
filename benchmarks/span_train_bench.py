"""SPAN training step: the re-parameterisable convs as branches (upstream's training form) vs srlab's
product kernel (the same function and gradients, one 3x3 conv per layer), in fp32 and bf16 autocast.

Variants, in one process on the same random batch, timed interleaved (benchmarks/_common.py):

- ``reference``: the branch form in fp32 (what upstream SPAN and spandrel train);
- ``branch-bf16``: the branch form under bf16 autocast;
- ``product`` / ``product-bf16``: srlab's default training form (``SPAN.branch_forward = False``).

Each step is forward, L1 loss, backward and an Adam step. bf16 pays only on CPUs with native bf16
(AVX512-BF16 / AMX). Prints seconds per step and the speed-up over the reference.

    python benchmarks/span_train_bench.py --threads 1          # SPAN x2, batch 16, LR 48x48
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import device_info, print_table, time_interleaved  # noqa: E402
from srlab.models.registry import build_model  # noqa: E402


def make_step(product: bool, bf16: bool, x: torch.Tensor, y: torch.Tensor):
    torch.manual_seed(0)
    model, _ = build_model("span-x2")
    model.branch_forward = not product
    model.train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step() -> None:
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with ctx:
            out = model(x)
        loss = (out.float() - y).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr-size", type=int, default=48)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    x = torch.rand(args.batch, 3, args.lr_size, args.lr_size)
    y = torch.rand(args.batch, 3, 2 * args.lr_size, 2 * args.lr_size)
    variants = {
        "reference": (False, False),
        "branch-bf16": (False, True),
        "product": (True, False),
        "product-bf16": (True, True),
    }
    fns = {k: make_step(p, b, x, y) for k, (p, b) in variants.items()}
    device = torch.device("cpu")
    res = time_interleaved(fns, device, warmup=1, repeats=args.repeats)
    ref = res["reference"]["median_s"]
    rows = [
        {"variant": k, "s": r["median_s"], "min": r["min_s"], "max": r["max_s"], "x": ref / r["median_s"]}
        for k, r in res.items()
    ]
    print(device_info(device), f"batch {args.batch}, LR {args.lr_size}x{args.lr_size}, x2")
    print_table(
        rows,
        [
            ("variant", "variant", "s"),
            ("s", "s/step", ".3f"),
            ("min", "min", ".3f"),
            ("max", "max", ".3f"),
            ("x", "vs reference", ".2f"),
        ],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
