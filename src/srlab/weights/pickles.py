"""Why PyTorch's safe loader refused a pickle, in words a user can act on.

``torch.load(weights_only=True)`` refuses a pickle that asks for anything outside its tensor allowlist;
its ``UnpicklingError`` names the global in one of several phrasings, and for some pickles (protocol 4+
frames) names only an opcode. :func:`explain_refusal` turns that into one line: the file needs code
execution to load (naming the global it wanted, read from the message or, failing that, from a
disassembly of the pickle with :mod:`pickletools`, which executes nothing), it was refused, and none of
it ran. Anything else is a damaged file. :func:`oversized_request` refuses, before loading, a pickle that
would make an allowlisted constructor allocate far more memory than the file holds, or whose zip entries
unpack to far more than the file.
"""

from __future__ import annotations

import _compat_pickle
import io
import pickletools
import re
import zipfile
from pathlib import Path

__all__ = ["allowed_bytes", "explain_refusal", "oversized_request", "pickle_globals"]

_SCAN_BYTES = 64 << 20  # a legacy torch file holds its pickles before the tensor data
_STRING_OPS = {
    "SHORT_BINUNICODE",
    "BINUNICODE",
    "BINUNICODE8",
    "UNICODE",
    "SHORT_BINSTRING",
    "BINSTRING",
    "STRING",
}
_MESSAGE_GLOBAL = (
    re.compile(r"Unsupported global: GLOBAL (\S+) was not an allowed global"),
    re.compile(r"unsupported GLOBAL (\S+) whose module \S+ is blocked"),
)
_OPNAMES = {ord(op.code): op.name for op in pickletools.opcodes}


def _pickle_bytes(path: Path) -> bytes:
    with open(path, "rb") as f:
        head = f.read(4)
        if head.startswith(b"PK"):
            with zipfile.ZipFile(f) as z:
                member = next((n for n in z.namelist() if n.endswith("data.pkl")), None)
                if member is None or z.getinfo(member).file_size > _SCAN_BYTES:
                    return b""
                return z.read(member)
        f.seek(0)
        return f.read(_SCAN_BYTES)


def _py3_name(module: str, name: str = "") -> str:
    # protocol 0-2 pickles name Python 2 modules (__builtin__); the unpickler maps them the same way
    module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
    return f"{_compat_pickle.IMPORT_MAPPING.get(module, module)}.{name}"


_LEGACY_CONSTRUCTOR = re.compile(r"^torch\.(cuda\.)?(sparse\.)?[A-Za-z0-9]+Tensor$")
_INT_OPS = {"INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4"}


def _scan(path: Path) -> tuple[list[str], int]:
    """(globals in order, largest integer literal) of the pickle(s) in ``path``, by disassembly."""
    try:
        data = _pickle_bytes(path)
    except Exception:  # noqa: BLE001 - a file we cannot even open as a zip has nothing to report
        return [], 0
    stream = io.BytesIO(data)
    found: list[str] = []
    strings: list[str] = []
    memo: dict[int, str | None] = {}
    biggest = 0
    for _ in range(5):  # a legacy torch file is five pickles back to back, then raw tensor bytes
        last: str | None = None
        try:
            for op, arg, _pos in pickletools.genops(stream):
                name = op.name
                if name in ("GLOBAL", "INST"):
                    found.append(_py3_name(*str(arg).split(" ", 1)))
                elif name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.append(_py3_name(strings[-2], strings[-1]))
                elif name in _STRING_OPS:
                    strings.append(str(arg))
                elif name in _INT_OPS and isinstance(arg, int):
                    biggest = max(biggest, abs(arg))
                elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                    memo[int(arg)] = last
                elif name == "MEMOIZE":
                    memo[len(memo)] = last
                elif name in ("GET", "BINGET", "LONG_BINGET") and memo.get(int(arg)):
                    strings.append(memo[int(arg)])
                last = str(arg) if name in _STRING_OPS else None
        except Exception:  # noqa: BLE001 - damaged or not a pickle past here: keep what was read
            break
        if stream.tell() >= len(data):
            break
    return found, biggest


def pickle_globals(path: str | Path) -> list[str]:
    """``module.name`` of every global the pickle(s) in ``path`` import, in order, found by disassembly
    (nothing is executed); [] when the file cannot be read as a pickle."""
    return _scan(Path(path))[0]


