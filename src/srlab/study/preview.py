"""The plan of a study, printed before any work (``srlab reproduce SPEC --plan`` prints only this): every
training run (network, losses and weights, iterations, batch, data, degradation, protocol, the rows it
makes), the models that are not trained, the test roles, the deviations and every missing input with where
to get it."""

from __future__ import annotations

from srlab.eval.protocols import get_protocol
from srlab.models.registry import resolve
from srlab.study.common import rel
from srlab.study.plan import build_config
from srlab.study.records import Inputs, Plan, Run, Setup


def _network(cfg) -> str:
    name = cfg.model.name
    try:
        arch, hp = resolve(name, **cfg.model.hparams)
    except Exception:  # an unknown name: the trainer says so in one line; the plan still shows the rest
        return f"{name} (unknown to this srlab)"
    shown = ", ".join(f"{k}={v}" for k, v in hp.items())
    return f"{name}" + (f" (arch {arch}: {shown})" if arch != name or shown else "")


def _optim(o) -> str:
    betas = f", betas ({o.betas[0]:g}, {o.betas[1]:g})" if o.type != "sgd" else ""
    return f"{o.type.capitalize() if o.type != 'adamw' else 'AdamW'} lr {o.lr:g}{betas}"


def vgg_text(pw: str | None) -> str:
    """Which VGG19 weights a perceptual loss uses, as the rows print it."""
    if pw in (None, "", "auto"):
        return "ImageNet"
    if pw == "random":
        return "random"
    return str(pw)


def loss_text(st) -> str:
    """A training stage's loss as a weighted sum, e.g. ``1·l1 + 1·VGG19[pool3] l1 (no normalisation)``."""
    L = st.losses
    parts = []
    if L.pixel != "none":
        parts.append(f"{L.pixel_weight:g}·{L.pixel}")
    if L.perceptual != "none":
        layers = ",".join(L.perceptual_layers)
        parts.append(
            f"{L.perceptual_weight:g}·VGG19[{layers}] {L.perceptual_criterion}"
            f" ({'ImageNet-normalised' if L.perceptual_normalize else 'no normalisation'})"
        )
    if L.gan != "none":
        parts.append(f"{L.gan_weight:g}·{L.gan}")
    return " + ".join(parts)


def stage_lines(cfg, stage: str) -> list[str]:
    st = cfg.stages[stage]
    head = (
        f"stage {stage} ({st.kind}): {st.iterations:,} iterations x batch {st.batch_size}, {_optim(st.optim)}"
    )
    lines = [head, f"  loss: {loss_text(st)}"]
    if st.losses.perceptual != "none":
        lines[-1] += f"; VGG19 weights: {vgg_text(st.losses.perceptual_weights)}"
    if st.kind == "gan":
        order = "D updated before G" if getattr(st, "d_first", False) else "G updated before D"
        lines.append(
            f"  discriminator: {st.discriminator.name}, {_optim(st.optim_d)}; {order} each iteration"
        )
    keep = getattr(st, "keep", "last")
    lines.append(
        f"  exports: the {'last weights' if keep == 'last' else 'weights with the lowest training loss'}"
    )
    if st.init:
        lines.append(f"  starts from: {st.init}")
    return lines


def run_lines(setup: Setup, inputs: Inputs, run: Run) -> list[str]:
    cfg, _raw = build_config(run, False)
    m = setup.spec.models[run.model]
    rows = ", ".join(f"{st} -> {setup.spec.row_title(row)!r}" for st, row in run.outputs.items())
    ts = inputs.train_sets.get(run.train_set)
    data = (
        f"{run.train_set} ({rel(ts['path'])}"
        + (f", {ts['images']} images" if isinstance(ts.get("images"), int) else "")
        + ")"
        if ts
        else f"{run.train_set} -- MISSING"
    )
    d = cfg.data
    lines = [
        f"{run.key}: recipe {run.recipe} (models.{run.model}); rows: {rows}",
        f"  network: {_network(cfg)}; init: {'interpolator' if run.identity_init else 'random'}",
        f"  data: {data}; {d.mode} {d.crop}x{d.crop} HR"
        + (", flips/rotations" if d.flip or d.rot90 else "")
        + f"; degradation {d.degradation} ({get_protocol(run.protocol).describe()['degradation']})"
        + f", LR {'rounded to uint8' if d.quantize_lr else 'float'}",
        f"  protocol: {run.protocol}; validation: "
        + (f"{rel(cfg.val.set)} every {cfg.val.every:,}" if cfg.val.set else "none"),
    ]
    for stage in cfg.stages:
        lines += ["  " + x for x in stage_lines(cfg, stage)]
    lines += [f"  note: {n}" for n in m.notes]
    return lines


