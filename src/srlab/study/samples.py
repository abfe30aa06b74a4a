"""A spec's sample data (``data.samples``: the quick study) without a data root: training images, validation
crops and the natural test role from scikit-image's bundled sample images (public domain / CC0)."""

from __future__ import annotations

from pathlib import Path

from srlab.errors import ConfigError, DataError
from srlab.study.common import fresh_dir, read_rgb, write_png
from srlab.study.datasets import locate_role, materialise_role, missing_role
from srlab.study.records import Inputs, Setup

SAMPLE_ROLE = "natural"  # the role the sample photos stand in for


def _samples_dir() -> Path:
    try:
        import skimage
    except ImportError:
        raise DataError(
            "the quick study's sample images ship with scikit-image: pip install 'srlab[report]' "
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


def prepare_samples(setup: Setup) -> Inputs:
    """Training images, validation crops and the natural test role from scikit-image's samples (the
    spec's ``data.samples``); folder roles are read as given, the other roles are listed as missing."""
    spec = setup.spec
    q = spec.data.samples
    if q is None:
        raise ConfigError(f"study {spec.name}: no data.samples; pass --data-root DIR")
    data = setup.out / "data"
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
    train_set = {
        "name": "scikit-image samples",
        "path": str(train),
        "images": list(train_names),
        "note": f"{len(train_names)} whole images (greyscale ones replicated to RGB), random HR patches",
    }
    needed = {s for m in spec.models.values() if m.train for s in (m.train.data or spec.data.train)}
    train_sets = {name: {**train_set, "stands_for": name} for name in needed or {"samples"}}
    roles: dict[str, dict] = {}
    missing: list[dict] = []
    notes: list[str] = []
    if SAMPLE_ROLE in spec.roles and not spec.roles[SAMPLE_ROLE].path:
        roles[SAMPLE_ROLE] = {
            "dataset": SAMPLE_ROLE,
            "path": str(nat),
            "n": n,
            "source": (
                f"{n} {q.test_crop}x{q.test_crop} crops (centre + quadrant centres) of scikit-image's "
                f"{', '.join(test_names)} (held out of training)"
            ),
            "study_set": spec.roles[SAMPLE_ROLE].study_set,
            "substituted": True,
            "crop": q.test_crop,
        }
        notes.append(
            f"**Natural role substituted**: the spec's natural role is {spec.roles[SAMPLE_ROLE].study_set}; "
            f"without --data-root this run uses {n} crops of scikit-image's sample photos "
            f"({', '.join(test_names)})."
        )
    for role, r in spec.roles.items():
        if role in roles:
            continue
        info = r.model_dump()
        src = locate_role(role, info, None, spec=spec) if r.path else None
        if src is not None:
            roles[role] = materialise_role(setup.out, role, info, src, setup.say)
        elif r.path:
            missing.append(missing_role(spec, role, f"folder {r.path} not found or without images"))
        else:
            missing.append(
                missing_role(
                    spec, role, "without --data-root this spec uses scikit-image's samples, no such images"
                )
            )
    return Inputs(
        roles=roles,
        missing=tuple(missing),
        train_set=train_set,
        train_sets=train_sets,
        val_set=str(val),
        notes=tuple(notes),
    )
