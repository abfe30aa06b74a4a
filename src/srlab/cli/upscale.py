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

OUT_EXTS = ("png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff")
# single-file outputs of video and animated inputs (srlab.inference.video / .animated; not imported here)
MEDIA_EXTS = ("gif", "apng", "mp4", "m4v", "mkv", "mov", "webm", "avi")
_ALPHA_OK = (".png", ".webp", ".tif", ".tiff", ".bmp")


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
    p.add_argument("-s", "--outscale", type=float, default=None, help="final scale (default: the model's)")
    p.add_argument(
        "--tile",
        type=int,
        default=None,
        metavar="N",
        help="tile size in input pixels (0: no tiling; default: auto)",
    )
    p.add_argument(
        "--tile-overlap", type=int, default=None, metavar="P", help="context pixels added on each tile side"
    )
    p.add_argument(
        "--batch-size", type=int, default=None, metavar="B", help="tiles per device call (default: auto)"
    )
    p.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "fp16", "bf16", "int8"],
        help="auto: fp16 on a GPU; on the CPU bf16/int8 (OpenVINO) where the CPU has them and the model's "
        "recorded check keeps its output within 50 dB of fp32, else fp32. int8: CPU only",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    p.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "torch", "onnxruntime", "openvino"],
        help="auto: on the CPU OpenVINO for SRCNN, SRVGG and RRDBNet (else ONNX Runtime when only that is "
        "installed; measured faster, converted once into the cache); else PyTorch",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the model: slow first image (cached on disk for later runs), faster after",
    )
    p.add_argument(
        "--compile-mode",
        default=None,
        choices=["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"],
        help="torch.compile mode (implies --compile; reduce-overhead = CUDA graphs)",
    )
    p.add_argument(
        "--fuse",
        default="auto",
        choices=["auto", "on", "off"],
        help="RRDBNet dense blocks without concatenations (same function; auto: on for CUDA)",
    )
    p.add_argument(
        "--channels-last",
        default="auto",
        choices=["auto", "on", "off"],
        help="NHWC memory layout for the torch backend (auto: on; measured faster on CUDA and CPU)",
    )
    p.add_argument(
        "--alpha", default="bicubic", choices=["bicubic", "model"], help="how to upscale transparency"
    )
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


def expand_inputs(
    specs: list[str], *, recursive: bool = False, rels: dict | None = None, notes: list | None = None
) -> tuple[list, list[str]]:
    """(files, problems): folders give their image files (:func:`srlab.imaging.files.list_images`, sub-folders
    too with ``recursive``), globs their image matches, named files themselves; each problem is one line.

    ``rels`` (a dict) receives each file's path relative to its root (the folder, the glob's fixed folder,
    or just the name of a named file): where its output goes under ``-o``, and its shard key. ``notes``
    (a list) receives a line for each folder whose sub-folders were left out (no ``recursive``)."""
    from pathlib import Path

    from srlab.imaging.files import IMAGE_EXTENSIONS, glob_images, glob_root, has_magic, list_images

    files: list[Path] = []
    problems: list[str] = []
    seen: set = set()

    def add(p: Path, root: Path | None) -> None:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            files.append(p)
            if rels is not None:
                rels[p] = Path(p.name) if root is None else p.relative_to(root)

    for spec in specs:
        p = Path(spec)
        if p.is_dir():
            found = list_images(p, recursive=recursive)
            if not found:
                problems.append(
                    f"{p}: folder has no image files ({', '.join(IMAGE_EXTENSIONS)}); check the path"
                    + ("" if recursive else " (sub-folders need --recursive)")
                )
            elif notes is not None and not recursive:
                subs = [q for q in p.iterdir() if q.is_dir() and not q.name.startswith(".")]
                if subs:
                    notes.append(f"note: {p}: {len(subs)} sub-folder(s) left out; --recursive mirrors them")
            for q in found:
                add(q, p)
        elif p.exists() or p.is_symlink():
            add(p, None)  # named explicitly: read_image says what is wrong with it, if anything
        elif has_magic(spec):
            images, matched = glob_images(spec)
            if not matched:
                problems.append(f"{spec}: no file matches this pattern; check it")
            elif not images:
                problems.append(f"{spec}: matches no image file ({', '.join(IMAGE_EXTENSIONS)}); check it")
            root = glob_root(spec)
            for m in images:
                add(m, root)
        else:
            problems.append(f"{p}: no such file or folder; check the path")
    return files, problems


def _fmt_scale(s: float) -> str:
    return str(int(s)) if float(s).is_integer() else f"{s:g}"


