"""User-facing errors.

Every error a user can cause (bad file, missing data, wrong weights, bad config) is raised as an
:class:`SrlabError` whose message is one line naming the thing and the fix. The CLI prints it as a
single line (no traceback) and exits non-zero.
"""

from __future__ import annotations


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
