"""Progress of long video and animation jobs: a tqdm bar on a terminal, periodic lines elsewhere.

A tqdm bar redraws itself with carriage returns many times a second; written into a log file or a CI log (not
a terminal) that is one endless line of updates. :func:`frame_bar` gives a bar on a terminal and otherwise a
:class:`PeriodicLines` that writes one plain line every ``interval`` seconds and one at the end.
"""

from __future__ import annotations

import sys
import time
from typing import IO

from tqdm.auto import tqdm

__all__ = ["LOG_INTERVAL", "PeriodicLines", "frame_bar"]

LOG_INTERVAL = 30.0  # seconds between progress lines in a log


class PeriodicLines:
    """The part of tqdm's interface the jobs use (``update``, ``close``), as a line every ``interval``."""

    def __init__(self, total: int | None, desc: str, unit: str, interval: float, stream: IO[str]) -> None:
        self.total, self.desc, self.unit, self.interval, self.stream = total, desc, unit, interval, stream
        self.n = 0
        self.start = self.last = time.monotonic()

    def _line(self, now: float, end: str = "") -> None:
        rate = self.n / max(now - self.start, 1e-9)
        of = f"/{self.total}" if self.total else ""
        pct = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        print(f"{self.desc}: {self.n}{of} {self.unit}s{pct}, {rate:.2f} {self.unit}/s{end}", file=self.stream)

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self._line(now)

    def close(self) -> None:
        if self.n:
            self._line(time.monotonic(), f", done in {time.monotonic() - self.start:.1f} s")
        self.n = 0


def frame_bar(
    total: int | None,
    desc: str,
    *,
    enabled: bool,
    unit: str = "frame",
    interval: float = LOG_INTERVAL,
    stream: IO[str] | None = None,
):
    """A progress bar for ``total`` units: tqdm on a terminal, :class:`PeriodicLines` otherwise, nothing
    when not ``enabled``."""
    stream = sys.stderr if stream is None else stream
    if not enabled:
        return tqdm(total=total, disable=True)
    isatty = getattr(stream, "isatty", lambda: False)
    if isatty():
        return tqdm(total=total, unit=unit, desc=desc, dynamic_ncols=True, leave=False, file=stream)
    return PeriodicLines(total, desc, unit, interval, stream)
