"""Networks, one unit per architecture family, each registering one record in :mod:`srlab.models.registry`.

Families: ``srcnn``, ``rrdbnet``, ``srvgg``, the study's generator and discriminator (``study``),
interpolation (``bicubic``), the resize wrapper (``resized``), ``vgg`` (perceptual features) and the GAN
discriminators; each is ``<family>.py`` (networks, presets, engine hints, weight pointers, the record) plus,
where it reads foreign checkpoints, ``<family>_layouts.py`` (key layouts and ncnn graphs, no torch modules).
Importing this package imports every family module, which registers itself in the leaf registry.

Flat modules rather than a package per family: ``srlab.models.rrdbnet`` and friends keep the import paths
callers use, and a family is still exactly its module(s) plus one line below.
"""

from srlab.models import bicubic, discriminators, resized, rrdbnet, srcnn, srvgg, study, vgg  # noqa: F401

# after every native family: a native family keeps a name a spandrel-backed one also claims
from srlab.models import spandrel_archs  # noqa: F401, E402  isort: skip
from srlab.models.registry import ModelDescriptor, build_model, describe, list_models

__all__ = ["ModelDescriptor", "build_model", "describe", "list_models"]
