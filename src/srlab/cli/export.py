"""``srlab export MODEL --format onnx -o OUT``: export a model (name or path) for other runtimes."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("export", help="export a model to ONNX (dynamic height/width)")
    p.add_argument("model", help="model name or weights path (anything `srlab upscale --model` takes)")
    p.add_argument("--format", choices=["onnx"], default="onnx")
    p.add_argument("-o", "--output", required=True, help="output .onnx path")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.add_argument("--check", action="store_true", help="compare ONNX Runtime with PyTorch on a random input")
    p.set_defaults(func=run)


def check_output(out) -> None:
    """Refuse, before any work, an ``-o`` that is a folder or lies under a file."""
    from srlab.errors import ConfigError

    if out.is_dir():
        raise ConfigError(
            f"-o {out}: is a folder, not a file (even with --force); name the file, e.g. {out / 'model.onnx'}"
        )
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"-o {out}: {parent} is a file, not a folder; choose another output path")
            break


def run(args) -> int:
    from pathlib import Path

    import torch

    from srlab.errors import ConfigError, SrlabError
    from srlab.export import OnnxModel, export_onnx
    from srlab.inference.resolve import canonical_name
    from srlab.weights.loader import load_model

    out = Path(args.output)
    check_output(out)
    if out.exists() and not args.force:
        raise SrlabError(f"{out} exists; pass --force to overwrite it")
    model, desc = load_model(canonical_name(args.model))  # Real-ESRGAN's names too, as upscale takes them
    try:
        export_onnx(model, out, descriptor=desc, opset=args.opset)
    except OSError as exc:  # full disk, no permission, ...: one line, not a traceback
        raise ConfigError(
            f"-o {out}: cannot write ({exc.strerror or type(exc).__name__}); "
            "free disk space, check the folder's permissions or choose another path"
        ) from None
    print(
        f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB): {desc.arch} x{desc.scale}, dynamic batch/height/width"
    )
    if args.check:
        m = desc.size_multiple
        x = torch.rand(1, desc.in_channels, 24 * m, 40 * m)
        with torch.no_grad():
            ref = model(x)
        got = OnnxModel(out)(x)
        print(
            f"max |onnxruntime - pytorch| = {(got - ref).abs().max().item():.3g} on a {tuple(x.shape)} input"
        )
    return 0
