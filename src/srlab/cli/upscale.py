"""``srlab upscale INPUT... -o OUT``: upscale image files, folders and globs with a model.

Every good input is written to ``OUT/<stem><suffix>.<ext>`` (or to ``OUT`` itself when there is one
input and ``OUT`` names an image file). ``--recursive`` takes the images of sub-folders too and mirrors the
tree under OUT; a glob mirrors the tree below its fixed folder (``in/**/*.png``: ``in/a/x.png`` ->
``OUT/a/x_x4.png``). ``--skip-existing`` resumes a batch: outputs already there are counted as skipped (they
are complete: every output is written to a temporary file and renamed). ``--shard K/N`` takes share K of N
(stable by relative path; see srlab.eval.shard), so N machines split one folder. Real-ESRGAN's flags (``-i``,
``-n``, ``--fp32``, ``--tile_pad``, ``-g``, ...) are accepted too (srlab.cli._realesrgan; README's table).
A bad input, or an output that cannot be written (full disk, no permission), gets one line naming it and the reason, and the batch goes on. Inputs are never overwritten (not even with ``--force``); existing outputs only with ``--force``.
Named video files (.mp4 .m4v .mkv .mov .webm .avi; the ``video`` extra) and animated GIF/APNG/WebP keep every
frame, their timing and their other streams (srlab.inference.video, srlab.inference.animated; ``--codec``, ``--crf``).
Exit status: 0 when every file was written, 1 when any failed, 2 for usage errors.
"""

from __future__ import annotations

import argparse

# the output rules live in srlab.inference.outputs and the tuning options in srlab.inference.options (neither
# imports torch, so --help stays fast); this module is the command line around them
from srlab.inference.options import cli_flags
from srlab.inference.outputs import MEDIA_EXTS, OUT_EXTS

__all__ = ["MEDIA_EXTS", "OUT_EXTS", "register", "run"]


