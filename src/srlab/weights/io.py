"""Reading and writing weight files safely.

- :func:`save_model` writes an srlab checkpoint: safetensors (no pickle) whose metadata records the
  architecture, its hyper-parameters (JSON), scale, colour space, channels and anything the caller adds
  (recipe, metrics, perceptual weights, ...). The file is written to a temporary name in the target
  folder and renamed into place (:func:`srlab.atomic.atomic_path`), so a crash never leaves a
  half-written checkpoint; its mode follows the umask.
- :func:`read_checkpoint` / :func:`read_state_dict` read ``.safetensors`` and PyTorch ``.pth``/``.pt``/
  ``.ckpt`` files. Pickles are opened only with ``torch.load(weights_only=True)``: a file that needs
  anything outside PyTorch's tensor-only allowlist is refused with one :class:`~srlab.errors.WeightsError`
  line naming the global it wanted (:mod:`srlab.weights.pickles`), and its payload never runs. Missing, empty, truncated and non-weight files get one line too.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from srlab.atomic import atomic_path
from srlab.errors import WeightsError
from srlab.serialize import dumps, loads

__all__ = [
    "RESERVED_KEYS",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "read_checkpoint",
    "read_metadata",
    "read_state_dict",
    "save_model",
    "sniff_format",
]

FORMAT_NAME = "srlab"
FORMAT_VERSION = 1
# Metadata keys srlab itself writes; any other key holds a JSON-encoded caller value.
RESERVED_KEYS = {
    "format",
    "format_version",
    "arch",
    "hparams",
    "scale",
    "color",
    "in_channels",
    "out_channels",
}

_PICKLE_HELP = (
    "if you trust its source, re-save only its tensors (torch.save(model.state_dict(), 'plain.pth')) with the "
    "code that made it, or get a .safetensors / plain state-dict copy from its publisher"
)


# --------------------------------------------------------------------------------------------- writing
def save_model(path: str | os.PathLike, model, *, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``model``'s weights and description to ``path`` (safetensors), atomically.

    ``model`` is an srlab module (it has ``arch`` and ``hparams``). ``metadata`` values must be
    JSON-serialisable; they come back decoded from :func:`read_metadata`. Returns the path written.
    """
    import torch
    from safetensors.torch import save_file

    from srlab.models.registry import describe

    path = Path(path)
    desc = describe(model)
    meta: dict[str, str] = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "arch": desc.arch,
        "hparams": dumps(getattr(model, "hparams", {}), indent=None, sort_keys=True),
        "scale": str(desc.scale),
        "color": desc.color,
        "in_channels": str(desc.in_channels),
        "out_channels": str(desc.out_channels),
    }
    for key, value in (metadata or {}).items():
        if key in RESERVED_KEYS:
            raise ValueError(f"metadata key {key!r} is reserved by srlab")
        try:
            meta[str(key)] = dumps(value, indent=None, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"metadata {key!r} is not JSON-serialisable: {exc}") from None

    tensors: dict[str, torch.Tensor] = {}
    seen: dict[int, str] = {}
    for name, t in model.state_dict().items():
        t = t.detach().to("cpu")
        ptr = t.untyped_storage().data_ptr() if t.numel() else -1
        if ptr in seen or not t.is_contiguous():  # safetensors refuses shared or strided storage
            t = t.contiguous().clone()
        seen[ptr] = name
        tensors[name] = t

    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata=meta)
    return path


# --------------------------------------------------------------------------------------------- reading
def sniff_format(path: str | os.PathLike) -> str:
    """'safetensors', 'torch-zip', 'pickle', 'ncnn-param', or raise WeightsError for anything else."""
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"{path}: weights file not found")
    if path.is_dir():
        raise WeightsError(f"{path}: is a folder, not a weights file")
    size = path.stat().st_size
    if size == 0:
        raise WeightsError(f"{path}: file is empty (0 bytes); download or copy it again")
    with open(path, "rb") as f:
        head = f.read(64)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "torch-zip"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "pickle"
    if head.startswith(b"7767517"):
        return "ncnn-param"
    if len(head) >= 9 and head[8:9] == b"{":
        n = int.from_bytes(head[:8], "little")
        if n > size - 8:
            raise WeightsError(
                f"{path}: truncated safetensors file (header says {n} bytes, file has {size}); download it again"
            )
        return "safetensors"
    raise WeightsError(
        f"{path}: not a weights file ({_describe_content(head)}); expected .safetensors, .pth/.pt/.ckpt or ncnn .param"
    )


