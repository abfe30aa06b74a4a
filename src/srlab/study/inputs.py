"""Everything a spec needs before any work: training sets, the validation set, test roles and weights.
Nothing stops at the first missing input: :mod:`srlab.study.datasets` collects each one
(``ctx.missing_inputs``; missing roles in ``ctx.missing``) with where to get it, and :func:`blocking` says
which of them stop the run."""

from __future__ import annotations

from srlab.study.context import Context


def resolve_inputs(ctx: Context) -> None:
    """Fill ``ctx.train_sets``, ``ctx.val_set``, ``ctx.roles`` and the missing lists."""
    from srlab.study.datasets import missing_inputs, prepare_data_root
    from srlab.study.samples import prepare_quick_samples

    spec = ctx.spec
    if ctx.data_root is None and spec.data.samples is not None:
        prepare_quick_samples(ctx)
    else:
        prepare_data_root(ctx, strict=False)
        # the spec's order, whatever order the roles were found in
        ctx.roles = {k: ctx.roles[k] for k in spec.roles if k in ctx.roles}
    have = {(m.get("kind"), m.get("name")) for m in ctx.missing_inputs}
    for item in missing_inputs(spec, ctx.data_root):
        if item.get("kind") == "weights" and ("weights", item.get("name")) not in have:
            ctx.missing_inputs.append(item)


def vgg_missing(ctx: Context, runs) -> None:
    """ImageNet VGG19 for the perceptual losses: missing means random VGG19 (the rows say so)."""
    from srlab.errors import SrlabError
    from srlab.study.plan import perceptual_weights_choice

    users = sorted(
        {
            r.model
            for r in runs
            for k, v in r.overrides.items()
            if k.endswith(".perceptual_weights") and v == "random"
        }
    )
    if not users or perceptual_weights_choice() != "random":
        return
    try:
        from srlab.weights.zoo import require

        require("vgg19", verify=False)
        where = ""
    except SrlabError as exc:
        where = str(exc)
    ctx.missing_inputs.append(
        {
            "kind": "weights",
            "role": ", ".join(users),
            "name": "vgg19",
            "study_set": "",
            "why": "ImageNet VGG19 is not in the weight cache: the perceptual loss uses RANDOM VGG19 (the rows "
            "say so)",
            "where": {"vgg19": where or "`srlab weights fetch vgg19`"},
            "layout": "",
            "blocking": False,
        }
    )


def blocking(ctx: Context) -> list[str]:
    """Why the plan cannot run (empty: it can)."""
    out = [
        f"{'training set' if m.get('kind') == 'train' else m.get('kind', '')} {m['name']} is missing"
        for m in ctx.missing_inputs
        if m.get("blocking")
    ]
    if not ctx.roles:
        out.append("no test role was found")
    return out