def oversized_request(path: str | Path) -> str | None:
    """Why loading ``path`` would allocate far more memory than the file holds, or None.

    PyTorch's allowlist includes ``bytearray`` and the legacy tensor constructors (``torch.FloatTensor``),
    which a pickle can call with a bare integer: a few bytes that ask for gigabytes. No real checkpoint
    needs a buffer larger than itself."""
    path = Path(path)
    size = path.stat().st_size
    unpacked = _zip_request(path, size)
    if unpacked:
        return unpacked
    found, biggest = _scan(path)
    allocates = any(g == "builtins.bytearray" or _LEGACY_CONSTRUCTOR.match(g) for g in found)
    if allocates and biggest > 4 * size + (1 << 20):
        return (
            f"{path}: its pickle asks for a {biggest:,}-byte buffer from a {size:,}-byte file; refused before "
            "loading (no checkpoint needs more memory than it holds); get the file again from its publisher"
        )
    return None


def allowed_bytes(size: int) -> int:
    """The most memory a weight file of ``size`` bytes may unpack to or materialise: a few times the file
    (tied weights count twice, a deflated zip unpacks a little) plus a margin for tiny files."""
    return 4 * size + (16 << 20)


def _zip_request(path: Path, size: int) -> str | None:
    """Why the zip entries of a torch file would unpack to far more than the file, or None. Sizes are the
    entries' uncompressed ``file_size`` (what loading allocates), never their compressed size: a deflated
    entry of a few kB can unpack to gigabytes, and reading stops at the recorded size."""
    try:
        with open(path, "rb") as f:
            if not f.read(4).startswith(b"PK"):
                return None
            f.seek(0)
            with zipfile.ZipFile(f) as z:
                infos = z.infolist()
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return None  # torch.load words a damaged archive
    for i in infos:
        if i.filename.endswith("data.pkl") and i.file_size > _SCAN_BYTES:
            return (
                f"{path}: its pickle {i.filename} unpacks to {i.file_size:,} bytes (a checkpoint's pickle holds "
                f"only names and shapes; at most {_SCAN_BYTES:,}); refused before loading; get the file again"
            )
    total = sum(i.file_size for i in infos)
    if total > allowed_bytes(size):
        return (
            f"{path}: its zip entries unpack to {total:,} bytes from a {size:,}-byte file; refused before "
            "loading (a checkpoint's tensors do not compress that well); get the file again from its publisher"
        )
    return None


def _allowed() -> set[str]:
    try:
        from torch._weights_only_unpickler import _get_allowed_globals

        return set(_get_allowed_globals())
    except Exception:  # noqa: BLE001 - a private helper; without it only torch's own names count as safe
        return set()


def _unsafe(globals_: list[str]) -> list[str]:
    allowed = _allowed()
    out: list[str] = []
    for g in globals_:
        safe = g in allowed if allowed else g.startswith(("torch.", "collections.OrderedDict"))
        if not safe and g not in out:
            out.append(g)
    return out


def explain_refusal(path: str | Path, message: str, help_text: str) -> str | None:
    """The one-line reason for a refused pickle (an ``UnpicklingError`` ``message`` of
    ``torch.load(weights_only=True)``), or None when the file is simply damaged."""
    named = next((m.group(1) for rx in _MESSAGE_GLOBAL if (m := rx.search(message))), None)
    wanted = _unsafe(pickle_globals(path))
    if named:
        # PyTorch may print only the name ("exec") where the disassembly has the module path too
        full = next((g for g in wanted if g == named or g.endswith("." + named)), named)
        wanted = [full] + [g for g in wanted if g != full]
    refused = "so srlab refused it and its code was never run"
    if wanted:
        shown = ", ".join(wanted[:3]) + (f" and {len(wanted) - 3} more" if len(wanted) > 3 else "")
        return f"{path}: loading it needs code execution (its pickle wants {shown}), {refused}; {help_text}"
    op = re.search(r"Unsupported operand (\d+)", message)
    if op:
        opname = _OPNAMES.get(int(op.group(1)), f"#{op.group(1)}")
        return (
            f"{path}: its pickle uses opcode {opname}, which PyTorch's safe loader does not accept, {refused}; "
            "re-save its tensors with torch.save (default pickle protocol) or as .safetensors"
        )
    if "Can only build" in message or "Can only create new object" in message:
        return f"{path}: its pickle builds objects other than tensors, {refused}; {help_text}"
    return None
