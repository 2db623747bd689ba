"""kd-harness: measure what knowledge distillation buys a 1D or 3D CNN, or your own PyTorch models.

The Python API lives in `harness.api` (`api.distill`, `api.bench`, `api.report`; `harness.bench` and
`harness.report` are the modules that do the work); every bad input raises `harness.HarnessError`.
"""
from harness.errors import HarnessError

__version__ = "0.1.0"
__all__ = ["HarnessError", "__version__"]