def _describe_content(head: bytes) -> str:
    known = {
        b"\x89PNG": "a PNG image",
        b"\xff\xd8\xff": "a JPEG image",
        b"GIF8": "a GIF image",
        b"\x1f\x8b": "gzip data",
        b"BM": "a BMP image",
        b"ONNX": "an ONNX model",
    }
    for magic, what in known.items():
        if head.startswith(magic):
            return f"it is {what}"
    stripped = head.lstrip().lower()
    if stripped.startswith((b"<!doctype html", b"<html")):
        return "it is an HTML page, probably an error or login page saved instead of the file"
    if stripped.startswith(b"<"):
        return "it is XML/HTML text"
    if head and all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "it is a text file"
    return "unrecognised binary content"


def read_checkpoint(path: str | os.PathLike) -> tuple[Any, dict[str, str] | None]:
    """Load a weight file safely. Returns ``(object, safetensors_metadata_or_None)``.

    safetensors -> (dict of tensors, metadata); torch formats -> (whatever tensor-only object the
    pickle holds, None). Never executes code from the file.
    """
    path = Path(path)
    kind = sniff_format(path)
    if kind == "ncnn-param":
        raise WeightsError(
            f"{path}: is an ncnn .param file; load it with srlab.load_model (it needs its .bin beside it)"
        )
    if kind == "safetensors":
        return _read_safetensors(path)
    return _read_torch(path, kind), None


def _read_safetensors(path: Path) -> tuple[dict, dict[str, str] | None]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata()
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # SafetensorError and friends
        raise WeightsError(
            f"{path}: corrupt or truncated safetensors file ({_one_line(exc)}); download it again"
        ) from None
    return tensors, meta


def _read_torch(path: Path, kind: str) -> Any:
    import pickle

    import torch

    from srlab.weights.pickles import explain_refusal, oversized_request

    too_big = oversized_request(path)
    if too_big:
        raise WeightsError(too_big)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        why = explain_refusal(path, str(exc), _PICKLE_HELP)
        if why is None:
            detail = _one_line(exc).split(". ")[0][:160]
            raise WeightsError(f"{path}: corrupt checkpoint ({detail}); download it again") from None
        raise WeightsError(why) from None
    except Exception as exc:  # noqa: BLE001 - whatever a damaged archive makes torch.load raise
        reason = "truncated or corrupt" if kind == "torch-zip" or isinstance(exc, EOFError) else "unreadable"
        detail = _one_line(exc).split(". ")[0][:160] or type(exc).__name__
        raise WeightsError(f"{path}: {reason} PyTorch checkpoint ({detail}); download it again") from None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text.replace("\x1b[1m", "").replace("\x1b[0m", "")


def read_state_dict(path: str | os.PathLike) -> dict:
    """The tensors of a weight file as a flat ``{key: tensor}`` dict.

    Unwraps the usual containers (``params_ema`` preferred over ``params``, ``state_dict``, ``model``,
    ...) and strips a ``module.`` prefix (DataParallel). See :func:`srlab.weights.convert.unwrap_state_dict`.
    """
    from srlab.weights.convert import unwrap_state_dict

    obj, _ = read_checkpoint(path)
    return unwrap_state_dict(obj, source=str(path))


def read_metadata(path: str | os.PathLike) -> dict[str, Any] | None:
    """Decoded srlab metadata of a safetensors file (None for files srlab did not write)."""
    from safetensors import safe_open

    path = Path(path)
    if sniff_format(path) != "safetensors":
        return None
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            raw = f.metadata()
    except Exception as exc:
        raise WeightsError(
            f"{path}: corrupt or truncated safetensors file ({_one_line(exc)}); download it again"
        ) from None
    return decode_metadata(raw, source=str(path))


def decode_metadata(raw: dict[str, str] | None, *, source: str = "") -> dict[str, Any] | None:
    if not raw or raw.get("format") != FORMAT_NAME:
        return None
    out: dict[str, Any] = {}
    try:
        out["format_version"] = int(raw.get("format_version", "1"))
        out["arch"] = raw["arch"]
        out["hparams"] = loads(raw.get("hparams", "{}"))
        for k in ("scale", "in_channels", "out_channels"):
            if k in raw:
                out[k] = int(raw[k])
        out["color"] = raw.get("color", "rgb")
        for k, v in raw.items():
            if k not in RESERVED_KEYS:
                try:
                    out[k] = loads(v)
                except ValueError:
                    out[k] = v
    except (KeyError, ValueError, TypeError, RecursionError) as exc:
        raise WeightsError(
            f"{source}: srlab metadata is damaged ({_one_line(exc)}); re-save the model"
        ) from None
    if out["format_version"] > FORMAT_VERSION:
        raise WeightsError(
            f"{source}: written by a newer srlab (format {out['format_version']} > {FORMAT_VERSION}); upgrade srlab"
        )
    return out
