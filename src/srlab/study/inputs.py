"""Stage 1, Inputs: everything a spec needs before any work -- training sets, the validation set, test roles
and pretrained weights. Nothing stops at the first missing input: :mod:`srlab.study.datasets` and
:mod:`srlab.study.samples` collect each one with where to get it, and the plan
(:func:`srlab.study.plan.plan_study`) says which of them stop the run."""

from __future__ import annotations

import dataclasses
import time

from srlab.study.datasets import missing_inputs, prepare_data_root
from srlab.study.records import Inputs, Setup
from srlab.study.samples import prepare_samples


def resolve_inputs(setup: Setup) -> Inputs:
    """The spec's inputs: from the spec's sample images when it has them and no data root is given, else
    from the data root; plus every pretrained reference whose weights are not here."""
    t0 = time.time()
    spec = setup.spec
    if setup.data_root is None and spec.data.samples is not None:
        found = prepare_samples(setup)
    else:
        found = prepare_data_root(setup, strict=False)
    have = {(m.get("kind"), m.get("name")) for m in found.missing_inputs}
    weights = [
        item
        for item in missing_inputs(spec, setup.data_root)
        if item.get("kind") == "weights" and ("weights", item.get("name")) not in have
    ]
    return dataclasses.replace(
        found, missing_inputs=found.missing_inputs + tuple(weights), seconds=time.time() - t0
    )
