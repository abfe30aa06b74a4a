"""A study's data under a data root: each test role's images, the training and validation sets, and
everything missing with where to get it. Every lookup of the data-set catalogue for the study is here.

A role names catalogue sets (``sets``, then ``fallback``) or a folder (``path``), and how its images are cut
(``crop``: the study's centre crop, 0 = whole; ``first``: the first N; ``max_images``: an evenly spaced
subset). A set the catalogue derives from another (``DIV2K_valid_crop128``, ``FFHQ_thumbnails128``,
``DIV2K_train_crop128``, see :mod:`srlab.data.prepare`) is used where it is, else made from its original
into the run's folder, the same way ``srlab data prepare`` makes it.

:func:`missing_inputs` lists, without writing anything, what a spec needs and the data root lacks (test
roles, training sets, pretrained weights); :func:`prepare_data_root` finds a run's inputs, collecting
every missing item before it decides (``strict``) whether a missing training set stops the run, and returns
the :class:`~srlab.study.records.Inputs` record.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from srlab.data.catalog import get_spec
from srlab.data.catalog import where_to_get as catalogue_where
from srlab.data.find import find_dataset, from_folder, resolve_data_root
from srlab.data.prepare import RECIPES, make_images, make_pixels, select_sources
from srlab.errors import DataError, SrlabError
from srlab.eval.protocols import centre_crop
from srlab.study.common import fresh_dir, read_rgb, write_png
from srlab.study.records import Inputs, Setup
from srlab.weights import ncnn, shipped, zoo

__all__ = [
    "RoleSource",
    "locate_role",
    "materialise_role",
    "missing_inputs",
    "missing_role",
    "prepare_data_root",
    "resolve_root",
    "where_to_get",
]


def resolve_root(data_root: str | os.PathLike | None, spec) -> Path | None:
    """The data root of a run: the one given, else (specs that need one) the usual srlab lookup; None for a
    spec that runs on its sample images without one."""
    if data_root is not None:
        root = Path(data_root).expanduser()
        if not root.is_dir():
            raise DataError(f"--data-root {data_root}: no such folder")
        return root
    if spec.needs_data_root:
        return resolve_data_root(None)
    return None


# ---------------------------------------------------------------------------------------------- wording
def where_to_get(name: str) -> str:
    """How to obtain a catalogued set (page, direct download, ``srlab data prepare``), with its terms."""

    spec = get_spec(name)
    if spec is None:
        return "not a catalogued set (`srlab data list` shows the known ones); give a folder with 'path'"
    return catalogue_where(spec) + (f"; {spec.note}" if spec.note else "")


def _layout_hint(name: str) -> str:
    spec = get_spec(name)
    if not spec or not spec.layouts:
        return ""
    return f"Put it under DATA_ROOT/{spec.layouts[0].hr}/"


def _item(kind: str, role: str, names: list[str], why: str, study_set: str = "", *, blocking: bool) -> dict:
    first = names[0] if names else role
    return {
        "kind": kind,  # "role" | "train" | "weights"
        "role": role,
        "name": first,
        "study_set": study_set,
        "why": why,
        "where": {n: where_to_get(n) for n in names},
        "layout": _layout_hint(first),
        "blocking": blocking,  # True: the run cannot go on without it
    }


def missing_role(spec, role: str, why: str) -> dict:
    """The missing item of a test role that has no images (the run goes on without its column)."""
    info = spec.roles[role].model_dump()
    names = list(info.get("sets") or []) + list(info.get("fallback") or [])
    return _item("role", role, names, why, info.get("study_set", ""), blocking=False)


# ---------------------------------------------------------------------------------------------- finding
@dataclass
class RoleSource:
    """Where a role's images come from: ``parts`` = (set asked for, set found, recipe that makes the asked
    set from the found one, or None when it was found as is)."""

    role: str
    parts: list[tuple[str, Any, Any]]
    substituted: bool = False

    @property
    def names(self) -> str:
        return " + ".join(name for name, _, _ in self.parts)


def _find(name: str, root: Path, crop: int = 0):
    """(set found, recipe) for one name: the set itself; a prepared crop of it at ``crop`` when one is there;
    or its original with the recipe that makes it. None when none is there."""

    spec = get_spec(name)
    if spec is not None and crop:
        for rec in RECIPES.values():  # the user ran `srlab data prepare` for exactly this crop
            if rec.source == spec.name and rec.crop == crop and not rec.first:
                try:
                    return find_dataset(rec.name, root), None
                except DataError:
                    break
    try:
        return find_dataset(name, root), None
    except DataError:
        pass
    rec = RECIPES.get(spec.name) if spec is not None else None
    if rec is not None:
        try:
            return find_dataset(rec.source, root), rec
        except DataError:
            pass
    return None


def locate_role(role: str, info: Mapping[str, Any], root: Path | None, *, spec=None) -> RoleSource | None:
    """Where ``role``'s images are under ``root`` (its ``path`` folder, its ``sets``, else its ``fallback``
    sets), without reading or writing an image; None when nothing is there. ``spec`` resolves ``path``."""

    if info.get("path"):
        folder = spec.resolve_path(info["path"]) if spec is not None else Path(info["path"]).expanduser()
        try:
            return RoleSource(role, [(str(info["path"]), from_folder(role, None, folder), None)])
        except DataError:
            return None
    if root is None:
        return None
    crop = int(info.get("crop") or 0)
    for group, substituted in ((info.get("sets") or [], False), (info.get("fallback") or [], True)):
        parts = []
        for name in group:
            hit = _find(name, root, crop)
            if hit is not None:
                parts.append((name, *hit))
        if parts:
            return RoleSource(role, parts, substituted)
    return None


def _role_why(info: Mapping[str, Any], root: Path | None) -> str:
    if info.get("path"):
        return f"folder {info['path']} not found or without images"
    return f"not found under {root}" if root is not None else "no --data-root given"


def _usable_weights(name: str) -> bool:
    if shipped.get_shipped(name):
        return True
    if name in zoo.ZOO:
        try:
            return zoo.local_path(name).is_file()
        except (SrlabError, OSError):
            return False
    if name in ncnn.PACKAGE_MODELS:
        try:
            ncnn.package_model_files(name)
            return True
        except SrlabError:
            return False
    return Path(name).expanduser().is_file()


def _weights_item(key: str, ref, spec) -> dict | None:
    """The missing item of a pretrained reference none of whose candidates is here, else None."""

    weights = str(ref.weights)
    cands = [weights, *ref.fallback]
    resolved = [c if c in zoo.ZOO or "/" not in c else str(spec.resolve_path(c)) for c in cands]  # names stay
    if any(_usable_weights(c) for c in resolved):
        return None
    try:
        zoo.require(weights, verify=False)
        fix = ""
    except SrlabError as exc:
        fix = str(exc)
    entry = zoo.ZOO.get(weights)
    if entry is None:
        fix = fix or f"{resolved[0]}: no such weights file"
    item = {
        "kind": "weights",
        "role": key,
        "name": weights,
        "study_set": "",
        "why": "not downloaded" if entry is not None else "not found",
        "where": {weights: fix},
        "layout": "",
        "blocking": False,  # the run goes on without that row
        "download": entry.url if entry is not None else None,  # the run tries it first
    }
    return item


def missing_inputs(spec, data_root: str | os.PathLike | None) -> list[dict]:
    """Everything ``spec`` needs that is not here, without writing anything: one dict per item with
    ``kind`` ('role' | 'train' | 'weights'), ``role`` (role key, 'train' or the model key), ``name``,
    ``study_set``, ``why``, ``where`` ({name: how to get it}), ``layout`` and ``blocking`` (True: the run
    cannot start; a missing role or pretrained file only drops its column or row)."""
    root = Path(data_root).expanduser() if data_root is not None else None
    out: list[dict] = []
    for role, r in spec.roles.items():
        info = r.model_dump()
        if locate_role(role, info, root, spec=spec) is None:
            names = list(info.get("sets") or []) + list(info.get("fallback") or [])
            out.append(
                _item("role", role, names, _role_why(info, root), info.get("study_set", ""), blocking=False)
            )
    if root is not None:
        for names in _train_groups(spec):
            if not any(_find(n, root) for n in names):
                out.append(_item("train", "train", names, f"not found under {root}", blocking=True))
    for key, m in spec.models.items():
        if m.pretrained is not None:
            item = _weights_item(key, m.pretrained, spec)
            if item is not None:
                out.append(item)
    return out


def _train_groups(spec) -> list[list[str]]:
    """The training-set choices of a spec: ``data.train`` (the first found is used) when a model trains on
    it, and each model's own ``train.data``."""
    groups: list[list[str]] = []
    default_used = False
    for m in spec.models.values():
        if m.train is None:
            continue
        if m.train.data:
            if list(m.train.data) not in groups:
                groups.append(list(m.train.data))
        else:
            default_used = True
    if default_used and spec.data.train and list(spec.data.train) not in groups:
        groups.insert(0, list(spec.data.train))
    return groups


