"""Write docs/models.md: one model card per shipped model, its numbers read from the file's release record.

    python scripts/model_cards.py            # rewrites docs/models.md
    python scripts/model_cards.py --check    # exit 1 if docs/models.md is not what the files say

The prose of each card lives here (CARDS); every number comes from the shipped file's metadata, so the
cards cannot drift from what ``srlab weights info`` and ``tests/test_shipped.py`` see.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from srlab.weights.shipped import SHIPPED, get_shipped, recorded_metrics, release_info

DOC = Path(__file__).resolve().parents[1] / "docs" / "models.md"

# SRCNN 9-5-5 (ImageNet-trained), standard protocol, Y: PSNR / SSIM as tabulated by Kim et al. (VDSR, CVPR
# 2016, Table 2), whose Set5 PSNR equals Dong et al.'s (TPAMI 2016) but x4 (30.48 there, 30.49 in Dong et al.).
PAPER = {
    2: {"Set5": (36.66, 0.9542), "Set14": (32.42, 0.9063), "B100": (31.36, 0.8879)},
    3: {"Set5": (32.75, 0.9090), "Set14": (29.28, 0.8209), "B100": (28.41, 0.7863)},
    4: {"Set5": (30.48, 0.8628), "Set14": (27.49, 0.7503), "B100": (26.90, 0.7101)},
}
TARGET = {2: 36.4, 3: 32.5, 4: 30.2}  # srlab's bar for its own SRCNN on Set5
# Models whose bar is another shipped model (its recorded numbers, same protocol and scale) rather than the
# SRCNN paper: a light modern network has to beat srlab's own SRCNN on every set.
BASELINE = {"span-x2": "srcnn-x2"}
# The study's published SRCNN row (its Table 1/2: RGB PSNR / SSIM, its test sets, which are not here).
STUDY_PUBLISHED = {"DIV2K (256 crops)": (29.1, 0.867), "FFHQ": (29.2, 0.907), "selfie2anime": (27.9, 0.909)}

HEAD = """# srlab's own models

Models srlab trained with `srlab train` and ships inside the package (`src/srlab/weights/trained/`, srlab
safetensors: a few hundred kB for SRCNN, a few MB for SPAN). `srlab weights list` shows them with their
numbers, `srlab weights info NAME` with their whole release record, and `srlab.load_model("srcnn-x2")`
(or `--model srcnn-x2` anywhere) loads one. Each file's metadata carries the resolved training config and
its SHA-256, the training data's fingerprint, iterations, wall time, the machine and the metrics measured at
release; `tests/test_shipped.py` re-makes every recorded Set5 number to 0.01 dB. This page is written from
those records by `python scripts/model_cards.py`.

Re-make every number of a card:

```bash
srlab eval --models srcnn-x2,srcnn-x3,srcnn-x4,bicubic --datasets Set5,Set14,B100 --scale 2,3,4 --data-root DATA
srlab eval --models span-x2,srcnn-x2,bicubic --datasets Set5,Set14,B100 --scale 2 --data-root DATA
srlab eval --models srcnn-study-x2-recipe,srcnn-study-improved-x2,bilinear --datasets Set5,Set14,B100 --scale 2 \\
    --protocol study --data-root DATA
```

B100 here is the 480×320 / 320×480 copy (SelfExSR's): at ×3 the standard protocol crops it to 480×318 (the
papers used 481×321 → 480×321), so B100 ×3 numbers are on three fewer rows than the papers'.
"""

CARDS = {
    "srcnn-x2": """SRCNN 9-5-5 on the Y channel (Dong et al., TPAMI 2016: 9×9×64, 5×5×32, 5×5×1, 57,281 parameters), ×2,
trained by `srlab train srcnn_x2_release` on the paper's data: T91, 33×33 sub-images (stride 14) of the
MATLAB-bicubic-interpolated LR, unpadded convolutions (the loss on the 17×17 centre they reach), MSE. What
differs from the paper is how it is optimised, so that a CPU gets there: Adam from 1e-3 with a cosine decay to
1e-5 (the paper's SGD at 1e-4 needs ~10^8 steps), batch 128, flips and 90° rotations, bf16 autocast with fp32
master weights on CPUs with bf16 kernels. At inference the convolutions are padded by replication.""",
    "srcnn-x3": """`srcnn-x2`'s network and recipe at ×3 (`srlab train srcnn_x3_release`): initialised from `srcnn-x2` (SRCNN
works on the interpolated image, so its weights do not depend on the scale) and fine-tuned with Adam from 5e-4
with a cosine decay.""",
    "srcnn-x4": """`srcnn-x2`'s network and recipe at ×4 (`srlab train srcnn_x4_release`): initialised from `srcnn-x2` and
