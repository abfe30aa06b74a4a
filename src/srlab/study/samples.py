"""The quick profile's data without a data root: training images, validation crops and the natural test
role from scikit-image's bundled sample images (public domain / CC0)."""

from __future__ import annotations

from pathlib import Path

from srlab.errors import ConfigError, DataError
from srlab.study.context import Context, fresh_dir, read_rgb, write_png
from srlab.study.datasets import _materialise, locate_role, missing_role

SAMPLE_ROLE = "natural"  # the role the sample photos stand in for


def _samples_dir() -> Path:
    try:
        import skimage
    except ImportError:
        raise DataError(
            "the quick profile's sample images ship with scikit-image: pip install 'srlab[report]' "
            "(or pass --data-root DIR with DIV2K_train_crop128 and test sets)"
        ) from None
    return Path(skimage.__file__).resolve().parent / "data"


def _sample_path(name: str) -> Path:
    d = _samples_dir()
    for ext in (".png", ".jpg"):
        if (d / f"{name}{ext}").is_file():
            return d / f"{name}{ext}"
    raise DataError(
        f"scikit-image sample {name!r} not found in {d}; reinstall scikit-image (pip install scikit-image)"
    )


def _crop_positions(h: int, w: int, size: int, n: int) -> list[tuple[int, int]]:
    """Top-left corners: the centre crop (the study's x = W//2 - size//2) then quadrant centres."""
    cands = [
        (h // 2, w // 2),
        (h // 4, w // 4),
        (3 * h // 4, 3 * w // 4),
        (h // 4, 3 * w // 4),
        (3 * h // 4, w // 4),
    ]
    out: list[tuple[int, int]] = []
    for cy, cx in cands:
        y = min(max(0, cy - size // 2), h - size)
        x = min(max(0, cx - size // 2), w - size)
        if (y, x) not in out:
            out.append((y, x))
        if len(out) == n:
            break
    return out


def prepare_quick_samples(ctx: Context) -> None:
    """Training images, validation crops and the natural test role from scikit-image's samples (the
    spec's ``data.samples``); folder roles are read as given, the other roles are listed as missing."""
    q = ctx.spec.data.samples
    if q is None:
        raise ConfigError(f"study {ctx.spec.name}: no data.samples; pass --data-root DIR")
    data = ctx.out / "data"
    train = fresh_dir(data / "samples-train")
    train_names = q.train[: q.train_images] if q.train_images else q.train
    for name in train_names:
        write_png(train / f"{name}.png", read_rgb(_sample_path(name)))
    val = fresh_dir(data / "samples-val")
    for name in q.val:
        a = read_rgb(_sample_path(name))
        for i, (y, x) in enumerate(_crop_positions(*a.shape[:2], q.test_crop, q.val_crops)):
            write_png(val / f"{name}_c{i}.png", a[y : y + q.test_crop, x : x + q.test_crop])
    nat = fresh_dir(data / SAMPLE_ROLE)
    test_names = q.test[: q.test_images] if q.test_images else q.test
    for name in test_names:
        a = read_rgb(_sample_path(name))
        for i, (y, x) in enumerate(_crop_positions(*a.shape[:2], q.test_crop, q.crops_per_image)):
            write_png(nat / f"{name}_c{i}.png", a[y : y + q.test_crop, x : x + q.test_crop])
    n = len(list(nat.glob("*.png")))
    ctx.train_set = {
        "name": "scikit-image samples",
        "path": str(train),
        "images": list(train_names),
        "note": f"{len(train_names)} whole images (greyscale ones replicated to RGB), random HR patches",
    }
    needed = {s for m in ctx.spec.models.values() if m.train for s in (m.train.data or ctx.spec.data.train)}
    for name in needed or {"samples"}:
        ctx.train_sets[name] = {**ctx.train_set, "stands_for": name}
    ctx.val_set = str(val)
    roles = ctx.spec.roles
    if SAMPLE_ROLE in roles and not roles[SAMPLE_ROLE].path:
        ctx.roles[SAMPLE_ROLE] = {
            "dataset": SAMPLE_ROLE,
            "path": str(nat),
            "n": n,
            "source": (
                f"{n} {q.test_crop}x{q.test_crop} crops (centre + quadrant centres) of scikit-image's "
                f"{', '.join(test_names)} (held out of training)"
            ),
            "study_set": roles[SAMPLE_ROLE].study_set,
            "substituted": True,
            "crop": q.test_crop,
        }
        ctx.notes.append(
            f"**Natural role substituted**: the spec's natural role is {roles[SAMPLE_ROLE].study_set}; without "
            f"--data-root this run uses {n} crops of scikit-image's sample photos ({', '.join(test_names)})."
        )
    for role, r in roles.items():
        if role in ctx.roles:
            continue
        src = locate_role(role, ctx.role_info[role], None, spec=ctx.spec) if r.path else None
        if src is not None:
            ctx.roles[role] = _materialise(ctx, role, ctx.role_info[role], src)
        elif r.path:
            missing_role(ctx, role, f"folder {r.path} not found or without images")
        else:
            missing_role(
                ctx, role, "without --data-root this spec uses scikit-image's samples, no such images"
            )
