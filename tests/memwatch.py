"""Peak resident memory of a block of code, for tests that bound what hostile input may allocate.

``ru_maxrss`` only knows the process's lifetime peak, which earlier tests may already have set, so the block
is watched by a thread sampling ``/proc/self/statm`` every few milliseconds instead.
"""

from __future__ import annotations

import os
import threading


def rss() -> int:
    """This process's resident memory now, in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class RssWatch:
    """``with RssWatch() as w: ...`` then ``w.growth_mb``: the peak above the level at entry."""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval

    def __enter__(self):
        self.base = self.peak = rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss())

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.base) / 2**20


def in_fresh_process(fn, *args):
    """``fn(*args)`` in a freshly started interpreter (``spawn``), its result or its exception back here.

    A long test session fragments the heap, so the same allocations can raise its resident memory far more
    than in a fresh process: a bound on what hostile input may allocate is measured there, where only the
    input's own cost shows. ``fn`` must be a module-level function of an importable module.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()
