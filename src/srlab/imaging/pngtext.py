"""Large PNG text chunks: left out before decoding instead of failing the image.

Pillow refuses a PNG whose ``tEXt``/``zTXt``/``iTXt`` chunk holds (or inflates to) more than
``PngImagePlugin.MAX_TEXT_CHUNK`` bytes, or whose text adds up past ``MAX_TEXT_MEMORY``, with an error
raised while it reads the header; the picture itself is fine. :func:`drop_large_text` removes exactly those
chunks from the bytes (the others keep their CRCs), so the image decodes and the caller says what was left
out. Raising Pillow's limits instead would let a small zTXt inflate to gigabytes.
"""

from __future__ import annotations

import struct
import zlib

from PIL import PngImagePlugin

__all__ = ["drop_large_text"]

_SIG = b"\x89PNG\r\n\x1a\n"
_TEXT = {b"tEXt", b"zTXt", b"iTXt"}


def _limits() -> tuple[int, int]:
    return int(PngImagePlugin.MAX_TEXT_CHUNK), int(PngImagePlugin.MAX_TEXT_MEMORY)


def _inflated(body: bytes, start: int, cap: int) -> int:
    """Bytes the zlib stream at ``body[start:]`` inflates to, counting no further than ``cap + 1``."""
    d = zlib.decompressobj()
    try:
        return len(d.decompress(body[start:], cap + 1))
    except zlib.error:
        return 0  # damaged: Pillow's own reading reports it, or ignores it as it does


def _text_size(kind: bytes, body: bytes, cap: int) -> int:
    if kind == b"tEXt":
        return len(body)
    nul = body.find(b"\0")
    if nul < 0:
        return len(body)
    if kind == b"zTXt":
        return _inflated(body, nul + 2, cap)
    # iTXt: keyword \0 flag method language \0 translated \0 text
    flag = body[nul + 1 : nul + 2]
    rest = body.find(b"\0", body.find(b"\0", nul + 3) + 1) + 1
    if flag == b"\1" and rest > 0:
        return _inflated(body, rest, cap)
    return len(body)


def drop_large_text(data: bytes) -> tuple[bytes, str]:
    """``(data, "")`` unchanged, or the PNG without the text chunks Pillow would refuse and a note saying
    so."""
    if not data.startswith(_SIG) or len(data) < 1 << 20 and b"zTXt" not in data and b"iTXt" not in data:
        return data, ""
    chunk_cap, memory_cap = _limits()
    keep: list[bytes] = [_SIG]
    pos, total, dropped, dropped_bytes = len(_SIG), 0, 0, 0
    while pos + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 12 + length
        if end > len(data):
            break  # truncated: left as it is for the decoder to report
        if kind in _TEXT:
            size = _text_size(kind, data[pos + 8 : pos + 8 + length], chunk_cap)
            if size > chunk_cap or total + size > memory_cap:
                dropped += 1
                dropped_bytes += length
                pos = end
                continue
            total += size
        keep.append(data[pos:end])
        pos = end
        if kind == b"IEND":
            break
    if not dropped:
        return data, ""
    keep.append(data[pos:])
    note = (
        f"{dropped} PNG text chunk(s) ({dropped_bytes:,} bytes) over Pillow's {chunk_cap:,}-byte text limit "
        "left out; the image itself is read"
    )
    return b"".join(keep), note
