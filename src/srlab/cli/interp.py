"""``srlab interp A B --alpha 0.8 -o C``: blend two checkpoints of one architecture.

C = (1 - alpha) A + alpha B, parameter by parameter (ESRGAN's network interpolation: A the PSNR-oriented
network, B the GAN one). ``--denoise-strength S`` instead writes Real-ESRGAN's realesr-general-x4v3 at
denoise strength S (0: its weak-denoise companion, 1: itself); no A and B then. The output is an srlab
safetensors file recording the inputs and alpha; `srlab upscale -m C` and `srlab eval` take it.
"""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "interp",
        help="interpolate two checkpoints of one architecture (ESRGAN network interpolation)",
        description=__doc__,
    )
    p.add_argument("a", nargs="?", metavar="A", help="checkpoint at alpha 0 (file, zoo name, hf:// or URL)")
    p.add_argument("b", nargs="?", metavar="B", help="checkpoint at alpha 1")
    p.add_argument("--alpha", type=float, default=None, help="weight of B, from 0 (A) to 1 (B)")
    p.add_argument(
        "--denoise-strength",
        type=float,
        default=None,
        metavar="S",
        help="realesr-general-x4v3 at denoise strength S in [0, 1] (instead of A, B and --alpha)",
    )
    p.add_argument("-o", "--output", required=True, help="output .safetensors path")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.add_argument(
        "--scale", type=int, default=None, help="the scale of checkpoints that do not record it (SRCNN)"
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from srlab.errors import ConfigError

    out = Path(args.output)
    if out.is_dir():
        raise ConfigError(f"-o {out}: is a folder; name the output file, e.g. {out / 'interp.safetensors'}")
    if out.exists() and not args.force:
        raise ConfigError(f"{out}: exists; pass --force to overwrite it")
    if args.denoise_strength is not None:
        if args.a or args.b or args.alpha is not None:
            raise ConfigError(
                "--denoise-strength takes no A, B or --alpha (it blends the realesr-general-x4v3 pair)"
            )
        from srlab.weights.interp import DENOISE_PAIR, denoise_model
        from srlab.weights.io import save_model

        model, desc = denoise_model(args.denoise_strength)
        inputs = {"a": DENOISE_PAIR[0], "b": DENOISE_PAIR[1], "alpha": float(args.denoise_strength)}
        save_model(
            out, model, metadata={"interpolation": inputs, "denoise_strength": float(args.denoise_strength)}
        )
        print(
            f"wrote {out}: {desc.arch} x{desc.scale}, realesr-general-x4v3 at denoise strength {args.denoise_strength:g}"
        )
        return 0
    if not (args.a and args.b) or args.alpha is None:
        raise ConfigError(
            "give two checkpoints and --alpha (srlab interp A B --alpha 0.8 -o C), or --denoise-strength"
        )
    for given in (args.a, args.b):
        src = Path(given)
        if src.exists() and src.resolve() == out.resolve():
            raise ConfigError(f"-o {out}: is an input; choose another output")
    from srlab.weights.interp import save_interpolated
    from srlab.weights.loader import load_model

    if args.scale is not None:  # checkpoints that do not record their scale (SRCNN)
        a, b = (load_model(x, scale=args.scale) for x in (args.a, args.b))
        record = {"interpolation": {"a": args.a, "b": args.b, "alpha": float(args.alpha)}}
        save_interpolated(a, b, args.alpha, out, metadata=record)
    else:
        save_interpolated(args.a, args.b, args.alpha, out)
    _, desc = load_model(out)  # what was written loads back: the same architecture, the blended tensors
    print(
        f"wrote {out}: {desc.arch} x{desc.scale}, {desc.params:,} parameters, (1 - {args.alpha:g}) A + {args.alpha:g} B"
    )
    return 0
