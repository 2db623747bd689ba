"""Family registry: config validation, `build_model`, and the default teacher/student configs.

A model config is a plain JSON-able dict, e.g.

    {"family": "resnet1d", "in_channels": 1, "num_classes": 6,
     "widths": [32, 64, 128], "kernels": [7, 5, 3], "strides": [2, 2, 2], "dropout": 0.1}

Every key of the family is required and no other key is allowed, so a checkpoint's config
names its architecture exactly.
"""
from __future__ import annotations

import math
from typing import Any, Callable

from harness.errors import OptionError

from .common import NORM_MODES
from .conv1d import FCN1d, ResNet1d
from .conv3d import C3D

FAMILIES: tuple[str, ...] = ("fcn1d", "resnet1d", "c3d")
KINDS: tuple[str, ...] = ("1d", "3d")
ARCH_ROLES: tuple[str, ...] = ("teacher", "student")  # which architecture, not harness.results.ROLES

FAMILY_KIND = {"fcn1d": "1d", "resnet1d": "1d", "c3d": "3d"}
_CLASSES = {"fcn1d": FCN1d, "resnet1d": ResNet1d, "c3d": C3D}

# key -> (kind of value, one-line description used in error messages)
_COMMON = {
    "family": ("family", "one of " + ", ".join(FAMILIES)),
    "in_channels": ("pos_int", "input channels"),
    "num_classes": ("pos_int", "output classes"),
}
_SCHEMAS: dict[str, dict[str, tuple[str, str]]] = {
    "fcn1d": {
        **_COMMON,
        "widths": ("pos_int_list", "channels of each conv layer"),
        "kernels": ("pos_int_list", "kernel size of each conv layer (same length as widths)"),
        "strides": ("pos_int_list", "stride of each conv layer (same length as widths)"),
        "dropout": ("prob", "dropout before the head, in [0, 1)"),
    },
    "resnet1d": {
        **_COMMON,
        "widths": ("pos_int_list", "channels of each residual block"),
        "kernels": ("pos_int_list", "kernel sizes of the convs inside every block"),
        "strides": ("pos_int_list", "stride of each block's first conv (same length as widths)"),
        "dropout": ("prob", "dropout before the head, in [0, 1)"),
    },
    "c3d": {
        **_COMMON,
        "widths": ("pos_int_list", "channels of each stage"),
        "convs": ("pos_int_list", "conv layers in each stage (same length as widths)"),
        "pools": ("triple_list", "max-pool [d, h, w] after each stage, [1, 1, 1] for none (same length as widths)"),
        "stem_stride": ("triple", "[d, h, w] stride of the first conv"),
        "kernel": ("odd_int", "cubic kernel size of every conv, odd"),
        "dropout": ("prob", "dropout before the head, in [0, 1)"),
    },
}
# Keys a config may leave out (every family): name -> (kind, description, default). A config
# written before the key existed means the default, so older checkpoints load unchanged.
_OPTIONAL: dict[str, tuple[str, str, Any]] = {
    "normalize": ("norm_mode", "input normalisation inside the model: dataset (per-channel training-set "
                  "mean/std), sample (z-normalise each sample's channels), sample_scale (sample, plus each sample's "
                  "log-std as one more channel per input channel), none", "dataset"),
}
_SAME_LENGTH = {"fcn1d": ("kernels", "strides"), "resnet1d": ("strides",), "c3d": ("convs", "pools")}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_value(family: str, key: str, kind: str, value: Any) -> Any:
    """Return the value in canonical JSON form (lists, ints, floats) or raise OptionError."""
    where = f"model config ({family}) key {key!r}"
    if kind == "pos_int":
        if not _is_int(value) or value <= 0:
            raise OptionError(f"{where} must be a positive integer, got {value!r}")
        return int(value)
    if kind == "odd_int":
        if not _is_int(value) or value <= 0 or value % 2 == 0:
            raise OptionError(f"{where} must be a positive odd integer, got {value!r}")
        return int(value)
    if kind == "norm_mode":
        if value not in NORM_MODES:
            raise OptionError(f"{where} must be one of {', '.join(NORM_MODES)}, got {value!r}")
        return str(value)
    if kind == "prob":
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not (0.0 <= float(value) < 1.0):
            raise OptionError(f"{where} must be a number in [0, 1), got {value!r}")
        return float(value)
    if kind == "pos_int_list":
        if not isinstance(value, (list, tuple)) or not value or not all(_is_int(v) and v > 0 for v in value):
            raise OptionError(f"{where} must be a non-empty list of positive integers, got {value!r}")
        return [int(v) for v in value]
    if kind == "triple":
        if not isinstance(value, (list, tuple)) or len(value) != 3 or not all(_is_int(v) and v > 0 for v in value):
            raise OptionError(f"{where} must be a list of 3 positive integers [d, h, w], got {value!r}")
        return [int(v) for v in value]
    if kind == "triple_list":
        ok = isinstance(value, (list, tuple)) and value and all(
            isinstance(t, (list, tuple)) and len(t) == 3 and all(_is_int(v) and v > 0 for v in t) for t in value
        )
        if not ok:
            raise OptionError(f"{where} must be a non-empty list of [d, h, w] positive-integer triples, got {value!r}")
        return [[int(v) for v in t] for t in value]
    raise AssertionError(kind)


