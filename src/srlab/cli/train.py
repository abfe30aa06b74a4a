"""``srlab train CONFIG [key=value ...]``: train a model from a YAML recipe (see ``configs/``).

Multi-process (DDP): ``torchrun --nproc_per_node N -m srlab train CONFIG ...``.

One training per output folder: a second one into a folder in use is refused, naming the holder's pid.
"""

from __future__ import annotations

import argparse

EPILOG = """\
examples:
  srlab train srcnn_x2_paper --quick                      # a packaged recipe, short CPU budget
  srlab train swinir_light_x2_paper --plan                # the paper's recipe, each value with its source
  srlab train configs/esrgan_x2_study.yaml stages.gan.iterations=1000 runtime.amp=off
  srlab train my.yaml --resume auto                       # continue the run in runs/my
  srlab train my.yaml --resume auto --force-resume seed=1 # continue it with a changed config (recorded)
  torchrun --nproc_per_node 4 -m srlab train esrgan_x4_paper

overrides are dotted keys with YAML values; '*' matches every key of a mapping
(stages.*.batch_size=8). Unknown keys are errors that name the closest valid key.
"""


def _add_options(p) -> None:
    p.add_argument("--out", metavar="DIR", help="output folder (default: runs/<config name>)")
    p.add_argument(
        "--resume",
        metavar="auto|PATH",
        help="continue from a checkpoint: 'auto' = the latest in the output folder (fresh start if none)",
    )
    p.add_argument(
        "--force-resume",
        action="store_true",
        help="resume even though the seed, data or recipe differ from the checkpoint's (recorded in the run)",
    )
    p.add_argument("--device", help="auto (default), cpu, cuda or cuda:N (overrides runtime.device)")
    p.add_argument(
        "--data-root",
        metavar="DIR",
        help="folder holding the data sets (default: $SRLAB_DATA_ROOT, else the srlab cache's data/ folder)",
    )
    p.add_argument(
        "--quick", action="store_true", help="apply the config's quick: overrides (short CPU budget)"
    )
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument(
        "--plan",
        action="store_true",
        help="print the resolved recipe with the source of each value (paper, official options file, "
        "quick:, command line or srlab's default) and exit",
    )


def register(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a model from a YAML recipe (resumable, mixed precision, DDP)",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", help="config file, or the name of a packaged recipe (e.g. srcnn_x2_paper)")
    # REMAINDER so that options may follow the overrides; run() sorts them out.
    p.add_argument("overrides", nargs=argparse.REMAINDER, metavar="KEY=VALUE", help="dotted config overrides")
    _add_options(p)
    p.set_defaults(func=run, _train_parser=p)


def _split(args) -> None:
    """Options given after the overrides land in args.overrides: parse them into args."""
    rest = list(args.overrides or [])
    if not any(r.startswith("-") for r in rest):
        return
    if any(r in ("-h", "--help") for r in rest):
        args.help_after_config = True
        return
    p = argparse.ArgumentParser(prog="srlab train", add_help=False)
    p.add_argument("overrides", nargs="*")
    _add_options(p)
    ns = p.parse_intermixed_args(rest)
    for k, v in vars(ns).items():
        if k == "overrides":
            args.overrides = v
        elif v not in (None, False):
            setattr(args, k, v)


def run(args) -> int:
    from pathlib import Path

    from srlab.train.config import config_to_dict, load_config

    _split(args)
    if getattr(args, "help_after_config", False):
        return _config_help(args)
    if args.plan:
        from srlab.train.recipe_doc import format_plan, recipe_plan

        path, rows = recipe_plan(args.config, args.overrides, quick=args.quick)
        print(format_plan(path, rows))
        return 0
    cfg, _raw = load_config(args.config, args.overrides, quick=args.quick)
    if args.print_config:
        import yaml

        print(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), end="")
        return 0
    from srlab.train.trainer import Trainer

    out = Path(args.out) if args.out else Path("runs") / cfg.name
    trainer = Trainer(
        cfg,
        out_dir=out,
        data_root=args.data_root,
        resume=args.resume,
        device=args.device,
        force_resume=args.force_resume,
    )
    result = trainer.run()
    if trainer.is_main:
        for name, s in result.stages.items():
            best = s.get("best") or {}
            line = f"  {name}: {s.get('iterations', 0)} iterations"
            if best:
                line += f", best val PSNR {best.get('psnr'):.4f} dB @ {best.get('iteration')} ({best.get('protocol')})"
            if s.get("perceptual_weights") not in (None, "none"):
                line += f", perceptual weights: {s['perceptual_weights']}"
            print(line)
        if result.completed:
            print(f"model: {result.model_path}")
        else:
            print(f"stopped early; continue with: srlab train {args.config} ... --resume auto --out {out}")
    return 0


def _config_help(args) -> int:
    """``srlab train CONFIG --help``: the command's help, then what CONFIG is (when it can be read)."""
    from srlab.errors import SrlabError
    from srlab.train.config import find_config, load_config

    args._train_parser.print_help()
    try:
        path = find_config(args.config)
        cfg, _raw = load_config(path, [o for o in args.overrides or [] if not o.startswith("-")])
    except SrlabError as exc:
        print(f"\n{args.config}: {exc}")
        return 0
    stages = ", ".join(f"{n} ({st.kind}, {st.iterations:,} iterations)" for n, st in cfg.stages.items())
    print(f"\n{args.config} ({path}):\n  {cfg.description or cfg.name}\n  stages: {stages}")
    print(f"  `srlab train {args.config} --print-config` prints every key an override can set")
    print(f"  `srlab train {args.config} --plan` prints each value with its source")
    return 0
