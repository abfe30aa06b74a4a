"""Several training folders mixed with weights.

Stream position ``p`` draws its source from a generator seeded by ``(seed, p)`` with probabilities
proportional to the weights, then takes the item at position ``p`` of that source's own shuffled stream
(:class:`~srlab.data.datasets.SampleStream` seeded by ``seed`` and the source's index). Like a single set,
the samples of a step are a pure function of the seed and the position: resume needs no sampler state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from srlab.data.datasets import SampleStream, SRTrainSet, item_rng, stack_items
from srlab.errors import DataError

__all__ = ["MixedTrainSet"]


class MixedTrainSet:
    """:class:`SRTrainSet` objects drawn from with probabilities ``weights / sum(weights)``."""

    def __init__(
        self, sets: Sequence[SRTrainSet], weights: Sequence[float], *, seed: int = 0, shuffle: bool = True
    ) -> None:
        if not sets or len(sets) != len(weights):
            raise DataError("a mixture needs one weight per training folder")
        w = np.asarray(weights, dtype=np.float64)
        if not np.all(np.isfinite(w)) or np.any(w <= 0):
            raise DataError(f"data.train weights must be > 0, not {list(weights)}")
        if len({s.lr_on_device for s in sets}) > 1 or len({s.channels for s in sets}) > 1:
            raise DataError("the folders of data.train must all give the same kind of LR and colour")
        self.sets = list(sets)
        self.probs = w / w.sum()
        self.streams = [SampleStream(len(s), seed * 1009 + k, shuffle=shuffle) for k, s in enumerate(sets)]
        self.lr_on_device = sets[0].lr_on_device

    def __len__(self) -> int:
        return sum(len(s) for s in self.sets)

    @property
    def channels(self) -> int:
        return self.sets[0].channels

    def fingerprint(self) -> str:
        h = hashlib.blake2b(digest_size=12)
        for s, p in zip(self.sets, self.probs):
            h.update(f"{s.fingerprint()}|{p:.12g}|".encode())
        return h.hexdigest()

    def source_of(self, seed: int, position: int) -> int:
        """The index of the folder stream position ``position`` draws from."""
        rng = np.random.default_rng([int(seed), int(position), 0x313C])
        return int(rng.choice(len(self.sets), p=self.probs))

    def batch(self, stream: SampleStream, positions: Sequence[int], seed: int = 0):
        """Like :meth:`SRTrainSet.batch` (``stream`` only sets the epoch length of the whole mixture)."""
        items = []
        for p in positions:
            k = self.source_of(seed, p)
            items.append(self.sets[k].get(self.streams[k].item(p), item_rng(seed, p)))
        return stack_items(items)
