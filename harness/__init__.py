"""kd-harness: measure what knowledge distillation buys a 1D or 3D CNN."""

__version__ = "0.1.0"
