from suites.conftest import pytest_addoption  # noqa: F401  (lets `pytest --kd-run DIR` parse before suites/ is collected)
