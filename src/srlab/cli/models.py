"""``srlab models [PATTERN]``: list architectures and presets with their descriptors."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("models", help="list model architectures and presets")
    p.add_argument("pattern", nargs="?", default="*", help="glob over names (default: all)")
    p.set_defaults(func=run)


def run(args) -> int:
    from srlab.models.registry import ARCHS, PRESETS, build_model, list_models

    names = list_models(args.pattern)
    if not names:
        print(f"no model matches {args.pattern!r}")
        return 1
    print(f"{'name':28s} {'arch':18s} {'scale':>5s} {'ch':>3s} {'params':>12s}  description")
    for n in names:
        if n in ARCHS and n not in PRESETS:
            print(f"{n:28s} {'(architecture)':18s}")
            continue
        _, d = build_model(n, init_weights=False, device="meta")  # counts need no weights at all
        doc = PRESETS[n][2]
        print(f"{n:28s} {d.arch:18s} {d.scale:>5d} {d.in_channels:>3d} {d.params:>12,d}  {doc}")
    return 0
