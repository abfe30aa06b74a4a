"""Building a network for a weight file, bounded by what the file holds.

The hyper-parameters a network is built from come from untrusted input: srlab metadata (a JSON string
anyone can edit), or the largest block index among a foreign checkpoint's keys. So the network is built on
the meta device (no storage), under a budget derived from the file's own tensors: the construction stops
as soon as it registers clearly more tensors or values than the file holds, or more than
:data:`MAX_PARAMS` values at all. The built network's state-dict keys and shapes are then compared with
the file's, and only a network that matches takes the file's tensors (``assign``: no second copy). A
hostile file therefore costs at most its own size and a fraction of a second.

- :func:`build_and_load` -- the bounded build + strict load every loader goes through;
- :func:`build_from_spec` -- ``(model, descriptor)`` from an architecture name and hyper-parameters;
- :func:`load_into` -- strict loading with one :class:`~srlab.errors.WeightsError` naming the mismatch.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch.nn.modules import module as nn_module

import srlab.models  # noqa: F401  (fills the registry: builders and wrappers)
from srlab.errors import WeightsError
from srlab.models.registry import build_model, describe, family_of, wrapper_for

__all__ = [
    "MAX_PARAMS",
    "MAX_SCALE",
    "OverBudget",
    "budget_for",
    "build_and_load",
    "build_from_spec",
    "load_into",
]

MAX_PARAMS = 2_000_000_000  # no srlab network comes near this; a file claiming more is refused
MAX_SCALE = 16
# Construction may register a few tensors that do not reach the state dict (spectral norm re-registers
# each weight), so the running budget is loose; the exact key/shape comparison comes after.
_TENSOR_SLACK, _VALUE_SLACK, _MODULE_SLACK = 16, 1 << 20, 256


class OverBudget(Exception):
    """A construction registered more tensors, values or layers than its budget allows."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


@contextlib.contextmanager
def _budget(max_tensors: int, max_values: int, max_modules: int) -> Iterator[None]:
    """Abort any module construction on this thread that registers more than the given counts."""

    owner = threading.get_ident()
    count = {"tensors": 0, "values": 0, "modules": 0}

    def on_tensor(_module, _name, tensor):
        if threading.get_ident() != owner or tensor is None:
            return None
        count["tensors"] += 1
        count["values"] += int(tensor.numel())
        if count["tensors"] > max_tensors:
            raise OverBudget(f"more than {max_tensors:,} tensors")
        if count["values"] > max_values:
            raise OverBudget(f"more than {max_values:,} parameters")
        return None

    def on_module(_module, _name, _sub):
        if threading.get_ident() == owner:
            count["modules"] += 1
            if count["modules"] > max_modules:
                raise OverBudget(f"more than {max_modules:,} layers")
        return None

    handles = [
        nn_module.register_module_parameter_registration_hook(on_tensor),
        nn_module.register_module_buffer_registration_hook(on_tensor),
        nn_module.register_module_module_registration_hook(on_module),
    ]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def budget_for(n_tensors: int, n_values: int) -> contextlib.AbstractContextManager[None]:
    """The construction budget for a network meant to hold ``n_tensors`` tensors of ``n_values`` values in
    all (a file's): building inside it raises :class:`OverBudget` as soon as clearly more is registered."""
    cap = min(MAX_PARAMS, 2 * n_values + _VALUE_SLACK)
    return _budget(2 * n_tensors + _TENSOR_SLACK, cap, 8 * n_tensors + _MODULE_SLACK)


def build_from_spec(
    arch: str, hparams: Mapping[str, Any], *, name: str | None = None, init_weights: bool = True
):
    """Build ``(model, descriptor)`` from an architecture name and hyper-parameters (incl. srlab wrappers).

    ``init_weights=False``: uninitialised tensors, for callers that load every tensor right after.
    """
    wrapper = wrapper_for(arch)
    if wrapper is not None:
        hp = dict(hparams)
        inner, _ = build_from_spec(hp.pop("inner_arch"), hp.pop("inner_hparams"), init_weights=init_weights)
        model = wrapper(inner, **hp)
        return model, describe(model, name=name)
    model, desc = build_model(arch, init_weights=init_weights, **dict(hparams))
    if name:
        desc = describe(model, name=name)
    return model, desc


def _check_spec(arch: Any, hparams: Any, depth: int = 0) -> str | None:
    """Why ``(arch, hparams)`` is not even a plausible spec (wrong types, absurd scale), or None."""
    if not isinstance(arch, str) or not arch:
        return f"architecture {arch!r} is not a name"
    if not isinstance(hparams, Mapping) or not all(isinstance(k, str) for k in hparams):
        return f"hyper-parameters {str(hparams)[:60]!r} are not a mapping of names to values"
    scale = hparams.get("scale", 1)
    if isinstance(scale, bool) or not isinstance(scale, int) or not 1 <= scale <= MAX_SCALE:
        return f"scale {str(scale)[:30]} is not an integer from 1 to {MAX_SCALE}"
    if wrapper_for(arch) is not None:
        if depth > 2:
            return "resize wrappers nest too deep"
        return _check_spec(hparams.get("inner_arch"), hparams.get("inner_hparams"), depth + 1)
    return None