def validate_config(config: Any) -> dict:
    """Check a model config against its family's schema; return a canonical copy."""
    if not isinstance(config, dict):
        raise OptionError(f"model config must be a dict, got {type(config).__name__}")
    family = config.get("family")
    if family not in _SCHEMAS:
        raise OptionError(f"unknown model family {family!r}; valid families: {', '.join(FAMILIES)}")
    schema = _SCHEMAS[family]
    missing = [k for k in schema if k not in config]
    if missing:
        raise OptionError(
            f"model config ({family}) is missing {', '.join(missing)}; {family} needs keys: {', '.join(schema)}"
        )
    extra = sorted(str(k) for k in config if k not in schema and k not in _OPTIONAL)
    if extra:
        raise OptionError(
            f"model config ({family}) has unknown keys {', '.join(extra)}; {family} takes keys: "
            f"{', '.join([*schema, *_OPTIONAL])}"
        )
    out = {"family": family}
    for key, (kind, _desc) in schema.items():
        if key != "family":
            out[key] = _check_value(family, key, kind, config[key])
    for key, (kind, _desc, default) in _OPTIONAL.items():
        out[key] = _check_value(family, key, kind, config.get(key, default))
    for key in _SAME_LENGTH[family]:
        if len(out[key]) != len(out["widths"]):
            raise OptionError(
                f"model config ({family}) key {key!r} has {len(out[key])} entries, widths has {len(out['widths'])}"
            )
    return out


def build_model(config: dict, *, what: str = "model", root_hint: str | None = None):
    """Build the model a spec describes (call torch.manual_seed first for a reproducible init): a built-in
    family's config, or a factory spec {"factory": "pkg.mod:callable", "kwargs": {...}} (factory.py).
    A family config goes through its family's factory below, the same door as any user's factory."""
    from .factory import build_from_factory, is_factory_spec

    if is_factory_spec(config):
        return build_from_factory(config, what, root_hint)
    cfg = validate_config(config)
    return build_from_factory({"factory": f"kd_models:{cfg['family']}",
                               "kwargs": {k: v for k, v in cfg.items() if k != "family"}}, what)


def _family_factory(family: str):
    def make(**config):
        """A built-in family as a factory: keyword arguments are the family config's keys (family aside)."""
        return _CLASSES[family](validate_config({"family": family, **config}))

    make.__name__ = make.__qualname__ = family
    return make


# `kd_models:fcn1d`, `kd_models:resnet1d`, `kd_models:c3d`: reachable by import path like any user factory.
fcn1d, resnet1d, c3d = (_family_factory(f) for f in FAMILIES)


def model_label(config: dict) -> str:
    """What a model spec is, in a word: its family, or its factory's import path."""
    return str(config.get("family") or config.get("factory"))


def describe_family(family: str) -> dict[str, str]:
    """Key -> description for a family (for help text)."""
    if family not in _SCHEMAS:
        raise OptionError(f"unknown model family {family!r}; valid families: {', '.join(FAMILIES)}")
    return {**{k: d for k, (_kind, d) in _SCHEMAS[family].items()},
            **{k: f"{d} (optional, default {default})" for k, (_kind, d, default) in _OPTIONAL.items()}}


# --------------------------------------------------------------------------- default configs

def _spatial_shape(kind: str, in_channels: int, input_shape) -> tuple[int, ...]:
    dims = 1 if kind == "1d" else 3
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise OptionError(f"input_shape must be a tuple of sizes, got {input_shape!r}") from None
    if len(shape) == dims + 1:
        if shape[0] != in_channels:
            raise OptionError(f"input_shape {shape} has {shape[0]} channels, in_channels is {in_channels}")
        shape = shape[1:]
    if len(shape) != dims or any(d <= 0 for d in shape):
        want = "(C, L)" if kind == "1d" else "(C, D, H, W)"
        raise OptionError(f"input_shape for kind {kind} must be {want} with positive sizes, got {tuple(input_shape)}")
    return shape


