"""x4 models on real photos without a ground truth: NIQE of each output and a side-by-side picture.

Takes the first ``--count`` landscape photos of ``--images`` (sorted by name), makes a low-resolution input of
each and upscales it x4 with every model through ``srlab upscale`` (fp32, torch backend, so all models run
the same way). The input is either

- ``--input crop`` (default): a centre crop of the photo at its own resolution (``--lr-size``, 120x80): real
  pixels with the photo's own noise, blur and JPEG history, no synthetic degradation and no ground truth; or
- ``--input downscale``: the whole photo reduced to ``--lr-size`` with MATLAB's antialiased bicubic (a clean
  LR; the photo itself is then scored too, as the ``original photo`` row).

NIQE (Mittal et al. 2013, lower is better; :mod:`srlab.eval.perceptual`) is computed on each output's Y
channel; it needs the published pristine model (``--niqe-params``, default srlab's cache / a download).
Writes ``OUT/lr/``, ``OUT/<label>/``, ``OUT/niqe.json``, prints a Markdown table and, with ``--figure``, a
picture of the first ``--panels`` photos: input (nearest) | each model, with a detail inset.

    python benchmarks/realworld_compare.py --images /data/BSD100/HR --out /tmp/rw \\
        --model mine=runs/x/model.safetensors --model realesrgan-x4plus --model bicubic-x4 \\
        --figure docs/images/realworld_x4.png
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image as PILImage

from srlab.atomic import write_json
from srlab.errors import SrlabError, WeightsError
from srlab.eval.perceptual import load, score
from srlab.eval.perceptual.niqe import NIQE
from srlab.imaging.arrays import from_tensor, to_tensor
from srlab.imaging.files import list_images
from srlab.imaging.io import read_image, write_image
from srlab.imaging.resize import imresize, quantize
from srlab.report.figures import Tile, choose_inset, save_panel


def _parse_model(text: str) -> tuple[str, str]:
    """``label=name-or-path`` or ``name`` (the label is then the name, or a path's stem)."""
    if "=" in text:
        label, _, model = text.partition("=")
        return label.strip(), model.strip()
    return (Path(text).stem if Path(text).suffix else text), text


def _size(text: str) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    if not (w.isdigit() and h.isdigit() and int(w) > 0 and int(h) > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT (e.g. 120x80)")
    return int(w), int(h)


def make_inputs(images: list[Path], mode: str, lr_wh: tuple[int, int], lr_dir: Path) -> list[Path]:
    """Write the LR input of each photo to ``lr_dir`` as PNG; returns their paths."""
    w, h = lr_wh
    out = []
    for p in images:
        px = read_image(p).pixels
        if mode == "crop":
            top, left = (px.shape[0] - h) // 2, (px.shape[1] - w) // 2
            lr = px[top : top + h, left : left + w]
        else:
            x = to_tensor(px).double() * 255.0
            lr = from_tensor(quantize(imresize(x, size=(h, w))) / 255.0)
        out.append(write_image(lr_dir / f"{p.stem}.png", np.ascontiguousarray(lr), overwrite=True))
    return out


def upscale(model: str, lr_dir: Path, out_dir: Path) -> None:
    cmd = [sys.executable, "-m", "srlab", "upscale", str(lr_dir), "-o", str(out_dir), "-m", model]
    cmd += ["--precision", "fp32", "--backend", "torch", "--suffix", "", "--ext", "png", "--force", "-q"]
    if subprocess.run(cmd).returncode != 0:  # srlab upscale has printed the reason
        raise SystemExit(f"realworld_compare: srlab upscale -m {model} failed (see above)")


def niqe_model(params: str | None):
    """The NIQE model from ``params`` or srlab's cache (downloaded there on first use), before any work."""
    if params is None:
        return load("niqe")
    if not Path(params).is_file():
        raise WeightsError(f"{params}: no such file; give --niqe-params the path of niqe_pris_params.npz")
    return NIQE.load(params)


def niqe_scores(paths: list[Path], model) -> list[float]:
    vals = []
    for p in paths:
        x = torch.from_numpy(read_image(p).pixels.astype(np.float64)).permute(2, 0, 1)[None]
        vals.append(float(score("niqe", x, model=model)[0]))
    return vals


def save_figure(path: Path, rows: list[list[tuple[str, np.ndarray, str]]], title: str) -> None:
    """One :func:`srlab.report.figures.save_panel` per photo, stacked vertically into ``path``."""
    with tempfile.TemporaryDirectory() as tmp:
        panels = []
        for i, row in enumerate(rows):
            ref = row[-1][1]  # the inset is chosen on the last column (the most detailed output)
            box = choose_inset(ref, size=min(ref.shape[:2]) // 3)
            tiles = [Tile(label, img, caption) for label, img, caption in row]
            p = save_panel(Path(tmp) / f"{i}.png", tiles, box, title=title if i == 0 else "", dpi=100)
            panels.append(read_image(p).pixels)
        w = max(a.shape[1] for a in panels)
        canvas = PILImage.new("RGB", (w, sum(a.shape[0] for a in panels)), "white")
        y = 0
        for a in panels:
            canvas.paste(PILImage.fromarray(a), (0, y))
            y += a.shape[0]
        write_image(path, np.asarray(canvas), overwrite=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", required=True, help="folder of photos (e.g. BSD100/HR)")
    ap.add_argument("--out", required=True, help="work folder (LR inputs, outputs, niqe.json)")
    ap.add_argument("--model", action="append", required=True, help="[label=]model name or weights file")
    ap.add_argument("--count", type=int, default=6, help="photos to use (the first landscape ones)")
    ap.add_argument("--input", choices=("crop", "downscale"), default="crop")
    ap.add_argument("--lr-size", type=_size, default="120x80", help="LR input WxH")
    ap.add_argument("--niqe-params", default=None, help="niqe_pris_params.npz (default: srlab's cache)")
    ap.add_argument("--figure", default=None, help="write the side-by-side picture here")
    ap.add_argument("--panels", type=int, default=3, help="photos in the picture")
    args = ap.parse_args(argv)

    niqe = niqe_model(args.niqe_params)
    out = Path(args.out)
    lr_wh = args.lr_size
    photos = pick_photos(args.images, args.count, lr_wh)
    lr_paths = make_inputs(photos, args.input, lr_wh, out / "lr")
    models = [_parse_model(m) for m in args.model]
    scores: dict[str, list[float]] = {}
    if args.input == "downscale":
        scores["original photo"] = niqe_scores(photos, niqe)
    for label, model in models:
        print(f"upscaling {len(lr_paths)} inputs with {model} ...", flush=True)
        upscale(model, out / "lr", out / label)
        scores[label] = niqe_scores([out / label / f"{p.stem}.png" for p in photos], niqe)

    names = [p.stem for p in photos]
    result = {
        "input": args.input,
        "lr_size": list(lr_wh),
        "images": names,
        "models": {label: model for label, model in models},
        "niqe": {k: dict(zip(names, v)) for k, v in scores.items()},
        "niqe_mean": {k: statistics.fmean(v) for k, v in scores.items()},
    }
    write_json(out / "niqe.json", result)
    print(f"\nNIQE (lower is better), {args.input} {lr_wh[0]}x{lr_wh[1]} inputs, x4:\n")
    print("| model | " + " | ".join(n.split("_")[1] if "_" in n else n for n in names) + " | mean |")
    print("|---" * (len(names) + 2) + "|")
    for k, v in scores.items():
        print(f"| {k} | " + " | ".join(f"{x:.2f}" for x in v) + f" | **{statistics.fmean(v):.2f}** |")

    if args.figure:
        rows = []
        for i, p in enumerate(photos[: args.panels]):
            row = [("input (nearest)", read_image(lr_paths[i]).pixels, f"{lr_wh[0]}x{lr_wh[1]}")]
            for label, _ in models:
                img = read_image(out / label / f"{p.stem}.png").pixels
                row.append((label, img, f"NIQE {scores[label][i]:.2f}"))
            rows.append(row)
        title = f"x4 on {args.input} {lr_wh[0]}x{lr_wh[1]} inputs from {Path(args.images).parent.name}"
        save_figure(Path(args.figure), rows, title)
        print(f"\nfigure: {args.figure}")
    return 0


def pick_photos(folder: str, count: int, lr_wh: tuple[int, int]) -> list[Path]:
    """The first ``count`` landscape photos (by name) at least ``lr_wh`` in size."""
    picked = []
    for p in list_images(folder):
        h, w = read_image(p).pixels.shape[:2]
        if w >= h and w >= lr_wh[0] and h >= lr_wh[1]:
            picked.append(p)
            if len(picked) == count:
                break
    if not picked:
        raise SystemExit(
            f"realworld_compare: no landscape photo of at least {lr_wh[0]}x{lr_wh[1]} in {folder}"
        )
    return picked


def _main() -> int:
    try:
        return main()
    except SrlabError as exc:  # a bad photo, a missing NIQE file: srlab's one line, no traceback
        raise SystemExit(f"realworld_compare: {exc}") from None


if __name__ == "__main__":
    raise SystemExit(_main())