def join_suffix(suffix: str) -> str:
    """Real-ESRGAN's rule: a suffix that starts with a letter or digit is joined with ``_`` (``out`` ->
    ``name_out``); one that starts otherwise (``_x4``, ``-sr``, ``.up``) is used as it is."""
    return f"_{suffix}" if suffix[:1].isalnum() else suffix


def plan_outputs(files, out: str, *, suffix: str, ext: str, has_alpha=None, rels: dict | None = None):
    """Output path per input: a folder ``out`` (``<rel folder>/<stem><suffix>.<ext>``, ``rels`` as
    :func:`expand_inputs` fills it), or the file ``out`` for one input."""
    from pathlib import Path

    o = Path(out)
    as_file = (
        len(files) == 1
        and not o.is_dir()
        and not out.endswith(("/", "\\"))
        and o.suffix.lower().lstrip(".") in OUT_EXTS + MEDIA_EXTS
    )
    if as_file:
        return [o]
    result = []
    for f in files:
        e = ext
        if e == "same":
            e = f.suffix.lower().lstrip(".")
            if e not in OUT_EXTS:
                e = "png"
        sub = rels[f].parent if rels and f in rels else Path()
        result.append(o / sub / f"{f.stem}{suffix}.{e}")
    return result


def check_suffix(suffix: str) -> None:
    """Refuse a ``--suffix`` that could leave the output folder (path separators, ``..``) or is not a name."""
    import os

    seps = {"/", "\\", os.sep, os.altsep} - {None}
    if any(c in suffix for c in seps) or ".." in suffix or "\0" in suffix:
        from srlab.errors import ConfigError

        raise ConfigError(
            f"--suffix {suffix!r} must not contain path separators or '..' (outputs stay inside -o); "
            "use a plain suffix such as _x2"
        )


def check_output(out: str, n_files: int, as_file: bool) -> None:
    """Refuse up front an ``-o`` that cannot be written: an existing file where a folder is needed, or a
    file among its parents (missing parents are fine: they are created)."""
    from pathlib import Path

    from srlab.errors import ConfigError

    o = Path(out)
    if not as_file and o.exists() and not o.is_dir():
        raise ConfigError(
            f"-o {out}: is an existing file, but {n_files} input(s) need an output folder; "
            "name a folder (new or existing) instead"
        )
    for parent in o.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"-o {out}: {parent} is a file, not a folder; choose another output path")
            break


