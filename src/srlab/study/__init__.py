"""``srlab reproduce``: the study (SRCNN and ESRGAN at x2 on natural photos, faces and anime, compared with a
pretrained ESRGAN by PSNR/SSIM, its Tables 1-2 and Figures 4-6) in one command, on whatever data is here.

Pipeline (every step goes through the library's own modules, so each number can be re-made by hand):

1. **Data** (:mod:`.samples`, :mod:`.datasets`) -- the test *roles* (natural, faces, anime) are looked up
   under the data root in srlab's data-set catalogue; a role that is missing is listed in the report with
   where to get it. The ``quick`` profile without a data root uses public-domain sample images shipped in
   scikit-image (``skimage/data``): training crops come from some of them, the natural test role from
   128x128 crops of others. Derived test folders (crops, subsets) are written under ``OUT/data/``.
2. **Training** (:mod:`.plan`, :mod:`.runs`) -- for each protocol (``study``: the study's bilinear
   degradation; ``standard``: MATLAB bicubic), SRCNN and ESRGAN (PSNR-oriented stage and GAN stage) are
   trained with :func:`srlab.train.train` from the recipes in ``configs/`` (plus the profile's overrides).
   A run whose final model exists is skipped; an interrupted one resumes (``resume='auto'``). Finished
   generators are copied to ``OUT/models/<label>.safetensors``.
3. **Pretrained** (:mod:`.runs`) -- the official ``RRDB_ESRGAN_x4`` when it is in the weight cache, else
   Real-ESRGAN ``realesrgan-x4plus`` from the ncnn package; on the x2 task it runs at x4 and the result is
   resized to x2 with MATLAB bicubic (``imresize``), saved as an srlab checkpoint (``ResizedOutput``, method
   ``matlab``) so ``srlab eval`` runs it the same way.
4. **Evaluation** (:mod:`.evaluation`) -- :func:`srlab.evaluate.evaluate` under both protocols on every
   saved model (interpolation baselines included); results are written with
   :func:`srlab.report.tables.write_results`.
5. **Report** (:mod:`.figures`, :mod:`.tables`, :mod:`.report`) -- the study's Table 1 (PSNR) and Table 2
   (SSIM) for each protocol with the study's published numbers beside ours, the cross-protocol scores,
   panels with zoomed insets, training curves, per-image distributions, settings, versions, hardware and
   wall time: ``OUT/report.md`` and a self-contained ``OUT/report.html``; ``OUT/reproduce.json`` holds the
   same numbers for programs.

Profiles (:data:`PROFILES`): ``quick`` (default; no download, small models, sized for a small CPU),
``study`` (the study's settings, ``configs/*_study.yaml``; needs DIV2K_train_crop128 and the test sets; a
GPU makes it practical) and ``paper`` (the SRCNN and ESRGAN papers' recipes at x2). ``budget`` (minutes)
scales every iteration count by ``budget / profile.nominal_minutes``.

Protocol constants, profiles and :class:`Context` live in :mod:`.context`; :func:`reproduce` (:mod:`.run`)
runs the steps in order.
"""

from __future__ import annotations

from srlab.study.context import PROFILES, PUBLISHED, ROLES, Context, Profile, QuickSettings, RunSpec
from srlab.study.datasets import prepare_data_root
from srlab.study.plan import build_config, config_hash, identity_init, plan_runs
from srlab.study.run import reproduce
from srlab.study.runs import prepare_pretrained, run_training
from srlab.study.samples import prepare_quick_samples

__all__ = [
    "PROFILES",
    "PUBLISHED",
    "ROLES",
    "Context",
    "Profile",
    "QuickSettings",
    "RunSpec",
    "build_config",
    "config_hash",
    "identity_init",
    "plan_runs",
    "prepare_data_root",
    "prepare_pretrained",
    "prepare_quick_samples",
    "reproduce",
    "run_training",
]
