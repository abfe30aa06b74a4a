"""Turn a finished ``srlab train`` run into a shipped model: ``src/srlab/weights/trained/<name>.safetensors``.

    python scripts/release_model.py runs/srcnn_x2 srcnn-x2 --data-root ../shared/data

The run's ``model.safetensors`` keeps its weights and training metadata; this adds a ``release`` record:
the recipe (resolved config + its SHA-256), the training data's fingerprint, iterations, wall time (from the
run's scalars), the machine, and the metrics measured now with ``srlab.eval.loop`` under the recipe's
protocol on Set5, Set14 and B100 at the model's scale. ``tests/test_shipped.py`` re-makes the Set5 numbers.

``--fp16`` stores the weights as float16 (half the file; they load as float32) when that changes no Set5
number by 0.01 dB / 1e-4 SSIM or more, else float32; the recorded metrics are measured on the file shipped.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

from srlab import __version__
from srlab.data.find import resolve_data_root
from srlab.eval.loop import evaluate
from srlab.imaging.files import list_images
from srlab.train.config import config_to_dict, find_config, load_config
from srlab.train.rundir import flat_keys
from srlab.weights.io import RESERVED_KEYS, read_metadata, save_model
from srlab.weights.loader import load_model
from srlab.weights.shipped import SHIPPED, shipped_dir

DATASETS = ("Set5", "Set14", "B100")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _data_fingerprint(folder: Path) -> dict:
    files = list_images(folder)
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0" + hashlib.sha256(f.read_bytes()).digest())
    return {"name": folder.name, "images": len(files), "sha256": h.hexdigest()}


def _wall_time(run: Path) -> tuple[float | None, int]:
    """Seconds of training (the last scalar row's clock, per invocation) and how many invocations."""
    path = run / "scalars.csv"
    if not path.is_file():
        return None, 0
    total, last, runs = 0.0, None, 0
    with open(path, newline="") as fh:
        for row in csv.reader(fh):
            try:
                t = float(row[-1])
            except (ValueError, IndexError):
                continue
            if last is not None and t < last:  # the clock restarts with each resumed invocation
                total += last
                runs += 1
            last = t
    if last is not None:
        total += last
        runs += 1
    return total, runs


def train_command(recipe: str, cfg: dict) -> str:
    """``srlab train RECIPE k=v ...``: the packaged recipe plus the overrides that made ``cfg``."""
    base = flat_keys(config_to_dict(load_config(find_config(recipe), [])[0]))
    used = flat_keys(cfg)
    over = [
        shlex.quote(f"{k}={v if isinstance(v, str) else json.dumps(v)}")
        for k, v in used.items()
        if base.get(k) != v and not k.startswith("quick.") and k not in ("name", "description")
    ]
    return " ".join(["srlab train", recipe, *over])


def val_curve(run: Path) -> list[list[float]]:
    """``[[iteration, validation PSNR], ...]`` from the run's scalars (the set and protocol of its config)."""
    path = run / "scalars.csv"
    out: dict[int, float] = {}
    if path.is_file():
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get("tag") == "val_psnr":
                    out[int(row["iteration"])] = round(float(row["value"]), 4)  # a resumed row replaces
    return [[k, v] for k, v in sorted(out.items())]


def measure(path: Path, scale: int, protocol: str, data_root: Path, datasets=DATASETS) -> list[dict]:
    res = evaluate(
        [str(path)],
        list(datasets),
        [scale],
        protocol=protocol,
        data_root=data_root,
        progress=False,
        log=lambda _m: None,
    )
    out = []
    for ds in datasets:
        rows = [r for r in res.rows if r["dataset"] == ds]
        if not rows:
            continue
        rec = {"dataset": ds, "scale": scale, "protocol": protocol, "images": len(rows)}
        for k in ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb"):
            vals = [r[k] for r in rows if r.get(k) is not None]
            if vals:
                rec[k] = round(sum(vals) / len(vals), 6)
        out.append(rec)
    return out


def _half_copy(dest: Path) -> Path:
    return dest.with_name(dest.stem + ".fp16-candidate.safetensors")


def _fp16_if_lossless(src: Path, model, scale: int, protocol: str, root: Path, dest: Path):
    """("float16", half model) when float16 weights keep every Set5 number within the release tolerance
    (0.01 dB PSNR, 1e-4 SSIM: what tests/test_shipped.py allows), else ("float32", model)."""
    half = _half_copy(dest)
    save_model(half, model.half())
    model.float()
    full = measure(src, scale, protocol, root, datasets=("Set5",))[0]
    got = measure(half, scale, protocol, root, datasets=("Set5",))[0]
    worst = {k: abs(got[k] - full[k]) for k in full if k.startswith(("psnr", "ssim"))}
    ok = all(v < (0.005 if k.startswith("psnr") else 5e-5) for k, v in worst.items())
    print(
        f"float16 weights move Set5 by {json.dumps({k: round(v, 6) for k, v in worst.items()})}: "
        f"storing {'float16' if ok else 'float32'}"
    )
    if not ok:
        half.unlink()
        return "float32", model
    return "float16", model.half()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a finished srlab train output folder")
    ap.add_argument("name", choices=sorted(SHIPPED))
    ap.add_argument("--data-root", type=Path, default=None)
    ap.add_argument("--force", action="store_true", help="replace an existing shipped file")
    ap.add_argument(
        "--fp16", action="store_true", help="store float16 weights if the Set5 numbers do not move"
    )
    args = ap.parse_args(argv)
    src = args.run / "model.safetensors"
    meta = read_metadata(src)
    if not meta or "config" not in meta:
        print(f"{src}: not an srlab train export", file=sys.stderr)
        return 2
    entry = SHIPPED[args.name]
    cfg = meta["config"]
    if cfg.get("protocol") != entry.protocol:
        print(f"{src}: protocol {cfg.get('protocol')} is not the entry's {entry.protocol}", file=sys.stderr)
        return 2
    dest = shipped_dir() / entry.filename
    if dest.exists() and not args.force:
        print(f"{dest} exists; --force replaces it", file=sys.stderr)
        return 2
    root = resolve_data_root(args.data_root)
    model, desc = load_model(src)
    t0 = time.perf_counter()
    storage = "float32"
    if args.fp16:
        storage, model = _fp16_if_lossless(src, model, desc.scale, entry.protocol, root, dest)
    metrics = measure(src if storage == "float32" else _half_copy(dest), desc.scale, entry.protocol, root)
    wall, invocations = _wall_time(args.run)
    canon = json.dumps(cfg, sort_keys=True, separators=(",", ":"), default=str)
    train_dir = Path(cfg["data"]["train"])
    train_dir = train_dir if train_dir.is_absolute() else root / train_dir
    release = {
        "name": args.name,
        "recipe": entry.recipe,
        "command": train_command(entry.recipe, cfg),
        "config_sha256": hashlib.sha256(canon.encode()).hexdigest(),
        "data": _data_fingerprint(train_dir),
        "iterations": meta.get("iterations"),
        "wall_time_s": round(wall, 1) if wall is not None else None,
        "invocations": invocations,
        "machine": {
            "cpu": _cpu_name(),
            "cores": os.cpu_count(),
            "threads": cfg.get("runtime", {}).get("threads") or torch.get_num_threads(),
            "precision": cfg.get("runtime", {}).get("amp"),
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "srlab_version": __version__,
        "released": time.strftime("%Y-%m-%d"),
        "metrics": metrics,
        "val_curve": val_curve(args.run),
        "val_set": f"{cfg.get('val', {}).get('set')} ({cfg.get('val', {}).get('protocol')} protocol)",
        "storage": storage,
    }
    keep = {k: v for k, v in meta.items() if k not in RESERVED_KEYS and k != "release"}
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_model(dest, model, metadata={**keep, "release": release})
    if storage == "float16":
        _half_copy(dest).unlink()
    print(f"{dest}: {dest.stat().st_size:,} bytes; measured in {time.perf_counter() - t0:.0f} s")
    for m in metrics:
        print("  " + json.dumps(m))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
