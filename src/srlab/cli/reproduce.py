"""``srlab reproduce``: train what is missing, evaluate under both protocols, write report.md / report.html."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "reproduce",
        help="re-make the SRCNN / ESRGAN study end to end and write a report",
        description=(
            "Train SRCNN and ESRGAN (PSNR and GAN stages) on the study's and the standard degradation, "
            "evaluate them with bicubic/bilinear and a pretrained ESRGAN under both protocols on natural "
            "photos, faces and anime, and write OUT/report.md and a self-contained OUT/report.html. "
            "Re-running resumes: finished trainings are reused, interrupted ones continue."
        ),
    )
    p.add_argument(
        "--profile",
        choices=("quick", "study", "paper"),
        default="quick",
        help="quick (default): small models, ~10 min on a 2-core CPU, no download; study: the study's "
        "settings (GPU); paper: the SRCNN/ESRGAN papers' recipes at x2 (GPU, long)",
    )
    p.add_argument(
        "--data-root",
        default=None,
        help="folder with DIV2K_train_crop128 and the test sets; quick without it uses scikit-image's samples",
    )
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--out", default=None, help="report folder (default: reports/<profile>)")
    p.add_argument(
        "--budget",
        type=float,
        default=None,
        metavar="MINUTES",
        help="scale every iteration count by MINUTES / the profile's nominal time (quick: 8 min on 2 CPU cores)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args) -> int:
    import shlex
    import sys

    from srlab.study import reproduce

    command = "srlab " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if len(sys.argv) > 1 else None
    summary = reproduce(
        args.profile,
        data_root=args.data_root,
        device=args.device,
        out=args.out,
        budget=args.budget,
        progress=False if args.no_progress else None,
        command=command,
        log=lambda m: print(m, flush=True),
    )
    print(f"report: {summary['report_html']}")
    return 0