def run(args) -> int:
    import functools
    import math
    import os
    import sys
    import warnings
    from pathlib import Path

    from srlab.cli import _realesrgan
    from srlab.errors import ConfigError, SrlabError
    from srlab.eval.shard import parse_shard

    def say(line: str) -> None:
        from tqdm.auto import tqdm

        tqdm.write(line, file=sys.stderr)

    _realesrgan.apply(args, say)
    shard = parse_shard(args.shard)
    if args.skip_existing and args.force:
        raise ConfigError("--skip-existing keeps existing outputs and --force replaces them; pass one")
    if args.crf is not None and not 0 <= args.crf <= 63:
        raise ConfigError(f"--crf must be 0..63 (lower is better; x264/x265 take 0..51), not {args.crf}")
    if not 1 <= args.quality <= 100:
        raise ConfigError(f"--quality must be 1..100, not {args.quality}")
    if args.outscale is not None and not (args.outscale > 0 and math.isfinite(args.outscale)):
        raise ConfigError(f"--outscale must be a number > 0, not {args.outscale}")
    if not args.max_pixels > 0:
        raise ConfigError("--max-pixels must be > 0")
    if args.suffix is not None:
        check_suffix(args.suffix)

    rels: dict = {}
    notes: list[str] = []
    files, problems = expand_inputs(args.inputs, recursive=args.recursive, rels=rels, notes=notes)
    if not files and not problems:
        raise ConfigError("no input files; pass image files, folders or glob patterns")

    from tqdm.auto import tqdm

    from srlab.imaging import io as imio
    from srlab.inference import DEFAULT_MODEL, Upscaler, animated, video

    files, notes = _outside_output(files, rels, args.output, notes)
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

    model = args.model or DEFAULT_MODEL
    up = Upscaler(
        model,
        tile=args.tile,
        tile_overlap=args.tile_overlap,
        precision=args.precision,
        device=args.device,
        batch_size=args.batch_size,
        alpha=args.alpha,
        backend=args.backend,
        compile=args.compile_mode or args.compile,
        fuse={"auto": None, "on": True, "off": False}[args.fuse],
        channels_last={"auto": None, "on": True, "off": False}[args.channels_last],
        progress=not args.quiet,
    )
    scale = args.outscale if args.outscale is not None else up.scale
    suffix = join_suffix(args.suffix) if args.suffix is not None else f"_x{_fmt_scale(scale)}"
    outs = plan_outputs(files, args.output, suffix=suffix, ext=args.ext, rels=rels)
    single_file = len(outs) == 1 and outs[0] == Path(args.output)
    check_output(args.output, len(files), as_file=single_file)
    if not args.quiet:
        say(f"srlab upscale: {len(files)} image(s) with {up.describe()}")

    input_keys = {os.path.realpath(f) for f in every_input}
    claimed: dict[str, Path] = {}
    failed = len(problems)
    written = skipped = 0
    max_pixels = int(args.max_pixels * 1e6)

    def output_for(src: Path, dst: Path, img) -> Path:
        """Where the decoded ``img`` of ``src`` goes (planned: ``dst``), or an ImageError saying why not."""
        alpha = img is not None and img.alpha is not None  # img None: a video or animation (own formats)
        if alpha and args.ext == "same" and dst.suffix.lower() not in _ALPHA_OK:
            if dst.parent != Path(args.output) or Path(args.output).is_dir() or len(outs) > 1:
                dst = dst.with_suffix(".png")  # keep the transparency (folder outputs only)
        key = os.path.realpath(dst)
        if key in input_keys:
            raise imio.ImageError(
                f"{src}: its output {dst} would overwrite an input; use --suffix or another -o"
            )
        if key in claimed:
            raise imio.ImageError(
                f"{src}: output {dst} is also the output of {claimed[key]}; rename one or use separate -o folders"
            )
        claimed[key] = src
        if dst.exists() and args.skip_existing:
            raise _Skipped(dst)
        if dst.exists() and not args.force:
            raise imio.ImageError(
                f"{src}: output {dst} already exists; pass --skip-existing to keep it or --force to replace it"
            )
        return dst

    bar = tqdm(list(zip(files, outs)), desc="images", unit="img", disable=True if args.quiet else None)
    for src, dst in bar:
        key = os.path.realpath(dst)
        if args.skip_existing and dst.exists() and key not in input_keys and key not in claimed:
            claimed[key] = src  # a second input with this output is still reported as a clash
            skipped += 1  # resumed: decided before decoding, so a finished folder costs no decoding
            continue
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                kind = "video" if video.is_video(src) else "animation" if animated.is_animated(src) else None
                if kind is not None:  # every frame, not the first one only
                    out = output_for(src, media_output(kind, src, dst, args.ext, single_file), None)
                    kw = dict(outscale=args.outscale, overwrite=args.force, max_pixels=max_pixels)
                    kw.update(progress=not args.quiet)
                    if kind == "video":
                        res = video.upscale_video(up, src, out, codec=args.codec, crf=args.crf, **kw)
                    else:
                        res = animated.upscale_animation(up, src, out, quality=args.quality, **kw)
                else:
                    res = up.upscale_file(
                        src,
                        functools.partial(output_for, src, dst),
                        outscale=args.outscale,
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
        except _Skipped:
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


def _outside_output(files, rels, out: str, notes: list[str]):
    """Leave out the files inside ``-o`` when ``-o`` lies below the folder they were listed from (``photos -o
    photos/big -r``): a rerun would otherwise take the last run's outputs as inputs."""
    import os

    o = os.path.realpath(out)
    keep, dropped = [], 0
    for f in files:
        root = f.parents[len(rels[f].parts) - 1] if f in rels else f.parent
        inside = os.path.realpath(f).startswith(o + os.sep) and os.path.realpath(root) != o
        dropped += inside
        if not inside:
            keep.append(f)
    if dropped:
        notes = [*notes, f"note: {dropped} file(s) inside -o {out} left out (outputs of an earlier run)"]
    return keep, notes


def media_output(kind: str, src, dst, ext: str, single_file: bool):
    """Where a video or animated ``src`` goes: ``-o`` itself when it names the one output file, else the
    planned ``dst`` in the input's own format (a video keeps its container; an animation its format unless
    ``--ext`` names another, which upscale_animation refuses when it cannot animate)."""
    if single_file or (kind == "animation" and ext not in ("same", "auto")):
        return dst
    suffix = src.suffix.lower()
    return dst.with_suffix(".png" if suffix == ".apng" else suffix)


class _Skipped(Exception):
    """An output that ``--skip-existing`` keeps (found once the input is decoded and its name is final)."""