def _stride_to(size: int, target: int) -> int:
    """Smallest power-of-two stride that brings `size` down to <= target (at least 1)."""
    s = 1
    while math.ceil(size / s) > target:
        s *= 2
    return s


def _fit_head(widths: list[int], num_classes: int) -> list[int]:
    """Widths scaled up so that no layer is narrower than the head it feeds (the last width >= classes).

    A 52-class set on a student whose last layer has 24 channels squeezes 52 decisions through 24
    features: on PigCVP that student lost 21 points, a wider one 2.4. Tasks with few classes keep
    the defaults unchanged.
    """
    if widths[-1] >= num_classes:
        return widths
    f = num_classes / widths[-1]
    return [max(w, math.ceil(w * f)) for w in widths]


def _default_1d(role: str, in_channels: int, num_classes: int, length: int) -> dict:
    # The first block strides so it sees <= ~256 steps (OSULeaf 427 -> 214), capped at 4 so the
    # kernel-7 conv still covers every sample; later blocks halve the length again. A stride of 4 on
    # OSULeaf cost the teacher 9 points (88% vs 97%, 150 epochs), so resolution is worth its compute.
    first = min(_stride_to(length, 256), 4)
    if role == "teacher":
        widths, kernels, dropout = [32, 64, 128], [7, 5, 3], 0.1
    else:
        widths, kernels, dropout = [12, 24], [7, 5, 3], 0.0
    widths = _fit_head(widths, num_classes)
    strides = [first] + [2] * (len(widths) - 1)
    return {
        "family": "resnet1d", "in_channels": in_channels, "num_classes": num_classes,
        "widths": widths, "kernels": kernels, "strides": strides, "dropout": dropout,
    }


def _default_3d(role: str, in_channels: int, num_classes: int, dhw: tuple[int, int, int]) -> dict:
    # The stem conv strides by 2 every axis longer than 8 (moving-digits 16x32x32 -> 8x16x16, voxels
    # 32^3 -> 16^3; capped at 2 so the 3-wide kernel still covers every voxel); each stage but the
    # last then max-pools by 2 while the axis is still > 1, so any input of >= 1 voxel per axis is
    # valid. The teacher's stem is thin (full-resolution BN/ReLU/pool dominate CPU time) and its
    # width sits in the later stages, where the volume is small and capacity is cheap.
    stem = [min(_stride_to(n, 8), 2) for n in dhw]
    if role == "teacher":
        widths, convs, dropout = [8, 32, 64, 128], [1, 1, 2, 2], 0.2
    else:
        widths, convs, dropout = [4, 8, 16, 32], [1, 1, 1, 1], 0.0
    widths = _fit_head(widths, num_classes)
    size = [math.ceil(n / s) for n, s in zip(dhw, stem)]
    pools = []
    for _ in widths[:-1]:
        pool = [2 if n >= 2 else 1 for n in size]
        size = [n // p for n, p in zip(size, pool)]
        pools.append(pool)
    pools.append([1, 1, 1])  # last stage goes straight into the global average pool
    return {
        "family": "c3d", "in_channels": in_channels, "num_classes": num_classes,
        "widths": widths, "convs": convs, "pools": pools, "stem_stride": stem, "kernel": 3, "dropout": dropout,
    }


_DEFAULTS: dict[str, Callable[..., dict]] = {"1d": _default_1d, "3d": _default_3d}


def default_config(kind: str, role: str, in_channels: int, num_classes: int, input_shape) -> dict:
    """The harness's default teacher or student for a task of this kind and input shape.

    The student has >= 10x fewer parameters and >= 10x fewer MACs per sample than the teacher,
    except where a many-class head needs wider layers (`_fit_head`); the training summary says so.
    """
    if kind not in KINDS:
        raise OptionError(f"unknown model kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    if role not in ARCH_ROLES:
        raise OptionError(f"unknown model role {role!r}; valid roles: {', '.join(ARCH_ROLES)}")
    for name, v in (("in_channels", in_channels), ("num_classes", num_classes)):
        if not _is_int(v) or v <= 0:
            raise OptionError(f"{name} must be a positive integer, got {v!r}")
    spatial = _spatial_shape(kind, in_channels, input_shape)
    cfg = _DEFAULTS[kind](role, int(in_channels), int(num_classes), spatial[0] if kind == "1d" else spatial)
    return validate_config(cfg)
