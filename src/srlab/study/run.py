"""``reproduce()``: the stages in order, each a function of the records before it --
``Setup -> Inputs -> Plan`` (printed; ``plan_only`` stops there) ``-> Trained -> Scores -> Figures -> Report``
-- then ``OUT/reproduce.json``, which is those records written out."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from srlab.atomic import scratch_dir, write_json
from srlab.data.find import resolve_data_root
from srlab.errors import ConfigError, DataError
from srlab.report.html import write_report
from srlab.serialize import jsonable
from srlab.study.common import rel, shell
from srlab.study.datasets import resolve_root
from srlab.study.environment import environment
from srlab.study.evaluation import eval_command, eval_specs, score
from srlab.study.figures import make_figures
from srlab.study.inputs import resolve_inputs
from srlab.study.plan import plan_study
from srlab.study.preview import plan_lines
from srlab.study.records import Report, Setup, Study, to_json
from srlab.study.references import prepare_references
from srlab.study.report import build_report, timings
from srlab.study.runs import run_training
from srlab.study.spec import StudySpec, load_spec
from srlab.study.tables import study_tables, write_readme_assets, write_tables


def reproduce(
    spec: str | os.PathLike | StudySpec = "quick",
    *,
    data_root: str | os.PathLike | None = None,
    device: str = "auto",
    out: str | os.PathLike | None = None,
    budget: float | None = None,
    quick: bool = False,
    overrides: dict[str, Any] | list[str] | None = None,
    trained: dict[str, str] | None = None,
    plan_only: bool = False,
    progress: bool | None = None,
    command: str | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run a study spec (a bundled name, a YAML path or a :class:`StudySpec`); returns what it writes to
    ``OUT/reproduce.json`` (the stages' records). The plan is printed first; ``plan_only`` returns the records
    up to the plan (``plan.can_run``, ``plan.missing_inputs``, ...) without doing any work.

    ``data_root=None`` with a spec that has ``data.samples`` uses scikit-image's sample images (the
    environment variable is *not* consulted, so the default run is the same everywhere); other specs
    resolve it like every srlab command. ``overrides`` (``key.path=value``) change the spec before
    validation; ``trained`` (``{"srcnn": "srcnn-study-x2-recipe"}``) uses models srlab ships instead of
    training those (:func:`srlab.study.spec.use_trained`).
    """

    sp = spec if isinstance(spec, StudySpec) else load_spec(spec, overrides, trained)
    if isinstance(spec, StudySpec) and overrides:
        raise ConfigError("overrides apply to a spec name or file, not to a loaded StudySpec")
    if budget is not None and budget <= 0:
        raise ConfigError(f"--budget must be a positive number of minutes, not {budget}")
    root = resolve_root(data_root, sp)
    if root is None and sp.data.samples is None:
        root = resolve_data_root(None)
    setup = Setup(
        spec=sp,
        out=Path(out) if out else Path("reports") / sp.name,
        data_root=root,
        device=device or "auto",
        budget=budget,
        quick=quick,
        progress=sys.stderr.isatty() if progress is None else progress,
        base_threads=torch.get_num_threads(),
        log=log,
    )
    try:
        if plan_only:
            return plan_study_only(setup)
        return run_study(setup, command)
    finally:
        torch.set_num_threads(setup.base_threads)


def plan_study_only(setup: Setup) -> dict[str, Any]:
    """Print the plan and return its records; derived test folders go to a scratch copy of the report
    folder, so the plan writes nothing the run would keep."""
    with scratch_dir(prefix="srlab-plan-") as tmp:
        scratch = dataclasses.replace(setup, out=Path(tmp))
        inputs = resolve_inputs(scratch)
        plan = plan_study(scratch, inputs)
        for line in plan_lines(scratch, inputs, plan):
            setup.say(line)
        return {**_head(setup), "inputs": to_json(inputs), "plan": to_json(plan)}


def run_study(setup: Setup, command: str | None = None) -> dict[str, Any]:
    """Every stage, then ``OUT/report.md``, ``OUT/report.html`` and ``OUT/reproduce.json``."""
    t_all = time.time()
    setup.out.mkdir(parents=True, exist_ok=True)
    inputs = resolve_inputs(setup)
    plan = plan_study(setup, inputs)
    for line in plan_lines(setup, inputs, plan):
        setup.say(line)
    if not plan.can_run:
        raise DataError(
            f"study {setup.spec.name}: cannot run ({'; '.join(plan.blockers)}); the plan above lists where to "
            "get each missing input"
        )
    setup.say(
        "[data] roles: "
        + ", ".join(f"{r} ({v['n']} images)" for r, v in inputs.roles.items())
        + (f"; missing: {', '.join(m['role'] for m in inputs.missing)}" if inputs.missing else "")
    )
    trained = prepare_references(setup, run_training(setup, plan))
    study = Study(setup, inputs, plan, trained)
    study = dataclasses.replace(study, scores=score(study))
    study = dataclasses.replace(study, figures=make_figures(study))
    report = write_study_report(study, command or _default_command(setup), t_all)
    summary = {
        **_head(setup),
        "command": report.command,
        "inputs": to_json(inputs),
        "plan": to_json(plan),
        "trained": to_json(trained),
        "scores": to_json(study.scores),
        "figures": to_json(study.figures),
        "report": to_json(report),
        "timings": timings(study, report.wall_s),
        "environment": {**environment(), "torch_threads": setup.base_threads},
    }
    write_json(setup.out / "reproduce.json", summary)
    setup.say(f"[report] {rel(report.report_md)}, {rel(report.report_html)} ({report.wall_s / 60:.1f} min)")
    return summary


def write_study_report(study: Study, command: str, t_all: float) -> Report:
    """The tables (Markdown, CSV), the README assets and the report (Markdown, self-contained HTML)."""

    protocols = study.setup.protocols
    table_files = write_tables(study)
    readme = write_readme_assets(study)
    wall = time.time() - t_all
    doc = build_report(study, command, wall, environment())
    md, html = write_report(doc, study.setup.out)
    specs = eval_specs(study)
    return Report(
        command=command,
        tables={proto: study_tables(study, proto) for proto in protocols},
        eval_commands={proto: eval_command(study, proto, specs) for proto in protocols},
        table_files=table_files,
        readme=readme,
        report_md=str(md),
        report_html=str(html),
        wall_s=wall,
    )


def _head(setup: Setup) -> dict[str, Any]:
    spec = setup.spec
    return {
        "spec": {
            "name": spec.name,
            "file": str(spec.source) if spec.source else None,
            "deviations": [d.model_dump() for d in spec.deviations],
            "settings": jsonable(spec.model_dump()),
        },
        "setup": {**to_json(setup), "factor": setup.factor},
    }


def _default_command(setup: Setup) -> str:
    spec = setup.spec
    bundled = (
        spec.source is not None
        and spec.source.parent.name == "studies"
        and (spec.source.parent.parent.name == "configs")
    )
    parts = ["srlab reproduce", spec.name if bundled else shell(rel(spec.source or spec.name))]
    if setup.data_root is not None:
        parts.append(f"--data-root {rel(setup.data_root)}")
    if setup.budget:
        parts.append(f"--budget {setup.budget:g}")
    if setup.quick:
        parts.append("--quick")
    parts.append(f"--out {rel(setup.out)}")
    return " ".join(parts)
