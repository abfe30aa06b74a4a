"""``srlab reproduce SPEC``: a comparison study -- the SRCNN / ESRGAN study, or a user's own -- from one YAML
spec (:mod:`.spec`; bundled: ``configs/studies/{quick,study,papers}.yaml``) to tables, figures and a report.

The study is a pipeline of stages; each is a plain function of the records before it and returns a new,
frozen record (:mod:`.records`), and ``OUT/reproduce.json`` is those records written out:

``Setup`` (the spec and this invocation's options) ->
**Inputs** (:mod:`.inputs`, :mod:`.datasets`, :mod:`.samples`): the spec's test *roles* (catalogue sets under
the data root, or folders), training and validation sets and pretrained weights, everything missing with
where to get it; a spec with ``data.samples`` (quick) uses scikit-image's public-domain sample images ->
**Plan** (:mod:`.plan`; printed by :mod:`.preview`): every training run, a ``configs/`` recipe plus the
spec's overrides as data, once per protocol's degradation or once; ``--plan`` stops here (exit 0 when it
can run, 2 when not) ->
**Trained** (:mod:`.runs`, :mod:`.references`): :func:`srlab.train.train` per run (a finished run is
reused, an interrupted one resumes; run folders are named by a hash of the generated config), and the
pretrained references prepared as srlab checkpoints at the study's scale ->
**Scores** (:mod:`.evaluation`): :func:`srlab.eval.loop.evaluate` under each protocol on every model,
keeping the images the panels show as they were scored ->
**Figures** (:mod:`.figures`): panels, training curves, per-image PSNR distributions ->
**Report** (:mod:`.tables`, :mod:`.report`, :mod:`.run`): per protocol a PSNR and an SSIM table (published
numbers beside ours), the cross-protocol table, deviations, provenance, settings and environment:
``OUT/report.md``, a self-contained ``OUT/report.html`` and ``OUT/reproduce.json``.

``budget`` (minutes) scales every iteration count by ``budget / spec.nominal_minutes``.
"""

from __future__ import annotations

from srlab.study.datasets import prepare_data_root
from srlab.study.evaluation import score
from srlab.study.figures import make_figures
from srlab.study.inputs import resolve_inputs
from srlab.study.plan import build_config, config_hash, identity_init, plan_runs, plan_study
from srlab.study.records import (
    Figures,
    Inputs,
    Plan,
    Report,
    Run,
    Scores,
    Setup,
    Study,
    Trained,
)
from srlab.study.references import prepare_pretrained, prepare_references
from srlab.study.run import reproduce
from srlab.study.runs import run_training
from srlab.study.samples import prepare_samples
from srlab.study.spec import StudySpec, bundled_specs, load_spec

__all__ = [
    "Figures",
    "Inputs",
    "Plan",
    "Report",
    "Run",
    "Scores",
    "Setup",
    "Study",
    "StudySpec",
    "Trained",
    "build_config",
    "bundled_specs",
    "config_hash",
    "identity_init",
    "load_spec",
    "make_figures",
    "plan_runs",
    "plan_study",
    "prepare_data_root",
    "prepare_pretrained",
    "prepare_samples",
    "prepare_references",
    "reproduce",
    "resolve_inputs",
    "run_training",
    "score",
]
