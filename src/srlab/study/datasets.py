"""The study's test roles, training and validation sets under a data root, and the missing roles with
where to get them. Every lookup of the data-set catalogue for the study is in this module."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from srlab.errors import DataError, SrlabError
from srlab.study.context import ROLE_INFO, ROLES, Context, Profile, fresh_dir, read_rgb, write_png


def resolve_root(data_root: str | os.PathLike | None, prof: Profile) -> Path | None:
    """The data root of a run: the one given, else (profiles that need one) the usual srlab lookup; None
    for the quick profile without one (scikit-image's samples)."""
    if data_root is not None:
        root = Path(data_root).expanduser()
        if not root.is_dir():
            raise DataError(f"--data-root {data_root}: no such folder")
        return root
    if prof.needs_data_root:
        from srlab.data.find import resolve_data_root

        return resolve_data_root(None)
    return None


def _where_to_get(name: str) -> str:
    from srlab.data.catalog import get_spec

    spec = get_spec(name)
    if spec is None:
        return "unknown set"
    txt = spec.url
    if spec.download:
        txt += f"; direct download {spec.download} (`srlab data fetch {spec.name}`)"
    if spec.note:
        txt += f"; {spec.note}"
    return txt


def missing_role(ctx: Context, role: str, why: str) -> None:
    info = ROLE_INFO[role]
    sets = info["sets"] + info["fallback"]
    ctx.missing.append(
        {
            "role": role,
            "study_set": info["study_set"],
            "why": why,
            "where": {s: _where_to_get(s) for s in sets},
            "layout": _layout_hint(sets[0]),
        }
    )


def _layout_hint(name: str) -> str:
    from srlab.data.catalog import get_spec

    spec = get_spec(name)
    if not spec or not spec.layouts:
        return ""
    return f"Put it under DATA_ROOT/{spec.layouts[0].hr}/"


def _subset(files: list, cap: int) -> list:
    if not cap or len(files) <= cap:
        return list(files)
    step = len(files) / cap
    return [files[int(i * step)] for i in range(cap)]


def prepare_data_root(ctx: Context) -> None:
    """Training set, validation set and test roles from the data root (the catalogue's layouts)."""
    import numpy as np

    from srlab.data.find import find_dataset
    from srlab.protocols import centre_crop

    root = ctx.data_root
    cap = ctx.quick.max_role_images if ctx.profile.name == "quick" else 0
    data = ctx.out / "data"
    # training set
    train_name = "T91" if ctx.profile.name == "paper" else "DIV2K_train_crop128"
    try:
        ds = find_dataset(train_name, root)
    except DataError as exc:
        raise DataError(f"--profile {ctx.profile.name} trains on {train_name}: {exc}") from None
    ctx.train_set = {"name": ds.name, "path": str(ds.hr_dir), "images": len(ds.files), "note": ""}
    if ctx.profile.name == "paper":
        # ESRGAN's recipe trains on DIV2K; the paper used DIV2K + Flickr2K (+ OST).
        try:
            d2 = find_dataset("DIV2K_train_crop128", root)
            ctx.train_set["esrgan"] = {"name": d2.name, "path": str(d2.hr_dir), "images": len(d2.files)}
        except DataError as exc:
            raise DataError(f"--profile paper trains ESRGAN on DIV2K_train_crop128: {exc}") from None
    # validation set (never a test role): Set5
    try:
        v = find_dataset("Set5", root)
        ctx.val_set = str(v.hr_dir)
    except DataError:
        ctx.val_set = None
        ctx.notes.append(
            "No validation set (Set5 not found under the data root): training curves have no PSNR."
        )
    # test roles
    for role in ROLES:
        info = ROLE_INFO[role]
        found = []
        for name in info["sets"]:
            try:
                found.append(find_dataset(name, root))
            except DataError:
                pass
        substituted = False
        if not found and info["fallback"]:
            for name in info["fallback"]:
                try:
                    found.append(find_dataset(name, root))
                except DataError:
                    pass
            substituted = bool(found)
        if not found:
            missing_role(ctx, role, f"not found under {root}")
            continue
        files = [f for d in found for f in d.files]
        names = " + ".join(d.name for d in found)
        if role == "natural":
            # The study's natural test images: 128x128 centre crops (x = W//2 - 64, y = H//2 - 64).
            out = fresh_dir(data / role)
            used = []
            for f in _subset(files, cap):
                try:
                    a = read_rgb(f)
                except SrlabError as exc:
                    ctx.say(f"skip {f}: {exc}")
                    continue
                if a.shape[0] < 128 or a.shape[1] < 128:
                    ctx.say(f"skip {f.name}: smaller than the 128x128 centre crop")
                    continue
                stem = f"{f.parent.parent.name if f.parent.name == 'HR' else f.parent.name}_{f.stem}"
                write_png(out / f"{stem}.png", np.ascontiguousarray(centre_crop(a, 128)))
                used.append(f)
            src = f"128x128 centre crops of {len(used)} images of {names}" + (
                f" (an evenly spaced subset of {len(files)})" if len(used) < len(files) else ""
            )
            ctx.roles[role] = {
                "dataset": "natural",
                "path": str(out),
                "n": len(used),
                "source": src,
                "study_set": info["study_set"],
                "substituted": substituted,
            }
            if substituted:
                ctx.notes.append(
                    f"**Natural role substituted**: DIV2K valid is not under the data root; using {src}."
                )
        else:
            d = found[0]
            pick = _subset(d.files, cap)
            if len(pick) < len(d.files):
                out = fresh_dir(data / role)
                for f in pick:
                    shutil.copyfile(f, out / f.name)
                path = out
                src = f"{len(pick)} of the {len(d.files)} images of {d.name} (evenly spaced)"
            else:
                path = d.hr_dir
                src = f"all {len(d.files)} images of {d.name}"
            ctx.roles[role] = {
                "dataset": d.name,
                "path": str(path),
                "n": len(pick),
                "source": src,
                "study_set": info["study_set"],
                "substituted": False,
            }
