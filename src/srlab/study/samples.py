"""The quick profile's data without a data root: training images, validation crops and the natural test
role from scikit-image's bundled sample images (public domain / CC0)."""

from __future__ import annotations

from pathlib import Path

from srlab.errors import DataError
from srlab.study.context import (
    ROLE_INFO,
    SAMPLE_TEST,
    SAMPLE_TRAIN,
    SAMPLE_VAL,
    Context,
    fresh_dir,
    read_rgb,
    write_png,
)
from srlab.study.datasets import missing_role


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
    """Training images, validation crops and the natural test role from scikit-image's samples."""
    q = ctx.quick
    data = ctx.out / "data"
    train = fresh_dir(data / "samples-train")
    train_names = SAMPLE_TRAIN[: q.train_images] if q.train_images else SAMPLE_TRAIN
    for name in train_names:
        write_png(train / f"{name}.png", read_rgb(_sample_path(name)))
    val = fresh_dir(data / "samples-val")
    for name in SAMPLE_VAL:
        a = read_rgb(_sample_path(name))
        for i, (y, x) in enumerate(_crop_positions(*a.shape[:2], q.test_crop, q.val_crops)):
            write_png(val / f"{name}_c{i}.png", a[y : y + q.test_crop, x : x + q.test_crop])
    nat = fresh_dir(data / "natural")
    sources = []
    test_names = SAMPLE_TEST[: q.test_images] if q.test_images else SAMPLE_TEST
    for name in test_names:
        a = read_rgb(_sample_path(name))
        for i, (y, x) in enumerate(_crop_positions(*a.shape[:2], q.test_crop, q.crops_per_image)):
            write_png(nat / f"{name}_c{i}.png", a[y : y + q.test_crop, x : x + q.test_crop])
            sources.append(f"{name} ({y},{x})")
    n = len(list(nat.glob("*.png")))
    ctx.train_set = {
        "name": "scikit-image samples",
        "path": str(train),
        "images": list(train_names),
        "note": f"{len(train_names)} whole images (greyscale ones replicated to RGB), random {q.patch}x{q.patch} HR patches",
    }
    ctx.val_set = str(val)
    ctx.roles["natural"] = {
        "dataset": "natural",
        "path": str(nat),
        "n": n,
        "source": (
            f"{n} {q.test_crop}x{q.test_crop} crops (centre + quadrant centres) of scikit-image's "
            f"{', '.join(test_names)} (held out of training)"
        ),
        "study_set": ROLE_INFO["natural"]["study_set"],
        "substituted": True,
    }
    ctx.notes.append(
        "**Natural role substituted**: the study tested on 128x128 centre crops of DIV2K valid; without "
        f"--data-root this run uses {n} crops of scikit-image's sample photos ({', '.join(test_names)})."
    )
    for role in ("faces", "anime"):
        missing_role(ctx, role, "the quick profile without --data-root uses no face or anime images")
