"""Capture what a C library prints to the process's stderr (file descriptor 2) during one call.

libtiff reports decoding errors by printing them itself, and Pillow offers no hook to route them: without
this, a corrupt TIFF would print libtiff's lines next to srlab's own one-line error. The capture is short
(one decode) and the text is handed back, so it can go into that line instead.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

from srlab.atomic import scratch_file

__all__ = ["c_stderr"]


@contextlib.contextmanager
def c_stderr(lines: list[str]) -> Iterator[list[str]]:
    """Redirect fd 2 into a temporary file for the block; its non-empty lines are appended to ``lines``."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable stderr: nothing to keep quiet
        yield lines
        return
    with scratch_file() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", "replace")
            lines.extend(ln.strip() for ln in text.splitlines() if ln.strip())