def _short(hparams: Any) -> str:
    text = str(hparams)
    return text if len(text) <= 200 else text[:200] + "...}"


def build_and_load(
    arch: Any,
    hparams: Any,
    sd: Mapping,
    *,
    source: str,
    name: str | None = None,
    unmapped: list[str] | None = None,
    origin: str = "its metadata names",
):
    """Build ``arch(**hparams)`` for the tensors ``sd`` and load them. Returns ``(model, descriptor)``.

    Nothing is allocated before the network is known to match ``sd`` key for key and shape for shape; a
    network that does not, or that would exceed :data:`MAX_PARAMS`, is one :class:`WeightsError` naming
    ``source``. ``origin`` says where the spec came from, for the message.
    """

    spec = f"{origin} {arch} {_short(hparams)}"
    why = _check_spec(arch, hparams)
    if why:
        raise WeightsError(f"{source}: {spec}: {why}; re-save or convert the model (`srlab weights convert`)")
    n_tensors = len(sd)
    n_values = sum(int(t.numel()) for t in sd.values())
    try:
        with (
            budget_for(n_tensors, n_values),
            # upstream (spandrel-backed) constructors compute with real tensors: built on the CPU, still
            # inside the budget, so forged metadata cannot ask for more than the file holds
            torch.device("meta") if _meta_buildable(arch) else contextlib.nullcontext(),
            warnings.catch_warnings(),  # an initialiser's remarks on odd sizes are not the user's business
        ):
            warnings.simplefilter("ignore")
            model, desc = build_from_spec(arch, hparams, name=name)  # "initialising" meta tensors is free
    except OverBudget as exc:
        raise WeightsError(
            f"{source}: {spec}, a network with {exc.what}, but the file holds {n_tensors} tensors "
            f"({n_values:,} values); refusing to build it (the metadata does not describe these tensors)"
        ) from None
    except (RecursionError, MemoryError):
        raise WeightsError(f"{source}: {spec}, which is too large to build; refusing it") from None
    except Exception as exc:  # noqa: BLE001 - any builder complaint about these values is the file's fault
        detail = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise WeightsError(f"{source}: {spec}, which srlab cannot build ({detail})") from None
    if desc.params > MAX_PARAMS:
        raise WeightsError(f"{source}: {spec} has {desc.params:,} parameters, over srlab's {MAX_PARAMS:,}")
    load_into(model, sd, source=source, unmapped=unmapped, assign=True)
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise WeightsError(f"{source}: {arch} has tensors no weight file provides ({', '.join(left[:3])})")
    return model, desc


def _meta_buildable(arch: Any) -> bool:
    rec = family_of(arch)
    return rec is None or rec.meta_build


def _fmt(keys: list[str], n: int = 4) -> str:
    shown = ", ".join(keys[:n])
    return f"{len(keys)} ({shown}{', ...' if len(keys) > n else ''})"


def load_into(
    model, sd: Mapping, *, source: str = "checkpoint", unmapped: list[str] | None = None, assign: bool = False
) -> None:
    """Strictly load ``sd`` into ``model``; one WeightsError naming missing/unexpected/mis-shaped keys.

    ``assign=True`` makes the model's tensors *be* those of ``sd`` (no copy; for freshly read files, and
    for a model built on the meta device).
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected] + list(unmapped or [])
    shapes = [
        f"{k} {tuple(sd[k].shape)} vs {tuple(expected[k].shape)}"
        for k in expected
        if k in sd and tuple(sd[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys {_fmt(missing)}")
        if unexpected:
            parts.append(f"unexpected keys {_fmt(unexpected)}")
        if shapes:
            parts.append(f"wrong shapes {_fmt(shapes, 2)} (file vs model)")
        arch = getattr(model, "arch", type(model).__name__)
        raise WeightsError(
            f"{source}: does not match {arch} {_short(getattr(model, 'hparams', {}))}: " + "; ".join(parts)
        )

    with torch.no_grad():
        tensors = {k: _as(v, expected[k].dtype, source, k) for k, v in sd.items()}
        model.load_state_dict(tensors, strict=True, assign=assign)


def _as(t, dtype, source: str, key: str):
    if t.is_complex() or t.dtype == torch.bool:
        raise WeightsError(f"{source}: tensor {key} holds {t.dtype} values, not weights")
    return t.to(dtype).contiguous()
