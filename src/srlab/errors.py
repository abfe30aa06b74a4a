"""User-facing errors.

Every error a user can cause (bad file, missing data, wrong weights, bad config) is raised as an
:class:`SrlabError` whose message is one line naming the thing and the fix. The CLI prints it as a
single line (no traceback) and exits non-zero.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ConfigError", "DataError", "ImageError", "SrlabError", "WeightsError", "shown"]

SHOWN_CHARS = 200


class SrlabError(Exception):
    """An error with a one-line, user-facing message."""


class ImageError(SrlabError):
    """An input image could not be decoded or is unusable."""


class WeightsError(SrlabError):
    """A weight file is missing, corrupt, unsafe or does not match an architecture."""


class DataError(SrlabError):
    """A data set is missing, empty or incomplete."""


class ConfigError(SrlabError):
    """A configuration key or value is invalid."""


def shown(value: Any, *, limit: int = SHOWN_CHARS, quote: bool = True) -> str:
    """``repr(value)`` (or ``str`` with ``quote=False``) for an error message, cut to about ``limit``
    characters with the full length said: a value read from a file may be megabytes long."""
    text = repr(value) if quote else str(value)
    text = " ".join(text.split()) if "\n" in text else text
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"
