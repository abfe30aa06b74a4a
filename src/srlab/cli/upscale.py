"""``srlab upscale INPUT... -o OUT``: upscale image files, folders and globs with a model.

Every good input is written to ``OUT/<stem><suffix>.<ext>`` (or to ``OUT`` itself when there is one
input and ``OUT`` names an image file). A bad input, or an output that cannot be written (full disk, no
permission), gets one line naming it and the reason, and the batch goes on. Inputs are never overwritten (not even with ``--force``); existing outputs only with ``--force``.
Exit status: 0 when every file was written, 1 when any failed, 2 for usage errors.
"""

from __future__ import annotations

import argparse

OUT_EXTS = ("png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff")
_ALPHA_OK = (".png", ".webp", ".tif", ".tiff", ".bmp")


def register(sub) -> None:
    p = sub.add_parser(
        "upscale",
        help="upscale images with a super-resolution model",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="image files, folders (their images) or glob patterns"
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
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"])
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    p.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "torch", "onnxruntime"],
        help="auto: ONNX Runtime on the CPU for SRCNN, SRVGG and RRDBNet (measured faster; exported once "
        "into the cache), else PyTorch",
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
    p.add_argument("--suffix", default=None, help="added to output names (default: _x<scale>)")
    p.add_argument(
        "--ext",
        default="same",
        choices=[*OUT_EXTS, "same"],
        help="output format (default: same as the input; PNG for other formats and for alpha in JPEG inputs)",
    )
    p.add_argument(
        "--max-pixels", type=float, default=200.0, metavar="MPX", help="refuse larger inputs (default 200)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    p.set_defaults(func=run)


def _has_magic(s: str) -> bool:
    return any(c in s for c in "*?[")


def expand_inputs(specs: list[str]) -> tuple[list, list[str]]:
    """(files, problems): folders give their image files (:func:`srlab.imaging.files.list_images`), globs
    their image matches, named files themselves; each problem is one line."""
    import glob
    from pathlib import Path

    from srlab.imaging.files import IMAGE_EXTENSIONS, is_image_file, list_images, natural_key

    files: list[Path] = []
    problems: list[str] = []
    seen: set = set()

    def add(p: Path) -> None:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            files.append(p)

    for spec in specs:
        p = Path(spec)
        if p.is_dir():
            found = list_images(p)
            if not found:
                problems.append(
                    f"{p}: folder has no image files ({', '.join(IMAGE_EXTENSIONS)}); check the path"
                )
            for q in found:
                add(q)
        elif p.exists() or p.is_symlink():
            add(p)  # named explicitly: read_image says what is wrong with it, if anything
        elif _has_magic(spec):
            matches = [Path(m) for m in glob.glob(spec, recursive=True)]
            images = sorted((m for m in matches if is_image_file(m)), key=natural_key)
            if not matches:
                problems.append(f"{spec}: no file matches this pattern; check it")
            elif not images:
                problems.append(f"{spec}: matches no image file ({', '.join(IMAGE_EXTENSIONS)}); check it")
            for m in images:
                add(m)
        else:
            problems.append(f"{p}: no such file or folder; check the path")
    return files, problems


def _fmt_scale(s: float) -> str:
    return str(int(s)) if float(s).is_integer() else f"{s:g}"


def plan_outputs(files, out: str, *, suffix: str, ext: str, has_alpha=None):
    """Output path per input: a folder ``out`` (``<stem><suffix>.<ext>``), or the file ``out`` for one input."""
    from pathlib import Path

    o = Path(out)
    as_file = (
        len(files) == 1
        and not o.is_dir()
        and not out.endswith(("/", "\\"))
        and o.suffix.lower().lstrip(".") in OUT_EXTS
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
        result.append(o / f"{f.stem}{suffix}.{e}")
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

    from srlab.errors import ConfigError, SrlabError

    if args.outscale is not None and not (args.outscale > 0 and math.isfinite(args.outscale)):
        raise ConfigError(f"--outscale must be a number > 0, not {args.outscale}")
    if not args.max_pixels > 0:
        raise ConfigError("--max-pixels must be > 0")
    if args.suffix is not None:
        check_suffix(args.suffix)

    files, problems = expand_inputs(args.inputs)
    if not files and not problems:
        raise ConfigError("no input files; pass image files, folders or glob patterns")

    from tqdm.auto import tqdm

    from srlab.imaging import io as imio
    from srlab.inference import DEFAULT_MODEL, Upscaler

    def say(line: str) -> None:
        tqdm.write(line, file=sys.stderr)

    for line in problems:
        say(line)
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
    suffix = args.suffix if args.suffix is not None else f"_x{_fmt_scale(scale)}"
    outs = plan_outputs(files, args.output, suffix=suffix, ext=args.ext)
    check_output(args.output, len(files), as_file=len(outs) == 1 and outs[0] == Path(args.output))
    if not args.quiet:
        say(f"srlab upscale: {len(files)} image(s) with {up.describe()}")

    input_keys = {os.path.realpath(f) for f in files}
    claimed: dict[str, Path] = {}
    failed = len(problems)
    written = 0
    max_pixels = int(args.max_pixels * 1e6)

    def output_for(src: Path, dst: Path, img) -> Path:
        """Where the decoded ``img`` of ``src`` goes (planned: ``dst``), or an ImageError saying why not."""
        if img.alpha is not None and args.ext == "same" and dst.suffix.lower() not in _ALPHA_OK:
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
        if dst.exists() and not args.force:
            raise imio.ImageError(f"{src}: output {dst} already exists; pass --force to replace it")
        return dst

    bar = tqdm(list(zip(files, outs)), desc="images", unit="img", disable=True if args.quiet else None)
    for src, dst in bar:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                res = up.upscale_file(
                    src,
                    functools.partial(output_for, src, dst),
                    outscale=args.outscale,
                    overwrite=args.force,
                    max_pixels=max_pixels,
                )
            for w in caught:
                say(f"note: {w.message}")
            written += 1
            if not args.quiet:
                tqdm.write(
                    f"{src} -> {res.path} ({res.width}x{res.height}, {res.bit_depth}-bit)", file=sys.stdout
                )
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
            hint = "use a smaller --tile" if "out of memory" in text.lower() else "report this with the file"
            say(f"srlab upscale: {src}: failed ({text[:160]}); {hint}")
    bar.close()
    if failed:
        say(f"srlab upscale: {written} written, {failed} failed")
        return 1
    return 0