def reference_text(ref) -> str:
    inp = "the LR saved as an 8-bit PNG" if ref.input == "png8" else "the float LR"
    out = ", its output rounded to 8 bits" if ref.output == "png8" else ""
    resize = {
        "none": "used at its own scale",
        "matlab": "resized to the study's scale with MATLAB bicubic (imresize)",
        "study": "resized to the study's scale with the study's bilinear resize",
    }[ref.resize]
    fb = f" (else {', '.join(ref.fallback)})" if ref.fallback else ""
    return f"{ref.weights}{fb}: run on {inp}{out}, {resize}"


def plan_lines(setup: Setup, inputs: Inputs, plan: Plan) -> list[str]:
    spec = setup.spec
    runs = plan.runs
    src = f" ({rel(spec.source)})" if spec.source else ""
    lines = [
        f"[plan] study {spec.name!r}{src}: x{spec.scale}, protocols {', '.join(spec.protocols)}; "
        f"data root {rel(setup.data_root) if setup.data_root else '(none: scikit-image samples)'}",
    ]
    if spec.title:
        lines.append(f"  {spec.title}")
    if setup.factor != 1.0:
        lines.append(
            f"  --budget {setup.budget:g} min: every iteration count x {setup.factor:.3g} "
            f"(the spec is sized for {spec.nominal_minutes:g} min on {spec.nominal_hardware})"
        )
    if setup.quick:
        lines.append("  --quick: every recipe with its own quick: section (small networks, few iterations)")
    lines.append(f"training runs ({len(runs)}):")
    for r in runs:
        lines += ["  " + x for x in run_lines(setup, inputs, r)]
    others = []
    for key, m in spec.models.items():
        if m.interpolation:
            others.append(f"  {key}: {m.interpolation} interpolation -> {m.title!r}")
        elif m.pretrained:
            others.append(f"  {key}: pretrained {reference_text(m.pretrained)} -> {m.title!r}")
    if others:
        lines.append("models not trained:")
        lines += others
    lines.append("test roles:")
    for role, r in spec.roles.items():
        got = inputs.roles.get(role)
        want = r.study_set or (", ".join(r.sets) if r.sets else str(r.path))
        opt = (
            f" (also offered: crop {', '.join(map(str, r.crop_options))} via --set roles.{role}.crop=N)"
            if (r.crop_options)
            else ""
        )
        state = f"{got['source']} ({rel(got['path'])})" if got else "MISSING"
        lines.append(f"  {role} ({r.title}): wants {want}{opt}; this run: {state}")
    if spec.deviations:
        lines.append(f"deviations from the study ({len(spec.deviations)}):")
        for d in spec.deviations:
            lines.append(f"  - {d.what}: {d.here}" + (f" [the study: {d.source}]" if d.source else ""))
            lines.append(f"    why: {d.why}")
    miss = _missing_lines(inputs, plan)
    if miss:
        lines.append(f"missing inputs ({len(miss)}):")
        lines += miss
    if plan.blockers:
        lines.append("[plan] cannot run: " + "; ".join(plan.blockers))
    else:
        lines.append(
            f"[plan] can run: {len(runs)} training runs, {len(inputs.roles)} of {len(spec.roles)} test roles"
        )
    return lines


def _where(m: dict) -> str:
    w = m.get("where") or {}
    if isinstance(w, dict):
        return "; ".join(v if v and k in v else f"{k}: {v}" if v else k for k, v in w.items())
    return str(w)


def _missing_lines(inputs: Inputs, plan: Plan) -> list[str]:
    out = []
    for m in plan.missing_inputs:
        kind = "training set" if m.get("kind") == "train" else m.get("kind", "")
        tag = "BLOCKS THE RUN" if m.get("blocking") else "the run goes on without it"
        need = f"for {m['role']}; " if m.get("role") and m.get("role") != "train" else ""
        where = _where(m)
        out.append(
            f"  - {kind} {m['name']} ({need}{tag}): {m['why']}." + (f" Get it: {where}" if where else "")
        )
    for m in inputs.missing:
        where = _where(m)
        out.append(
            f"  - test role {m['role']} ({m.get('study_set') or m['name']}): {m['why']}."
            + (f" Get it: {where}." if where else "")
            + (f" {m['layout']}" if m.get("layout") else "")
        )
    return out