fine-tuned with Adam from 5e-4 with a cosine decay.""",
    "srcnn-study-x2-recipe": """SRCNN as the study trained it (`srlab train srcnn_x2_study`): RGB 9-5-5 with zero padding, its input the
study's bilinear upsampling of the LR, on the 800 DIV2K 128×128 centre crops with the study's LR (bilinear /2
without antialiasing, float), MSE, Adam 1e-4, batch 20, 1,600 steps (the length that re-makes the study's
published row; see the config). The study's fp16 autocast on CUDA is bf16 autocast on this CPU.""",
    "srcnn-study-improved-x2": """The study's SRCNN improved by srlab (`srlab train srcnn_x2_study_improved`): the same data and degradation
(the 800 DIV2K crops, bilinear /2 without antialiasing, float LR, bilinear input) and the same 9-5-5 RGB
network, trained as `srcnn-x2` is: 33×33 sub-images of the crops, unpadded convolutions, flips and rotations,
Adam from 1e-3 with a cosine decay, batch 128; replicate padding at inference (the study protocol scores every
pixel, and zero padding darkens an 8-pixel frame).""",
    "span-x2": """SPAN (Wan et al., "Swift Parameter-free Attention Network for Efficient Super-Resolution", CVPRW 2024, the
NTIRE 2024 efficient-SR winner): 48 channels, six parameter-free attention blocks, RGB in and out, ×2,
without the paper's input normalisation (upstream's `no_norm` option: with it, a short run spent most of
its steps shrinking features made ~255× larger); srlab's own implementation (`srlab.models.span`) in the
upstream key layout, so the file also loads in spandrel. Trained by `srlab train span_x2_release` on the 800
DIV2K 128×128 centre crops (random 96×96 HR patches, MATLAB-bicubic LR rounded to uint8, flips and 90°
rotations), L1, Adam from 1e-3 with a 100-step warm-up and a cosine decay, batch 16, bf16 autocast with fp32
master weights, on one CPU thread. The re-parameterisable convolutions train as one product kernel per step
(the branches' function and gradients for a fraction of the arithmetic) and run as the re-parameterised 3×3
convolutions at inference. 6,000 steps (51 min on one thread of a shared
2-core CPU; a first 3,000-step run of the same recipe stayed within 0.03–0.07 dB of `srcnn-x2`): a tiny fraction
of the paper's training, so not the paper's numbers, but above `srcnn-x2` on every set.""",
}


def _fmt(v, nd):
    return f"{v:.{nd}f}" if isinstance(v, (int, float)) else "–"


