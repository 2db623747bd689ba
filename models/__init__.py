"""Model families (installed as `kd_models`): 1D/3D CNN teachers and students for distillation.

    model = build_model(default_config("1d", "teacher", in_channels=1, num_classes=6, input_shape=(1, 427)))
    model.set_input_stats(mean, std)       # normalisation lives inside the model (and its ONNX export)
    logits = model(x)                      # == model.head(model.features(x))
"""
from .common import InputNorm, KDModel, count_params
from .factory import ModelFactoryError, describe_source, factory_spec, is_factory_spec, parse_import_path
from .macs import count_macs, count_macs_detail
from .registry import (
    FAMILIES,
    FAMILY_KIND,
    KINDS,
    ARCH_ROLES,
    build_model,
    c3d,
    default_config,
    fcn1d,
    model_label,
    resnet1d,
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
    "ModelFactoryError",
    "build_model",
    "c3d",
    "count_macs_detail",
    "describe_source",
    "factory_spec",
    "fcn1d",
    "is_factory_spec",
    "model_label",
    "parse_import_path",
    "resnet1d",
    "count_macs",
    "count_params",
    "default_config",
    "describe_family",
    "validate_config",
]
