"""Networks: SRCNN, RRDBNet (ESRGAN), the study's generator/discriminator, SRVGG, discriminators, VGG19,
interpolation.

Importing this package imports every architecture module; each registers its builders and presets in
:mod:`srlab.models.registry` (a leaf that imports none of them).
"""

from srlab.models import (  # noqa: F401  (registers them)
    bicubic,
    discriminators,
    rrdbnet,
    span,
    srcnn,
    srvgg,
    study,
    vgg,
)
from srlab.models.registry import ModelDescriptor, build_model, describe, list_models

__all__ = ["ModelDescriptor", "build_model", "describe", "list_models"]
