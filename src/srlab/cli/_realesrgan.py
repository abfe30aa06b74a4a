"""Real-ESRGAN's ``inference_realesrgan.py`` flags on ``srlab upscale``, so its users' scripts run.

:func:`add_flags` declares them; :func:`apply` turns them into srlab's options before anything runs.
README's "Real-ESRGAN's flags" table is the reference. ``-n`` marks a Real-ESRGAN command line: the
defaults that decide output *names and sizes* are then Real-ESRGAN's (``--suffix out``, ``-s 4``), so
scripts find their files where they expect them; the choices that only change pixels stay srlab's
(blended tiles sized from the memory, transparency upscaled with bicubic), and srlab's safety rules
hold whatever the flags say: inputs are never overwritten, existing outputs only with ``--force``.
"""

from __future__ import annotations

import argparse

_ALPHA = {"realesrgan": "model", "bicubic": "bicubic"}


def add_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("Real-ESRGAN compatible flags (inference_realesrgan.py)")
    g.add_argument(
        "-i",
        "--input",
        dest="input_opt",
        action="append",
        default=[],
        metavar="PATH",
        help="input (as INPUT)",
    )
    g.add_argument(
        "-n",
        "--model_name",
        dest="model_name",
        default=None,
        metavar="NAME",
        help="a Real-ESRGAN model name (RealESRGAN_x4plus, realesr-animevideov3, ...; fetched when missing); "
        "implies Real-ESRGAN's defaults --suffix out and -s 4",
    )
    g.add_argument("--model_path", default=None, metavar="PATH", help="weights file (as -m PATH)")
    g.add_argument(
        "--tile_pad",
        dest="tile_overlap",
        type=int,
        default=argparse.SUPPRESS,
        metavar="P",
        help="as --tile-overlap",
    )
    g.add_argument("-t", dest="tile", type=int, default=argparse.SUPPRESS, metavar="N", help="as --tile")
    g.add_argument("--fp32", action="store_true", help="full precision (as --precision fp32)")
    g.add_argument(
        "-g", "--gpu-id", dest="gpu_id", type=int, default=None, metavar="N", help="as --device cuda:N"
    )
    g.add_argument(
        "--alpha_upsampler",
        choices=list(_ALPHA),
        default=None,
        help="realesrgan: as --alpha model; bicubic: as --alpha bicubic (srlab's default)",
    )
    g.add_argument(
        "--pre_pad", type=int, default=0, metavar="P", help="accepted; srlab pads image borders by reflection"
    )
    g.add_argument(
        "-dn",
        "--denoise_strength",
        "--denoise-strength",
        type=float,
        default=None,
        help="with -n realesr-general-x4v3: denoise strength 0..1 (Real-ESRGAN's default 0.5; blends in "
        "realesr-general-wdn-x4v3 below 1)",
    )
    g.add_argument("--face_enhance", action="store_true", help=argparse.SUPPRESS)


def apply(args: argparse.Namespace, say) -> None:
    """Fold the Real-ESRGAN flags into srlab's (``args`` is changed in place); ConfigError on conflicts."""
    from srlab.errors import ConfigError

    args.inputs = [*args.inputs, *args.input_opt]
    if not args.inputs:
        raise ConfigError("no input given; pass INPUT... or -i/--input PATH")
    if args.face_enhance:
        raise ConfigError("--face_enhance (GFPGAN) is not part of srlab; drop the flag")
    named = [
        f for f, v in (("-m", args.model), ("-n", args.model_name), ("--model_path", args.model_path)) if v
    ]
    if len(named) > 1:
        raise ConfigError(f"{' and '.join(named)} both name the model; pass only one")
    if args.model_path:
        args.model = args.model_path
    if args.model_name:
        from srlab.inference.realesrgan import resolve_realesrgan_name

        quiet = args.quiet
        if args.model_name == "realesr-general-x4v3":
            from srlab.inference.realesrgan import DENOISE_DEFAULT, denoised_general

            dn = DENOISE_DEFAULT if args.denoise_strength is None else args.denoise_strength
            args.model = denoised_general(dn, progress=not quiet, say=None if quiet else say)
        else:
            args.model = resolve_realesrgan_name(
                args.model_name, progress=not quiet, say=None if quiet else say
            )
        from srlab.inference.outputs import REALESRGAN_DEFAULTS

        for name, value in REALESRGAN_DEFAULTS.items():
            if getattr(args, name) is None:
                setattr(args, name, value)
    if args.denoise_strength is not None and args.model_name != "realesr-general-x4v3":
        say("note: -dn/--denoise_strength is used by realesr-general-x4v3 only; ignored")
    if args.pre_pad:
        say("note: --pre_pad is not needed: srlab pads image borders by reflection and crops them")
    if args.fp32:
        if args.precision not in ("auto", "fp32"):
            raise ConfigError(f"--fp32 and --precision {args.precision} disagree; pass one")
        args.precision = "fp32"
    if args.gpu_id is not None:
        if args.device != "auto":
            raise ConfigError(f"-g/--gpu-id and --device {args.device} both name the device; pass one")
        if args.gpu_id < 0:
            raise ConfigError(f"-g/--gpu-id must be >= 0, not {args.gpu_id}")
        args.device = f"cuda:{args.gpu_id}"
    if args.alpha_upsampler is not None:
        args.alpha = _ALPHA[args.alpha_upsampler]
    if args.ext == "auto":
        args.ext = "same"
