"""``srlab models [PATTERN]``: every model name with its kind (trained / parameter-free / preset /
architecture / refused), backend (native / spandrel) and, for networks srlab builds, its descriptor."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("models", help="list model names: trained weights, presets and architectures")
    p.add_argument("pattern", nargs="?", default="*", help="glob over names (default: all)")
    p.add_argument(
        "--kind",
        action="append",
        choices=["trained", "parameter-free", "preset", "architecture", "refused"],
        help="only names of this kind (repeatable)",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from srlab.models.registry import PRESETS, build_model, family_of
    from srlab.weights.names import KINDS, catalog

    rows = catalog(args.pattern, kinds=tuple(args.kind or KINDS))
    if not rows:
        print(f"no model matches {args.pattern!r}")
        return 1
    head = f"{'name':30s} {'kind':14s} {'backend':8s} {'arch':18s} {'scale':>5s} {'ch':>3s} {'params':>12s}"
    print(f"{head}  description")
    for e in rows:
        lead = f"{e.name:30s} {e.kind:14s} {e.backend:8s}"
        rec = family_of(PRESETS[e.name][0]) if e.name in PRESETS else None
        if rec is not None and not rec.meta_build:  # upstream code: building it is not free, list it as is
            s = next((p.scale for p in rec.presets if p.name == e.name), 0)
            print(f"{lead} {rec.family:18s} {s:>5d} {'':>3s} {'':>12s}  {e.description}")
        elif e.name in PRESETS:
            _, d = build_model(e.name, init_weights=False, device="meta")  # counts need no weights at all
            print(f"{lead} {d.arch:18s} {d.scale:>5d} {d.in_channels:>3d} {d.params:>12,d}  {e.description}")
        else:
            where = f"[{e.source}] " if e.kind == "trained" else ""
            print(f"{lead} {e.family or '-':18s} {'':>5s} {'':>3s} {'':>12s}  {where}{e.description}")
    return 0
