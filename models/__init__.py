"""Model families (installed as `kd_models`): 1D/3D CNN teachers and students for distillation.

    model = build_model(default_config("1d", "teacher", in_channels=1, num_classes=6, input_shape=(1, 427)))
    model.set_input_stats(mean, std)       # normalisation lives inside the model (and its ONNX export)
    logits = model(x)                      # == model.head(model.features(x))
"""
from .common import InputNorm, KDModel, count_macs, count_params
from .registry import (
    FAMILIES,
    FAMILY_KIND,
    KINDS,
    ARCH_ROLES,
    build_model,
    default_config,
    describe_family,
    validate_config,
)

__all__ = [
    "FAMILIES",
    "FAMILY_KIND",
    "KINDS",
    "ARCH_ROLES",
    "InputNorm",
    "KDModel",
    "build_model",
    "count_macs",
    "count_params",
    "default_config",
    "describe_family",
    "validate_config",
]