# ---------------------------------------------------------------------------------------------- making
def _subset(items: list, cap: int) -> list:
    if not cap or len(items) <= cap:
        return list(items)
    step = len(items) / cap
    return [items[int(i * step)] for i in range(cap)]


def _prefix(f: Path) -> str:
    return f.parent.parent.name if f.parent.name == "HR" else f.parent.name


def materialise_role(
    out_dir: Path, role: str, info: Mapping[str, Any], src: RoleSource, say: Callable[[str], None]
) -> dict:
    """The role's images as one folder (in place when they need no cut, else under ``out_dir/data``), and
    its entry of :attr:`Inputs.roles <srlab.study.records.Inputs.roles>`."""

    crop, first, cap = (int(info.get(k) or 0) for k in ("crop", "first", "max_images"))
    items = []
    for _name, ds, rec in src.parts:
        files = select_sources(rec, ds) if rec is not None else list(ds.files)
        items += [(f, ds, rec) for f in files]
    if first:
        items = items[:first]
    pick = _subset(items, cap)
    _, ds0, rec0 = src.parts[0]
    ready = RECIPES.get(ds0.name)
    cut = crop and not (ready is not None and ready.crop == crop)
    target = rec0.name if rec0 is not None else ds0.name
    if len(src.parts) == 1 and rec0 is None and not cut and len(pick) == len(ds0.files):
        path, n = ds0.hr_dir, len(pick)
    else:
        out = fresh_dir(out_dir / "data" / role)
        n = 0
        for f, _ds, rec in pick:
            if rec is None and not cut:
                shutil.copyfile(f, out / (f"{_prefix(f)}_{f.name}" if len(src.parts) > 1 else f.name))
                n += 1
                continue
            try:
                px = make_pixels(rec, f) if rec is not None else read_rgb(f)
            except SrlabError as exc:
                say(f"skip {f}: {exc}")
                continue
            if cut:
                if px.shape[0] < crop or px.shape[1] < crop:
                    say(f"skip {f.name}: smaller than the {crop}x{crop} centre crop")
                    continue
                px = np.ascontiguousarray(centre_crop(px, crop))
            stem = f"{_prefix(f)}_{f.stem}" if rec is None else f.stem
            write_png(out / f"{stem}.png", px)
            n += 1
        path = out
    what = " + ".join(d.name for _, d, _ in src.parts)
    made = f" ({rec0.describe()}, made here as `srlab data prepare {rec0.name}` makes it)" if rec0 else ""
    if cut:
        source = f"{crop}x{crop} centre crops of {n} images of {what}{made}"
        if len(pick) < len(items):
            source += f" (an evenly spaced subset of {len(items)})"
        dataset = role
    else:
        base = target if len(src.parts) == 1 else what
        if len(pick) < len(items):
            source = f"{len(pick)} of the {len(items)} images of {base} (evenly spaced){made}"
        else:
            source = f"all {n} images of {base}{made}"
        dataset = target if len(src.parts) == 1 else role
    return {
        "dataset": dataset,
        "path": str(path),
        "n": n,
        "source": source,
        "study_set": info.get("study_set", ""),
        "substituted": src.substituted,
        "crop": crop,
    }


