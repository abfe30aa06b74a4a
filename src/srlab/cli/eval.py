"""``srlab eval``: PSNR/SSIM of models x data sets x scales under a named protocol.

Prints the table as papers print it and writes ``results.json`` / ``results.csv`` / ``summary.csv`` /
``results.md`` (schema: docs/eval_json_schema.md).
"""

from __future__ import annotations

import argparse


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
        default=[2, 3, 4],
        help="e.g. 2,3,4; the first is also the scale of checkpoints that do not record one (SRCNN)",
    )
    p.add_argument(
        "--protocol",
        default="standard",
        help="standard (papers' tables, default) or study (the study's notebook); see srlab.protocols",
    )
    p.add_argument(
        "--data-root",
        default=None,
        help="folder with the sets (default: $SRLAB_DATA_ROOT, ../shared/data, cache)",
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
        "--lpips", action="store_true", help="also LPIPS (needs the optional lpips package and its weights)"
    )
    p.add_argument(
        "--allow-missing",
        action="store_true",
        help="exit 0 even when an image of a set could not be evaluated or a known set lacks images (the "
        "tables still mark such a set, e.g. 'Set5 (4/5)')",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    import sys
    import time
    from pathlib import Path

    from srlab.data.find import parse_set_paths
    from srlab.evaluate import evaluate
    from srlab.report.tables import incomplete_sets, markdown_table, summarize, write_results

    out = Path(args.out) if args.out else Path("out") / time.strftime("eval-%Y%m%d-%H%M%S")
    res = evaluate(
        args.models,
        args.datasets,
        args.scales,
        protocol=args.protocol,
        data_root=args.data_root,
        set_paths=parse_set_paths(args.set_path),
        device=args.device,
        crop=args.crop,
        hr_crop=args.hr_crop,
        save_dir=out / "images" if args.save_images else None,
        progress=False if args.no_progress else None,
        lpips=args.lpips,
        log=lambda msg: print(msg, file=sys.stderr),
    )
    res.header["command"] = "srlab " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0] else "srlab eval"
    if not res.rows:
        print("no image was evaluated (see the lines above)", file=sys.stderr)
        return 1
    summ = summarize(res.rows)
    proto = res.header["protocol"]
    inc = incomplete_sets(res.header)
    marks = {k: (v["used"], v["expected"]) for k, v in inc.items()}
    print(f"protocol: {proto['name']} — {proto['summary']}")
    print()
    print(markdown_table(summ, channel="y", incomplete=marks))
    print()
    print(markdown_table(summ, channel="rgb", incomplete=marks))
    print()
    used = sum(int(n) for d in res.header["datasets"] for n in d["used"].values())
    print(f"{len(res.rows)} results from {used} image evaluations; {len(res.skipped)} skipped")
    paths = write_results(res.rows, res.header, out)
    print(f"wrote {paths['md']}, {paths['csv']}, {paths['json']}")
    # a known set with images missing, or any set with images that could not be evaluated, is not the number
    # its name promises: the tables say so and the exit status too (a --set-path subset only is marked)
    failed = [
        f"{d} x{s}: {v['used']} of {v['expected']} images" for (d, s), v in inc.items() if not v["subset"]
    ]
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
