"""Which generator weights a stage exports as its result (``stages.<name>.keep``).

- ``last`` (default): the weights after the stage's last iteration.
- ``best_train_loss``: a copy of the generator's state at the step with the lowest total training loss
  (``l_total``; ``l_g_total`` in a gan stage). The loss of step ``t`` is computed with the weights after
  ``t`` updates, before step ``t``'s own update: those weights are kept, and ``iteration`` is ``t``. Under
  DDP the loss is rank 0's batch loss (rank 0 writes the files).

``best_train_loss`` is what the study's text and code set out to do. Its code, though, kept
``best = model.state_dict()``: a reference to the live tensors, which the optimiser then updated in place, so
in effect the study kept the last weights. Recipes that reproduce the study therefore use ``keep: last``;
``best_train_loss`` is for those who want the stated behaviour.

The choice is made on the device when the runner does not synchronise every step (CUDA): one masked copy of
the weights per step instead of a host round trip.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["BestWeights"]


class BestWeights:
    """The lowest-loss copy of ``model``'s state so far (``sync``: decide on the host, copy only when better)."""

    def __init__(self, model: nn.Module, *, sync: bool) -> None:
        self.model = model
        self.sync = sync
        self.state: dict[str, torch.Tensor] | None = None
        self.loss: torch.Tensor | None = None  # float32 scalar on the model's device; +inf before any step
        self.iteration: torch.Tensor | None = None  # int64 scalar; -1 before any step

    def _init(self, device: torch.device) -> None:
        self.state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.loss = torch.full((), float("inf"), dtype=torch.float32, device=device)
        self.iteration = torch.full((), -1, dtype=torch.long, device=device)

    def offer(self, loss: torch.Tensor, it: int) -> None:
        """The current weights scored ``loss`` at step ``it``: keep them if that is the lowest so far (call it
        before the step's update). A non-finite loss is never kept."""
        loss = loss.detach().float()
        if self.state is None:
            self._init(loss.device)
        sd = self.model.state_dict()
        if self.sync:
            if not bool(loss < self.loss):
                return
            for k, v in sd.items():
                self.state[k].copy_(v)
            self.loss.copy_(loss)
            self.iteration.fill_(it)
            return
        better = loss < self.loss
        for k, v in sd.items():
            self.state[k].copy_(torch.where(better, v, self.state[k]))
        self.loss.copy_(torch.where(better, loss, self.loss))
        self.iteration.copy_(torch.where(better, torch.full_like(self.iteration, it), self.iteration))

    @property
    def found(self) -> bool:
        return self.state is not None and int(self.iteration) >= 0

    def info(self) -> dict:
        """``{'rule', 'iteration', 'train_loss'}`` of the kept weights (for summaries and exports)."""
        if not self.found:
            return {"rule": "best_train_loss", "iteration": None, "train_loss": None}
        return {"rule": "best_train_loss", "iteration": int(self.iteration), "train_loss": float(self.loss)}

    def apply(self) -> bool:
        """Load the kept weights into the model; False when no step was seen."""
        if not self.found:
            return False
        self.model.load_state_dict(self.state)
        return True

    # --------------------------------------------------------------------------------------- checkpoint
    def state_dict(self) -> tuple[dict, dict | None]:
        """``(position, weights)``: the loss and iteration (plain tensors), and the kept weights."""
        if self.state is None:
            return {}, None
        return {"loss": self.loss.detach().cpu(), "iteration": int(self.iteration)}, self.state

    def load_state_dict(self, position: dict, weights: dict | None, device: torch.device) -> None:
        if not position or weights is None:
            self.state = self.loss = self.iteration = None
            return
        self._init(device)
        for k, v in weights.items():
            self.state[k].copy_(v)
        self.loss.copy_(position["loss"])
        self.iteration.fill_(int(position["iteration"]))
