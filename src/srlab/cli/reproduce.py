"""``srlab reproduce [SPEC]``: print the plan, train what is missing, evaluate under the spec's protocols,
write report.md / report.html. ``--plan`` prints the plan only (exit 0: it can run, 2: it cannot)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "reproduce",
        help="run a study spec (the SRCNN / ESRGAN study, or your own comparison) and write a report",
        description=(
            "Run a study spec: train its models (once per protocol's degradation, or once), evaluate them with "
            "the interpolation baselines and pretrained references under its protocols on its test roles, and "
            "write OUT/report.md and a self-contained OUT/report.html. The plan (every run, every missing "
            "input with where to get it) is printed first. Re-running resumes: finished trainings are reused, "
            "interrupted ones continue."
        ),
    )
    p.add_argument(
        "spec",
        nargs="?",
        default=None,
        help="a bundled study -- quick (default; small models, minutes on a 2-core CPU, no download), study "
        "(the study's settings; GPU), papers (the SRCNN/ESRGAN papers' recipes at x2; GPU, long) -- or a path "
        "to a spec .yaml",
    )
    p.add_argument("--plan", action="store_true", help="print the plan and exit: 0 if it can run, 2 if not")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change one value of the spec (e.g. roles.natural.crop=256); repeatable",
    )
    p.add_argument(
        "--data-root",
        default=None,
        help="folder with the training and test sets; a spec with sample images (quick) uses them without it",
    )
    p.add_argument(
        "--use-trained",
        action="append",
        default=[],
        metavar="MODEL=NAME",
        help="use a model srlab ships instead of training that model of the spec, e.g. "
        "srcnn=srcnn-study-x2-recipe or srcnn=srcnn-study-improved-x2 (`srlab weights list`); repeatable",
    )
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--out", default=None, help="report folder (default: reports/<study name>)")
    p.add_argument(
        "--budget",
        type=float,
        default=None,
        metavar="MINUTES",
        help="scale every iteration count by MINUTES / the spec's nominal time (quick: 8 min on 2 CPU cores)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="a CPU demonstration of any spec: every recipe with its own quick: section (small networks, few "
        "iterations, as `srlab train --quick`), the spec's overrides on top",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args) -> int:
    import shlex
    import sys

    from srlab.study import reproduce

    spec = args.spec or "quick"
    command = "srlab " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if len(sys.argv) > 1 else None
    summary = reproduce(
        spec,
        data_root=args.data_root,
        device=args.device,
        out=args.out,
        budget=args.budget,
        quick=args.quick,
        overrides=args.overrides or None,
        trained=_trained(args.use_trained),
        plan_only=args.plan,
        progress=False if args.no_progress else None,
        command=command,
        log=lambda m: print(m, flush=True),
    )
    if args.plan:
        return 0 if summary["plan"]["can_run"] else 2
    print(f"report: {summary['report']['report_html']}")
    return 0


def _trained(items: list[str]) -> dict[str, str] | None:
    from srlab.errors import ConfigError

    out: dict[str, str] = {}
    for item in items:
        key, sep, name = item.partition("=")
        if not sep or not key.strip() or not name.strip():
            raise ConfigError(f"--use-trained {item!r}: write MODEL=NAME, e.g. srcnn=srcnn-study-x2-recipe")
        out[key.strip()] = name.strip()
    return out or None