def card(name: str) -> str:
    m, rel = SHIPPED[name], release_info(name)
    rows = recorded_metrics(name)
    mach = rel.get("machine") or {}
    data = rel.get("data") or {}
    its = rel.get("iterations") or {}
    wall = rel.get("wall_time_s")
    out = [f"## `{name}`", "", m.description + ".", "", CARDS.get(name, ""), ""]
    base = BASELINE.get(name)
    if m.protocol == "standard" and base and get_shipped(base):
        scale = rows[0]["scale"] if rows else None
        ref = {(r["dataset"], r["scale"]): r for r in recorded_metrics(base)}
        out += [
            f"Standard protocol (Y, border crop {scale}, MATLAB bicubic), ×{scale}: srlab's numbers beside those "
            f"recorded for `{base}` (which it has to beat on every set).",
            "",
            f"| set | srlab PSNR / SSIM | `{base}` PSNR / SSIM |",
            "|:---|---:|---:|",
        ]
        for r in rows:
            b = ref.get((r["dataset"], r["scale"]), {})
            out.append(
                f"| {r['dataset']} | {_fmt(r.get('psnr_y'), 2)} / {_fmt(r.get('ssim_y'), 4)} | "
                f"{_fmt(b.get('psnr_y'), 2)} / {_fmt(b.get('ssim_y'), 4)} |"
            )
    elif m.protocol == "standard":
        scale = rows[0]["scale"] if rows else None
        out += [
            f"Standard protocol (Y, border crop {scale}, MATLAB bicubic), ×{scale}: srlab's numbers beside the "
            "SRCNN paper's (9-5-5, trained on ImageNet; Set14/B100 as tabulated by Kim et al., VDSR, 2016).",
            "",
            "| set | srlab PSNR / SSIM | paper PSNR / SSIM | srlab target |",
            "|:---|---:|---:|---:|",
        ]
        for r in rows:
            p = PAPER.get(r["scale"], {}).get(r["dataset"])
            tgt = f"≥ {TARGET[r['scale']]}" if r["dataset"] == "Set5" and r["scale"] in TARGET else ""
            ps = f"{p[0]:.2f} / {p[1]:.4f}" if p else "–"
            out.append(
                f"| {r['dataset']} | {_fmt(r.get('psnr_y'), 2)} / {_fmt(r.get('ssim_y'), 4)} | {ps} | {tgt} |"
            )
    else:
        out += [
            "Study protocol (RGB, no border crop, the study's LR), ×2, on the sets here (the study's own test "
            "sets are not: its published SRCNN row, for reference, is "
            + ", ".join(f"{k} {v[0]} dB / {v[1]}" for k, v in STUDY_PUBLISHED.items())
            + ").",
            "",
            "| set | PSNR RGB / SSIM RGB | PSNR Y / SSIM Y |",
            "|:---|---:|---:|",
        ]
        for r in rows:
            out.append(
                f"| {r['dataset']} | {_fmt(r.get('psnr_rgb'), 2)} / {_fmt(r.get('ssim_rgb'), 4)} | "
                f"{_fmt(r.get('psnr_y'), 2)} / {_fmt(r.get('ssim_y'), 4)} |"
            )
    wall_s = f"{wall / 60:.0f} min" if isinstance(wall, (int, float)) else "?"
    out += [
        "",
        f"- Trained by: `{rel.get('command', 'srlab train ' + m.recipe)}`",
        f"- Data: {data.get('name', '?')} ({data.get('images', '?')} images, SHA-256 of names and files "
        f"`{str(data.get('sha256', '?'))[:16]}…`)",
        f"- Iterations: {', '.join(f'{k} {v:,}' for k, v in its.items()) or '?'}; wall time {wall_s} "
        f"on {mach.get('cpu', '?')}, {mach.get('threads', '?')} thread(s), {mach.get('precision', '?')}, "
        f"{'weights stored ' + rel['storage'] + ', ' if rel.get('storage') else ''}"
        f"torch {mach.get('torch', '?')} (the machine was shared with other work)",
        f"- Config SHA-256: `{str(rel.get('config_sha256', '?'))[:16]}…`; released {rel.get('released', '?')}",
        "",
    ]
    return "\n".join(out)


FIGURE = DOC.parent / "images" / "shipped_curves.png"


def plot_curves(path: Path = FIGURE) -> None:
    """Validation PSNR over training of every shipped model (from the release records)."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in SHIPPED if get_shipped(n) and release_info(n).get("val_curve")]
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 2.8), squeeze=False)
    for ax, n in zip(axes[0], names):
        rel = release_info(n)
        it, ps = zip(*rel["val_curve"])
        ax.plot(it, ps, marker="o", ms=3, label="srlab")
        scale = rel["metrics"][0]["scale"] if rel.get("metrics") else None
        base = BASELINE.get(n)
        if base and get_shipped(base):
            b5 = next((r for r in recorded_metrics(base) if r["dataset"] == "Set5"), {})
            if isinstance(b5.get("psnr_y"), (int, float)):
                ax.axhline(b5["psnr_y"], color="k", ls="--", lw=1, label=base)
        elif SHIPPED[n].protocol == "standard" and scale in PAPER:
            ax.axhline(PAPER[scale]["Set5"][0], color="k", ls="--", lw=1, label="paper")
            ax.axhline(TARGET[scale], color="r", ls=":", lw=1, label="target")
        if n == "srcnn-study-improved-x2" and get_shipped("srcnn-study-x2-recipe"):
            base = release_info("srcnn-study-x2-recipe").get("val_curve") or []
            if base:
                ax.axhline(base[-1][1], color="k", ls="--", lw=1, label="study recipe")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _p: f"{v / 1000:g}k"))
        ax.set_title(n, fontsize=9)
        ax.set_xlabel("iteration", fontsize=8)
        ax.set_ylabel(f"val PSNR, {rel.get('val_set', '')}", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render() -> str:
    fig = "![validation PSNR over training](images/shipped_curves.png)\n\n" if FIGURE.is_file() else ""
    return HEAD + "\n" + fig + "\n".join(card(n) for n in SHIPPED if get_shipped(n))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    text = render()
    if args.check:
        same = DOC.is_file() and DOC.read_text(encoding="utf-8") == text
        print(
            "docs/models.md is up to date" if same else "docs/models.md differs: run scripts/model_cards.py"
        )
        return 0 if same else 1
    plot_curves()
    text = render()
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