def register(sub) -> None:
    p = sub.add_parser(
        "upscale",
        help="upscale images with a super-resolution model",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "inputs", nargs="*", metavar="INPUT", help="image files, folders (their images) or glob patterns"
    )
    p.add_argument(
        "-o", "--output", required=True, metavar="OUT", help="output folder (or file, for one input)"
    )
    p.add_argument(
        "-m",
        "--model",
        default=None,
        metavar="NAME|PATH",
        help="model name (`srlab weights list`) or weights file (default: realesrgan-x4plus)",
    )
    for _field, flag in cli_flags():  # -s/--outscale ... --alpha: one per UpscaleOptions field
        p.add_argument(*flag.names, **flag.kw)
    p.add_argument("-f", "--force", action="store_true", help="replace existing outputs (never inputs)")
    p.add_argument(
        "--suffix",
        default=None,
        help="added to output names, joined with _ when it starts with a letter or digit (default: _x<scale>)",
    )
    p.add_argument(
        "--ext",
        default="same",
        choices=[*OUT_EXTS, "same", "auto"],
        help="output format (default: same as the input, also 'auto'; PNG for other formats and for alpha in "
        "JPEG inputs)",
    )
    p.add_argument(
        "--max-pixels", type=float, default=200.0, metavar="MPX", help="refuse larger inputs (default 200)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    p.add_argument(
        "-r", "--recursive", action="store_true", help="include sub-folders, mirroring the tree under -o"
    )
    p.add_argument(
        "--skip-existing",
        action="store_true",
        help="resume a batch: leave outputs that exist (counted as skipped; exit 0 when nothing failed)",
    )
    p.add_argument(
        "--quality", type=int, default=95, metavar="Q", help="JPEG/WebP quality 1-100 (default 95)"
    )
    p.add_argument(
        "--shard",
        default=None,
        metavar="K/N|auto",
        help="process share K of N (1-based; stable by relative path), or auto from SLURM array / torchrun "
        "variables",
    )
    p.add_argument(
        "--codec", default=None, metavar="NAME", help="video encoder (default libx264; libvpx-vp9 for .webm)"
    )
    p.add_argument(
        "--crf", type=int, default=None, metavar="N", help="video quality, lower is better (default 18)"
    )
    from srlab.cli import _realesrgan

    _realesrgan.add_flags(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import functools
    import sys
    import warnings

    from srlab.cli import _realesrgan
    from srlab.errors import ConfigError, SrlabError
    from srlab.eval.shard import parse_shard
    from srlab.inference import options as upscale_options
    from srlab.inference import outputs

    def say(line: str) -> None:
        from tqdm.auto import tqdm

        tqdm.write(line, file=sys.stderr)

    _realesrgan.apply(args, say)
    shard = parse_shard(args.shard)
    rules = outputs.OutputRules(
        suffix=args.suffix, ext=args.ext, force=args.force, skip_existing=args.skip_existing
    )
    if args.crf is not None and not 0 <= args.crf <= 63:
        raise ConfigError(f"--crf must be 0..63 (lower is better; x264/x265 take 0..51), not {args.crf}")
    if not 1 <= args.quality <= 100:
        raise ConfigError(f"--quality must be 1..100, not {args.quality}")
    options = upscale_options.from_flags(vars(args))
    if not args.max_pixels > 0:
        raise ConfigError("--max-pixels must be > 0")

    rels: dict = {}
    notes: list[str] = []
    files, problems = outputs.expand_inputs(args.inputs, recursive=args.recursive, rels=rels, notes=notes)
    if not files and not problems:
        raise ConfigError("no input files; pass image files, folders or glob patterns")

    from tqdm.auto import tqdm

    from srlab.inference import DEFAULT_MODEL, Upscaler, animated, video

    files, notes = outputs.outside_output(files, rels, args.output, notes)
    for line in problems + ([] if args.quiet else notes):
        say(line)
    every_input = list(files)  # all shards' inputs: no share may write over another's input either
    if shard is not None:
        total = len(files)
        files = shard.select(files, lambda f: rels[f].as_posix())
        if not args.quiet:
            say(f"srlab upscale: shard {shard}: {len(files)} of {total} image(s)")
        if not files and not problems:
            return 0  # a share can be empty (few files, many shards): nothing to do is not a failure
    if not files:
        return 1

    up = Upscaler(args.model or DEFAULT_MODEL, options, progress=not args.quiet)
    scale = options.outscale if options.outscale is not None else up.scale
    plan = outputs.OutputPlan(rules, files, args.output, scale=scale, rels=rels, inputs=every_input)
    if not args.quiet:
        say(f"srlab upscale: {len(files)} image(s) with {up.describe()}")

    failed = len(problems)
    written = skipped = 0
    max_pixels = int(args.max_pixels * 1e6)

    bar = tqdm(list(zip(files, plan.paths)), desc="images", unit="img", disable=True if args.quiet else None)
    for src, dst in bar:
        if plan.resume(src, dst):
            skipped += 1
            continue
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                kind = "video" if video.is_video(src) else "animation" if animated.is_animated(src) else None
                if kind is not None:  # every frame, not the first one only
                    out = plan.claim(src, plan.media(kind, src, dst))
                    kw = dict(outscale=options.outscale, overwrite=args.force, max_pixels=max_pixels)
                    kw.update(progress=not args.quiet)
                    if kind == "video":
                        res = video.upscale_video(up, src, out, codec=args.codec, crf=args.crf, **kw)
                    else:
                        res = animated.upscale_animation(up, src, out, quality=args.quality, **kw)
                else:
                    res = up.upscale_file(
                        src,
                        functools.partial(plan.claim, src, dst),
                        overwrite=args.force,
                        max_pixels=max_pixels,
                        quality=args.quality,
                    )
            for w in caught:
                say(f"note: {w.message}")
            written += 1
            if not args.quiet:
                detail = res.summary() if kind else f"{res.width}x{res.height}, {res.bit_depth}-bit"
                tqdm.write(f"{src} -> {res.path} ({detail})", file=sys.stdout)
        except outputs.Skipped:
            skipped += 1
        except SrlabError as exc:
            failed += 1
            say(f"srlab upscale: {exc}")
        except MemoryError:
            failed += 1
            say(f"srlab upscale: {src}: out of memory; use a smaller --tile")
        except OSError as exc:  # anything the reader and writer did not already put in one line
            failed += 1
            say(f"srlab upscale: {src}: {exc.strerror or exc}; check the input, -o and free disk space")
        except RuntimeError as exc:  # e.g. CUDA out of memory
            failed += 1
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            oom = "out of memory" in text.lower()  # left after the retries with ever smaller tiles
            hint = "report this with the file"
            if oom:
                hint = "free device memory, or use --batch-size 1 or --device cpu"
            say(f"srlab upscale: {src}: failed ({text[:160]}); {hint}")
    bar.close()
    counts = [f"{written} written"] + [f"{n} {w}" for n, w in ((skipped, "skipped"), (failed, "failed")) if n]
    if failed or (skipped and not args.quiet):
        tail = " (outputs already there)" if skipped and not failed else ""
        say(f"srlab upscale: {', '.join(counts)}{tail}")
    return 1 if failed else 0
