"""Training: configs (:mod:`.config`), losses (:mod:`.losses`), optimisers and schedules (:mod:`.optim`),
stage steps (:mod:`.recipes`), the stage loop with resume and DDP (:mod:`.trainer`, :mod:`.state`,
:mod:`.batches`, :mod:`.distributed`), its files (:mod:`.outputs`, :mod:`.checkpoint`, :mod:`.logs`) and
validation (:mod:`.validate`).

``import srlab.train`` stays light: ``srlab.train.train``, ``srlab.train.Trainer`` and
``srlab.train.TrainResult`` import torch on first use.
"""

__all__ = ["TrainResult", "Trainer", "load_config", "train"]


def __getattr__(name: str):
    if name == "load_config":
        from srlab.train.config import load_config

        return load_config
    if name in ("train", "Trainer", "TrainResult"):
        from srlab.train import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module 'srlab.train' has no attribute {name!r}")