def _train_set(setup: Setup, names: list[str], root: Path) -> dict | None:
    """The first of ``names`` found (or made from its original into the run folder), as a row of
    ``Inputs.train_sets``; None when none is there."""

    for name in names:
        hit = _find(name, root)
        if hit is None:
            continue
        ds, rec = hit
        if rec is None:
            return {"name": ds.name, "path": str(ds.hr_dir), "images": len(ds.files), "note": ""}
        out = setup.out / "data" / rec.name
        setup.say(
            f"[data] {rec.name} is not under {root}: making it from {ds.name} into {out} "
            f"(`srlab data prepare {rec.name} --data-root {root}` makes it once for every run)"
        )
        res = make_images(rec, select_sources(rec, ds), out, progress=False, source_dir=ds.hr_dir)
        note = f"{rec.describe()}, made by this run from {ds.hr_dir}"
        return {"name": rec.name, "path": str(out), "images": len(res.files), "note": note}
    return None


def prepare_data_root(setup: Setup, *, strict: bool = True) -> Inputs:
    """Test roles, training and validation sets from the data root.

    Every missing role and every missing training set (with where to get it) is collected before anything
    is decided; then, with ``strict``, a missing training set raises one DataError that lists them all.
    Derived sets that are absent but whose originals are here are made into the run's folder.
    """
    spec = setup.spec
    root = setup.data_root
    roles: dict[str, dict] = {}
    missing: list[dict] = []
    missing_inputs: list[dict] = []
    notes: list[str] = []
    # test roles first, so a missing training set never hides them
    for role, r in spec.roles.items():
        info = r.model_dump()
        src = locate_role(role, info, root, spec=spec)
        if src is None:
            missing.append(missing_role(spec, role, _role_why(info, root)))
            continue
        entry = materialise_role(setup.out, role, info, src, setup.say)
        roles[role] = entry
        if src.substituted:
            notes.append(
                f"**{role.capitalize()} role substituted**: {', '.join(info.get('sets') or [])} not under "
                f"the data root; using {entry['source']}."
            )
    # training sets
    train_set: dict = {}
    train_sets: dict[str, dict] = {}
    for names in _train_groups(spec):
        row = _train_set(setup, names, root) if root is not None else None
        if row is None:
            why = f"not found under {root}" if root is not None else "no --data-root given"
            missing_inputs.append(_item("train", "train", names, why, blocking=True))
            continue
        train_sets[row["name"]] = row
        for n in names:
            train_sets.setdefault(n, row)
        if names == list(spec.data.train) and not train_set:
            train_set = row
    # validation set (never a test role)
    val_set = None
    for name in spec.data.val if root is not None else []:
        hit = _find(name, root)
        if hit is not None and hit[1] is None:
            val_set = str(hit[0].hr_dir)
            break
    if val_set is None and spec.data.val:
        notes.append(
            f"No validation set ({', '.join(spec.data.val)} not found under the data root): training curves "
            "have no PSNR."
        )
    blocking = [m for m in missing_inputs if m.get("blocking")]
    if strict and blocking:
        lines = [f"{m['name']} ({m['why']}; {next(iter(m['where'].values()), '')})" for m in blocking]
        gone = [m["role"] for m in missing]
        raise DataError(
            "cannot train: missing training set "
            + "; ".join(lines)
            + (f"; also missing test roles: {', '.join(gone)}" if gone else "")
        )
    return Inputs(
        roles=roles,
        missing=tuple(missing),
        missing_inputs=tuple(missing_inputs),
        train_set=train_set,
        train_sets=train_sets,
        val_set=val_set,
        notes=tuple(notes),
    )
