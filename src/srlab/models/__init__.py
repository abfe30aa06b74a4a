"""Networks: SRCNN, RRDBNet (ESRGAN), SRVGG (Real-ESRGAN compact), discriminators, VGG19, interpolation."""

from srlab.models.registry import ModelDescriptor, build_model, describe, list_models

__all__ = ["ModelDescriptor", "build_model", "describe", "list_models"]
