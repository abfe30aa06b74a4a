"""The type of a training config's ``data.train``: one folder (a name or path) or a weighted list of folders
(:class:`TrainSource`; mixed by :class:`srlab.data.mixture.MixedTrainSet`). pydantic only, so the config
schema imports it without torch."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Discriminator, Tag

__all__ = ["TrainFolders", "TrainSource"]


class TrainSource(BaseModel):
    """One folder of a weighted mix (``data.train: [{path: A, weight: 2}, {path: B}]``)."""

    model_config = ConfigDict(extra="forbid")

    path: str
    weight: float = 1.0  # samples are drawn from the folders in proportion to their weights
    lr: str | None = None  # its paired LR folder (else found by layout, or synthesised)


def _kind(value: Any) -> str:
    return "folders" if isinstance(value, (list, tuple)) else "folder"


# validated as the one member the value's kind names, so an error names the list entry, not each member
TrainFolders = Annotated[
    Annotated[str, Tag("folder")] | Annotated[list[TrainSource], Tag("folders")], Discriminator(_kind)
]
