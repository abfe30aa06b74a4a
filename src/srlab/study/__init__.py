"""``srlab reproduce SPEC``: a comparison study -- the SRCNN / ESRGAN study, or a user's own -- from one YAML
spec (:mod:`.spec`; bundled: ``configs/studies/{quick,study,papers}.yaml``) to tables, figures and a report.

Pipeline (every step goes through the library's own modules, so each number can be re-made by hand):

1. **Inputs** (:mod:`.inputs`, :mod:`.datasets`, :mod:`.samples`) -- the spec's test *roles* (catalogue sets
   under the data root, or folders), training and validation sets and pretrained weights are looked up;
   everything missing is collected with where to get it. A spec with ``data.samples`` (quick) uses
   scikit-image's public-domain sample images without a data root.
2. **Plan** (:mod:`.plan`, :mod:`.preview`) -- every training run (a ``configs/`` recipe plus the spec's
   overrides, once per protocol's degradation or once), printed with its network, losses and weights,
   iterations, batch, data, degradation, protocol and rows, with the missing inputs; ``--plan`` stops here
   (exit 0 when it can run, 2 when not).
3. **Training** (:mod:`.runs`) -- :func:`srlab.train.train`; a finished run is reused, an interrupted one
   resumes (``resume='auto'``); run folders are named by a hash of the generated config.
4. **References** -- pretrained models: a weights file at the study's scale as it is, zoo models through
   :func:`~srlab.study.runs.prepare_pretrained` (run at their scale, resized the spec's way, saved as one
   srlab checkpoint so ``srlab eval`` runs it the same way).
5. **Evaluation** (:mod:`.evaluation`) -- :func:`srlab.eval.loop.evaluate` under each protocol on every model.
6. **Report** (:mod:`.figures`, :mod:`.tables`, :mod:`.report`) -- per protocol a PSNR and an SSIM table
   (rows naming the weights they used, published numbers beside ours), the cross-protocol table, the
   deviations from the study, panels, curves, distributions, settings and environment: ``OUT/report.md``,
   a self-contained ``OUT/report.html`` and ``OUT/reproduce.json``.

``budget`` (minutes) scales every iteration count by ``budget / spec.nominal_minutes``.
"""

from __future__ import annotations

from srlab.study.context import Context, RunSpec
from srlab.study.datasets import prepare_data_root
from srlab.study.plan import build_config, config_hash, identity_init, plan_runs
from srlab.study.run import reproduce
from srlab.study.runs import prepare_pretrained, run_training
from srlab.study.samples import prepare_quick_samples
from srlab.study.spec import StudySpec, bundled_specs, load_spec

__all__ = [
    "Context",
    "RunSpec",
    "StudySpec",
    "build_config",
    "bundled_specs",
    "config_hash",
    "identity_init",
    "load_spec",
    "plan_runs",
    "prepare_data_root",
    "prepare_pretrained",
    "prepare_quick_samples",
    "reproduce",
    "run_training",
]
