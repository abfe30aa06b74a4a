"""Evaluation-metric throughput: srlab's torch PSNR/SSIM vs scikit-image on the same image pairs.

Pairs: each HR image of a set (default Set14; synthetic images when the data is not found) modcropped to the
scale, and its SR = MATLAB bicubic upsample of the MATLAB bicubic LR, rounded to uint8 -- what ``srlab eval``
measures. Every method computes the four numbers of the standard protocol (PSNR and SSIM on Y and on RGB,
border crop = scale); ``Y only`` computes the two Y numbers.

- ``srlab``: :func:`srlab.eval.metrics.metrics_batch` (float64; CPU, and CUDA when available);
- ``scikit-image``: ``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
  data_range=255)`` per channel and numpy PSNR, the usual Python reference.

Prints a table (images/s, Mpx/s of HR, speed-up vs scikit-image, largest difference from scikit-image) and
writes JSON with ``--out``.

    python benchmarks/eval_bench.py                       # Set14 from the data root, CPU (+ CUDA if present)
    python benchmarks/eval_bench.py --synthetic 20 --out eval_bench.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import device_info, print_table, write_json  # noqa: E402
from srlab.eval.metrics import metrics_batch  # noqa: E402
from srlab.eval.protocols import get_protocol, hr_tensor, read_hr  # noqa: E402
from srlab.imaging.resize import imresize, quantize  # noqa: E402
from srlab.runtime import cuda_available  # noqa: E402

_STANDARD = get_protocol("standard")

_Y = np.array([65.481, 128.553, 24.966]) / 255.0


def _pairs_from_set(name: str, data_root: str | None, scale: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    from srlab.data.find import find_dataset

    ds = find_dataset(name, data_root)
    out = []
    for p in ds.files:
        out.append((p.stem, *_pair(read_hr(p)[0], scale)))
    return out


def _synthetic(n: int, scale: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        h, w = rng.integers(300, 600, 2)
        y, x = np.mgrid[0:h, 0:w]
        img = 128 + 80 * np.sin(x / rng.uniform(3, 20))[..., None] * np.cos(y / rng.uniform(3, 20))[..., None]
        img = np.clip(img + rng.normal(0, 10, (h, w, 3)), 0, 255).astype(np.uint8)
        out.append((f"synthetic{i}", *_pair(img, scale)))
    return out


def _pair(hr: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    hr, reason = _STANDARD.prepare_hr(hr, scale)
    if hr is None:
        raise SystemExit(f"eval_bench: {reason}")
    hr = np.ascontiguousarray(hr)
    t = hr_tensor(hr)[0]
    sr = quantize(imresize(_STANDARD.make_lr(t, scale), scale))
    return hr, sr.permute(1, 2, 0).numpy().astype(np.uint8)


def _skimage_metrics(sr: np.ndarray, hr: np.ndarray, crop: int, y_only: bool) -> dict[str, float]:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    def ssim(a, b):
        return structural_similarity(
            a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
        )

    a = sr[crop:-crop, crop:-crop].astype(np.float64)
    b = hr[crop:-crop, crop:-crop].astype(np.float64)
    if a.shape[2] == 1:
        p, s = peak_signal_noise_ratio(b[..., 0], a[..., 0], data_range=255), ssim(a[..., 0], b[..., 0])
        return (
            {"psnr_y": p, "ssim_y": s} if y_only else {"psnr_y": p, "ssim_y": s, "psnr_rgb": p, "ssim_rgb": s}
        )
    ya, yb = a @ _Y + 16, b @ _Y + 16
    out = {"psnr_y": peak_signal_noise_ratio(yb, ya, data_range=255), "ssim_y": ssim(ya, yb)}
    if not y_only:
        out["psnr_rgb"] = peak_signal_noise_ratio(b, a, data_range=255)
        out["ssim_rgb"] = float(np.mean([ssim(a[..., k], b[..., k]) for k in range(3)]))
    return out


def _srlab_metrics(sr, hr, crop: int, y_only: bool, device: torch.device) -> dict[str, float]:
    ts = torch.from_numpy(sr).permute(2, 0, 1).to(device)
    th = torch.from_numpy(hr).permute(2, 0, 1).to(device)
    res = metrics_batch(ts, th, crop=crop, channels=("y",) if y_only else ("y", "rgb"))
    return {k: float(v[0]) for k, v in res.items()}  # float() synchronises the GPU


def _run(method, pairs, crop, y_only, repeats) -> tuple[float, list[dict]]:
    best = float("inf")
    results: list[dict] = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        results = [method(sr, hr, crop, y_only) for _, hr, sr in pairs]
        best = min(best, time.perf_counter() - t0)
    return best, results


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="Set14")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--synthetic", type=int, default=0, help="use N synthetic images instead of a data set")
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=2, help="best of N passes over the images")
    ap.add_argument("--no-cuda", action="store_true")
    ap.add_argument("--out", default=None, help="write JSON here")
    args = ap.parse_args(argv)

    source = f"{args.synthetic} synthetic images" if args.synthetic else args.dataset
    if args.synthetic:
        pairs = _synthetic(args.synthetic, args.scale)
    else:
        try:
            pairs = _pairs_from_set(args.dataset, args.data_root, args.scale)
        except Exception as exc:  # data not here: fall back to synthetic images
            print(f"{args.dataset} not available ({exc}); using 14 synthetic images")
            pairs, source = _synthetic(14, args.scale), "14 synthetic images"
    mpx = sum(hr.shape[0] * hr.shape[1] for _, hr, _ in pairs) / 1e6
    crop = _STANDARD.border_crop(args.scale)
    print(f"{source}: {len(pairs)} pairs, {mpx:.2f} Mpx of HR, x{args.scale}, border crop {crop}")

    devices = [torch.device("cpu")]
    if cuda_available() and not args.no_cuda:
        devices.append(torch.device("cuda"))
    rows = []
    for y_only in (False, True):
        what = "Y only" if y_only else "Y + RGB"
        sk_t, sk_res = _run(_skimage_metrics, pairs, crop, y_only, args.repeats)
        rows.append(
            {"method": "scikit-image", "metrics": what, "device": "cpu", "seconds": sk_t, "max_diff": 0.0}
        )
        for dev in devices:

            def ours(sr, hr, c, y, dev=dev):
                return _srlab_metrics(sr, hr, c, y, dev)

            ours(pairs[0][2], pairs[0][1], crop, y_only)  # warm-up (CUDA context, kernels)
            t, res = _run(ours, pairs, crop, y_only, args.repeats)
            diff = max(abs(r[k] - s[k]) for r, s in zip(res, sk_res) for k in r if np.isfinite(r[k]))
            rows.append(
                {"method": "srlab torch", "metrics": what, "device": dev.type, "seconds": t, "max_diff": diff}
            )
    for r in rows:
        r["images_per_s"] = len(pairs) / r["seconds"]
        r["mpx_per_s"] = mpx / r["seconds"]
        ref = next(x for x in rows if x["method"] == "scikit-image" and x["metrics"] == r["metrics"])
        r["speedup_vs_skimage"] = ref["seconds"] / r["seconds"]
    print_table(
        rows,
        [
            ("method", "method", ""),
            ("metrics", "metrics", ""),
            ("device", "device", ""),
            ("seconds", "s", ".3f"),
            ("images_per_s", "images/s", ".1f"),
            ("mpx_per_s", "Mpx/s", ".2f"),
            ("speedup_vs_skimage", "x skimage", ".2f"),
            ("max_diff", "max |diff|", ".1e"),
        ],
    )
    write_json(
        args.out,
        {
            "benchmark": "eval_metrics",
            "source": source,
            "pairs": len(pairs),
            "mpx": mpx,
            "scale": args.scale,
            "crop": crop,
            "env": device_info(devices[-1]),
            "results": rows,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
