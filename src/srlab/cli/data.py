"""``srlab data list|fetch|prepare``: which known data sets are on disk, download those with a direct URL, make
the derived ones (the study's centre crops and FFHQ subset) from their originals."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("data", help="list known data sets (found/complete/missing) or fetch one")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION")
    common = dict(
        default=None,
        help="data root (default: $SRLAB_DATA_ROOT, else the srlab cache's data/ folder)",
    )
    lp = dsub.add_parser("list", help="show each known set: found/complete/missing and where to get it")
    lp.add_argument("--data-root", **common)
    lp.add_argument(
        "--set-path", action="append", default=[], metavar="NAME=DIR", help="use DIR for set NAME"
    )
    lp.add_argument("--json", action="store_true", help="print JSON instead of a table")
    fp = dsub.add_parser("fetch", help="download and extract a set that has a direct URL")
    fp.add_argument("name", help="set name, e.g. Set5 or DIV2K_valid_HR")
    fp.add_argument("--data-root", **common)
    fp.add_argument("--force", action="store_true", help="download again even if the set is complete")
    fp.add_argument("--keep-archive", action="store_true", help="keep the archive under DATA_ROOT/downloads")
    pp = dsub.add_parser(
        "prepare",
        help="make a derived set from its originals (DIV2K_train_crop128, DIV2K_valid_crop128/256, "
        "FFHQ_thumbnails128)",
    )
    pp.add_argument("names", nargs="+", metavar="NAME", help="derived set name(s), e.g. DIV2K_valid_crop128")
    pp.add_argument("--data-root", **common)
    pp.add_argument(
        "--source", default=None, help="the originals' folder (default: found under the data root)"
    )
    pp.add_argument("--out", default=None, help="output folder (default: DATA_ROOT/NAME)")
    pp.add_argument("--force", action="store_true", help="replace files already in the output folder")
    p.set_defaults(func=run, _parser=p)


def run(args) -> int:
    from srlab.data.catalog import DATASETS
    from srlab.data.fetch import fetch_dataset
    from srlab.data.find import dataset_status, parse_set_paths, resolve_data_root

    if args.data_command == "fetch":
        fetch_dataset(args.name, args.data_root, force=args.force, keep_archive=args.keep_archive)
        return 0
    if args.data_command == "prepare":
        from srlab.data.prepare import prepare

        if len(args.names) > 1 and (args.source or args.out):
            args._parser.error("--source/--out need a single NAME")
        for name in args.names:
            prepare(name, args.data_root, source=args.source, out=args.out, force=args.force)
        return 0
    if args.data_command != "list":
        args._parser.print_help()
        return 2
    root = resolve_data_root(args.data_root)
    rows = dataset_status(root, set_paths=parse_set_paths(args.set_path))
    if args.json:
        from srlab.serialize import dumps

        print(dumps({"data_root": str(root), "datasets": rows}))
        return 0
    print(f"data root: {root}")
    print(f"{'name':22s} {'role':5s} {'status':10s} {'images':>13s}  location / where to get it")
    for r in rows:
        exp = r["expected"]
        count = f"{r['found']}/{exp}" if exp is not None else str(r["found"])
        spec = DATASETS[r["name"]]
        if r["path"]:
            where = r["path"]
        elif spec.made_from:
            where = f"srlab data prepare {r['name']}  (from {spec.made_from})"
        elif r["download"]:
            where = f"srlab data fetch {r['name']}  ({DATASETS[r['name']].url})"
        else:
            where = f"get it from {r['url']}"
        print(f"{r['name']:22s} {r['role']:5s} {r['status']:10s} {count:>13s}  {where}")
    return 0
