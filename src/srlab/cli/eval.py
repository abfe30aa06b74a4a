"""``srlab eval``: PSNR/SSIM (and perceptual metrics) of models x data sets x scales under a named protocol,
or of SR images made elsewhere (``--sr DIR --gt DIR``, :mod:`srlab.eval.folders`).

Prints the table as papers print it and writes ``results.json`` / ``results.csv`` / ``summary.csv`` /
``results.md`` (schema: docs/eval_json_schema.md).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _scales(text: str) -> list[int]:
    try:
        vals = [int(t) for t in _csv(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"scales must be integers like 2,3,4, not {text!r}") from None
    if not vals or any(v < 1 for v in vals):
        raise argparse.ArgumentTypeError(f"scales must be positive integers, not {text!r}")
    return vals


def register(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate models on benchmark sets (PSNR/SSIM, papers' protocol)",
        description=(
            "Evaluate models x data sets x scales. Standard protocol: HR modcropped, LR = MATLAB bicubic "
            "rounded to uint8, SR rounded, PSNR/SSIM on Y and RGB with border crop = scale. Study protocol: "
            "128x128 centre crop, bilinear LR without antialiasing, float metrics on RGB, no crop."
        ),
    )
    p.add_argument(
        "--models",
        type=_csv,
        default=["bicubic"],
        help="comma-separated: bicubic, bilinear, zoo names, checkpoint paths (default: bicubic)",
    )
    p.add_argument(
        "--datasets", type=_csv, default=["Set5", "Set14", "B100"], help="comma-separated set names"
    )
    p.add_argument(
        "--scale",
        "--scales",
        dest="scales",
        type=_scales,
        default=None,
        help="e.g. 2,3,4 (default); the first is also the scale of checkpoints that do not record one "
        "(SRCNN); with --sr one scale, required",
    )
    p.add_argument(
        "--protocol",
        default="standard",
        help="standard (papers' tables, default) or study (the study's notebook); see srlab.eval.protocols",
    )
    p.add_argument(
        "--data-root",
        default=None,
        help="folder with the sets (default: $SRLAB_DATA_ROOT, else the srlab cache's data/ folder)",
    )
    p.add_argument(
        "--set-path",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="use DIR for set NAME (repeatable; NAME may be a new set name)",
    )
    p.add_argument("--out", default=None, help="output folder (default: out/eval-<time>)")
    p.add_argument("--save-images", action="store_true", help="also write the SR images under OUT/images/")
    p.add_argument(
        "--device",
        default="auto",
        help="auto (cuda, else mps, else cpu; the default), cpu, cuda, cuda:N or mps",
    )
    p.add_argument(
        "--crop", type=int, default=None, help="border crop in pixels (default: the scale; 0 for study)"
    )
    p.add_argument(
        "--hr-crop",
        type=int,
        default=None,
        help="study protocol: centre-crop size (default 128; images no larger, and the sets the study used "
        "whole, are used whole; 0 = none)",
    )
    p.add_argument(
        "--lpips", action="store_true", help="also LPIPS (AlexNet); the same as --metrics psnr,ssim,lpips"
    )
    p.add_argument(
        "--metrics",
        type=_csv,
        default=[],
        help="comma-separated: psnr, ssim (always computed), lpips (AlexNet), lpips_vgg, dists, niqe "
        "(no reference); same border crop as PSNR; srlab's own implementations, their published weights "
        "downloaded on first use into the srlab cache (offline: one line says what to put where)",
    )
    p.add_argument(
        "--sr",
        action="append",
        default=[],
        metavar="[LABEL=]DIR",
        help="score the SR images in DIR (made elsewhere, or by --save-images) against --gt instead of "
        "running models; repeat for several methods. Paired by file name: same stem, else the stem without "
        "a suffix (_x4, _SR, _out, _output, _result, _rlt, _HR, _GT) when that pairs exactly one file with "
        "one; every file not paired, and every size mismatch, is one line (exit 1 unless --allow-missing). "
        "The ground truth is prepared as the protocol prepares it (standard: modcrop to --scale; study: "
        "centre crop too), so SR files must have that size. SR files are scored as the protocol scores SR: "
        "standard rounds to uint8 (8-bit files already are), study only clips (a 16-bit PNG keeps its "
        "precision): --save-images writes 8-bit PNGs under standard and 16-bit PNGs under study, so that "
        "scoring them reproduces the direct numbers. Y-channel models (SRCNN): the direct eval scores "
        "their own Y output, a folder of RGB files is scored on the Y of the RGB (RGB columns agree exactly)",
    )
    p.add_argument(
        "--gt", default=None, metavar="DIR|SET", help="ground truth for --sr: a folder or a set name (Set5)"
    )
    p.add_argument(
        "--allow-missing",
        action="store_true",
        help="exit 0 even when an image of a set could not be evaluated or a known set lacks images (the "
        "tables still mark such a set, e.g. 'Set5 (4/5)')",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--shard",
        default=None,
        metavar="K/N|auto",
        help="evaluate share K of N of every set's images (1-based, stable by path; auto: from SLURM array or "
        "torchrun variables); merge the shards' results.json with --merge",
    )
    p.add_argument(
        "--merge",
        nargs="+",
        default=None,
        metavar="RESULTS",
        help="merge the results.json files (or their folders) of all --shard runs into the unsharded result",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    # the library is imported here, not at the top: `srlab --help` imports every command module
    from srlab.eval.folders import evaluate_folders, parse_sr_dirs
    from srlab.eval.loop import evaluate
    from srlab.eval.merge import merge_files
    from srlab.eval.results import failures, summarize, tables_markdown, write_results
    from srlab.eval.shard import parse_shard

    out = Path(args.out) if args.out else Path("out") / time.strftime("eval-%Y%m%d-%H%M%S")
    shard = None if args.merge else parse_shard(args.shard)
    command = "srlab " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0] else "srlab eval"
    if args.sr or args.gt:
        if not (args.sr and args.gt):
            print(
                "srlab eval: --sr and --gt go together (SR folder(s) and their ground truth)", file=sys.stderr
            )
            return 2
        if not args.scales or len(args.scales) != 1:
            print(
                "srlab eval: --sr needs one --scale (the factor the SR images were made at)", file=sys.stderr
            )
            return 2
        res = evaluate_folders(
            parse_sr_dirs(args.sr),
            args.gt,
            args.scales[0],
            metrics=[*args.metrics, *(["lpips"] if args.lpips else [])],
            command=command,
            **_scoring_options(args),
        )
    elif args.merge:
        res = merge_files(args.merge, command=command)
    else:
        res = evaluate(
            args.models,
            args.datasets,
            args.scales or [2, 3, 4],
            save_dir=out / "images" if args.save_images else None,
            lpips=args.lpips,
            shard=shard,
            metrics=args.metrics,
            command=command,
            **_scoring_options(args),
        )
    if not res.rows:
        print("no image was evaluated (see the lines above)", file=sys.stderr)
        return 1
    if shard is not None:
        print(
            f"shard {shard}: merge the results.json of all {shard.count} shards with srlab eval --merge",
            file=sys.stderr,
        )
    proto = res.header["protocol"]
    print(f"protocol: {proto['name']} — {proto['summary']}")
    print()
    for line in tables_markdown(summarize(res.rows), res.header):
        print(line)
    used = sum(int(n) for d in res.header["datasets"] for n in d["used"].values())
    print(f"{len(res.rows)} results from {used} image evaluations; {len(res.skipped)} skipped")
    paths = write_results(res.rows, res.header, out)
    print(f"wrote {paths['md']}, {paths['csv']}, {paths['json']}")
    # a known set with images missing, or any set with images that could not be evaluated, is not the number
    # its name promises: the tables say so and the exit status too (a --set-path subset only is marked)
    failed = failures(res.header)
    if failed:
        state = "accepted (--allow-missing)" if args.allow_missing else "error"
        print(
            f"srlab eval: {state}: incomplete {'; '.join(failed)} (see the skip lines above and "
            f"{paths['md']}); results in {out}"
            + ("" if args.allow_missing else "; pass --allow-missing to accept"),
            file=sys.stderr,
        )
        return 0 if args.allow_missing else 1
    return 0


def _scoring_options(args) -> dict:
    """What scoring folders (--sr/--gt) and the direct evaluation take alike from the command line."""
    from srlab.data.find import parse_set_paths

    return dict(
        protocol=args.protocol,
        data_root=args.data_root,
        set_paths=parse_set_paths(args.set_path),
        device=args.device,
        crop=args.crop,
        hr_crop=args.hr_crop,
        progress=False if args.no_progress else None,
        log=lambda msg: print(msg, file=sys.stderr),
    )
