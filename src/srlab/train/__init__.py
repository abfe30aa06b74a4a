"""Training: configs (:mod:`.config`), losses (:mod:`.losses`), stage steps (:mod:`.recipes`), the loop with
checkpoints/resume/DDP (:mod:`.loop`) and validation (:mod:`.validate`).

``import srlab.train`` stays light; use ``from srlab.train.loop import train`` (imports torch).
"""

__all__ = ["load_config", "train"]


def __getattr__(name: str):
    if name == "load_config":
        from srlab.train.config import load_config

        return load_config
    if name == "train":
        from srlab.train.loop import train

        return train
    raise AttributeError(f"module 'srlab.train' has no attribute {name!r}")
