"""``srlab eval --merge``: the ``results.json`` files of ``srlab eval --shard K/N`` runs -> the unsharded result.

Each shard evaluated the images it owns (:mod:`srlab.eval.shard`) and wrote its rows with ``index``, the image's
place in the whole set. The merge checks that the files are the N shards of one evaluation (same protocol,
models, scales, channels and data sets, each shard exactly once), puts the rows and skip records back in
the order one unsharded run makes them (data set, scale, image, model), drops ``index``, and recounts per
set and scale what was used and whether it was complete. The rows, the tables and the CSV are then those
of one run; only what a run measures or stamps (``runtime_s``, the header's time, device and command)
comes from the shards (the devices joined when they differ).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from srlab.errors import DataError
from srlab.eval.loop import EvalResult
from srlab.eval.results import mark_complete, read_results

__all__ = ["merge_files", "merge_results"]

_SAME = ("protocol", "scales", "channels", "lpips", "metrics")


def _load(spec: str | os.PathLike) -> tuple[Path, dict]:
    p = Path(spec)
    if p.is_dir():
        p = p / "results.json"
    if not p.is_file():
        raise DataError(f"--merge {spec}: no results.json there; pass the results.json of each --shard run")
    try:
        return p, read_results(p)
    except ValueError as exc:  # json.JSONDecodeError: a truncated or foreign file
        raise DataError(f"--merge {p}: not readable JSON ({exc}); rerun that shard") from None


def merge_files(paths: Sequence[str | os.PathLike], *, command: str | None = None) -> EvalResult:
    """:func:`merge_results` of the ``results.json`` files (or folders holding one) in ``paths``."""
    return merge_results([_load(p) for p in paths], command=command)


def _models(header: dict) -> list:
    # what the model is, not where its file was on that machine
    return [{k: m.get(k) for k in ("label", "descriptor", "sha256")} for m in header.get("models", [])]


def _sets(header: dict) -> list:
    return [(d["name"], d.get("expected"), d.get("found")) for d in header.get("datasets", [])]


def _check(docs: list[tuple[Path, dict]]) -> int:
    """The shard count, after checking the files are the shards of one evaluation."""
    seen: dict[int, Path] = {}
    count = None
    first_path, first = docs[0][0], docs[0][1]["header"]
    for path, doc in docs:
        h = doc["header"]
        sh = h.get("shard")
        if not sh:
            raise DataError(
                f"--merge {path}: not a shard (no header.shard); merge the outputs of --shard K/N runs"
            )
        if count is None:
            count = int(sh["count"])
        if int(sh["count"]) != count:
            raise DataError(
                f"--merge {path}: shard {sh['index']}/{sh['count']}, but {first_path} is of {count}"
            )
        if int(sh["index"]) in seen:
            raise DataError(
                f"--merge: {path} and {seen[int(sh['index'])]} are both shard {sh['index']}/{count}"
            )
        seen[int(sh["index"])] = path
        for key in _SAME:
            if h.get(key) != first.get(key):
                raise DataError(
                    f"--merge {path}: its {key} differs from {first_path}'s; shards must be one run"
                )
        if _models(h) != _models(first):
            raise DataError(
                f"--merge {path}: other models (or weights) than {first_path}; shards must be one run"
            )
        if _sets(h) != _sets(first):
            raise DataError(f"--merge {path}: other data sets than {first_path}; shards must be one run")
    missing = sorted(set(range(1, count + 1)) - set(seen))
    if missing:
        raise DataError(
            f"--merge: shard(s) {', '.join(f'{k}/{count}' for k in missing)} missing; pass all {count} results.json"
        )
    return count


def merge_results(docs: list[tuple[Path, dict]], *, command: str | None = None) -> EvalResult:
    """``docs``: (path, :func:`~srlab.eval.results.read_results` document) of every shard."""
    if not docs:
        raise DataError("--merge: no files given")
    count = _check(docs)
    first = docs[0][1]["header"]
    scales = [int(s) for s in first["scales"]]
    set_pos = {d["name"]: i for i, d in enumerate(first["datasets"])}
    model_pos = {m.get("label"): i for i, m in enumerate(first.get("models", []))}

    def order(r: dict) -> tuple:
        if "index" not in r:
            raise DataError(
                "--merge: a row without 'index' (written by srlab before --shard existed?); rerun"
            )
        return (
            set_pos[r["dataset"]],
            scales.index(int(r["scale"])),
            r["index"],
            model_pos.get(r["model"], 0),
        )

    rows = sorted((r for _, d in docs for r in d["rows"]), key=order)
    keys = [(r["model"], r["dataset"], r["scale"], r["index"]) for r in rows]
    if len(set(keys)) != len(keys):
        raise DataError("--merge: the same image appears in two shards; were they run with different lists?")
    for r in rows:
        del r["index"]

    datasets = []
    for info in first["datasets"]:
        parts = [next(d for d in doc["header"]["datasets"] if d["name"] == info["name"]) for _, doc in docs]
        merged = {k: v for k, v in info.items() if k != "shard_files"}
        used = {s: sum(int(p.get("used", {}).get(s, 0)) for p in parts) for s in info.get("used", {})}
        merged["used"] = used
        skipped = [rec for p in parts for rec in p.get("skipped", [])]
        skipped.sort(key=lambda rec: (scales.index(int(rec.get("scale", scales[0]))), rec.get("index", 0)))
        merged["skipped"] = [{k: v for k, v in rec.items() if k != "index"} for rec in skipped]
        datasets.append(merged)

    header = {k: v for k, v in first.items() if k != "shard"}
    header["datasets"] = datasets
    devices = list(dict.fromkeys(doc["header"].get("device") for _, doc in docs))
    header["device"] = "; ".join(str(d) for d in devices)
    header["merged_shards"] = count
    if command:
        header["command"] = command
    skipped = [{"dataset": d["name"], **rec} for d in datasets for rec in d["skipped"]]
    return EvalResult(rows, mark_complete(header), skipped)
