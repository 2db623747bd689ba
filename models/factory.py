"""Models by import path: one way in for the built-in families and a user's own `nn.Module`s.

A model spec (the `model_config` a checkpoint and a training summary record) is either

    {"family": "resnet1d", "in_channels": 1, ...}                  a built-in family (registry.py), or
    {"factory": "pkg.mod:make_teacher", "kwargs": {"width": 64}}   any callable returning an nn.Module.

The built-in families are factories too (`kd_models:resnet1d`, `kd_models:fcn1d`, `kd_models:c3d`, which
take the family config's keys as keyword arguments), so both forms reach a model through `build_model`.

User code runs only when a spec names it: importing `pkg.mod` runs that module. The folder the user works
in is searched before the installed environment (as `python -m` does), and the folder a module was found
in is recorded (`describe_source`), so a later bench from another folder can still import it.
"""
from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable

from harness.errors import OptionError

# `package.module:callable` (the callable may be a dotted attribute path, e.g. `mod:Class.build`)
_PATH_RE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


class ModelFactoryError(OptionError):
    """An import path that does not import, names no callable, or a factory that fails or returns no module."""


def parse_import_path(text: Any, what: str = "model factory") -> tuple[str, str]:
    """('pkg.mod', 'callable') from 'pkg.mod:callable'; ModelFactoryError on anything else."""
    if not isinstance(text, str) or not _PATH_RE.match(text.strip()):
        raise ModelFactoryError(f"{what} must be an import path 'package.module:callable', got {text!r}")
    module, attr = text.strip().split(":", 1)
    return module, attr


def _search_roots(extra: str | None = None) -> list[str]:
    roots = [os.getcwd()]
    if extra:
        roots.append(extra)
    return roots


def _import(module: str, what: str, root_hint: str | None = None):
    """Import `module`, the working folder (and a recorded root) first on sys.path; the roots added stay
    there (and in PYTHONPATH), so worker processes that time the model import it the same way."""
    for root in reversed(_search_roots(root_hint)):
        if root and root not in sys.path and os.path.isdir(root):
            sys.path.insert(0, root)
            paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
            if root not in paths:
                os.environ["PYTHONPATH"] = os.pathsep.join([root, *paths])
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            raise ModelFactoryError(f"{what}: no module named {exc.name!r} (searched the working folder "
                                    f"{os.getcwd()} and the installed environment)") from None
        raise ModelFactoryError(f"{what}: importing {module!r} failed: No module named {exc.name!r}") from None
    except Exception as exc:  # noqa: BLE001 - the user's module raised while importing
        raise ModelFactoryError(f"{what}: importing {module!r} raised {type(exc).__name__}: "
                                f"{_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def resolve_factory(path: str, what: str = "model factory", root_hint: str | None = None) -> Callable:
    """The callable an import path names (imported now); ModelFactoryError when it cannot be had."""
    module_name, attr = parse_import_path(path, what)
    obj: Any = _import(module_name, what, root_hint)
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ModelFactoryError(f"{what}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ModelFactoryError(f"{what}: {path} is a {type(obj).__name__}, not a callable")
    return obj


def check_kwargs(kwargs: Any, what: str = "model factory") -> dict[str, Any]:
    """Keyword arguments as a JSON-able dict (they are recorded in checkpoints and results)."""
    if kwargs is None:
        return {}
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
        raise ModelFactoryError(f"{what} arguments must be an object of name -> value, got {kwargs!r}")
    try:
        return json.loads(json.dumps(kwargs))
    except (TypeError, ValueError):
        raise ModelFactoryError(f"{what} arguments must be JSON values (numbers, strings, lists, objects)") from None


def factory_spec(path: str, kwargs: dict[str, Any] | None = None, what: str = "model factory") -> dict[str, Any]:
    """A canonical factory spec, checked for syntax only (nothing imported yet)."""
    parse_import_path(path, what)
    return {"factory": path.strip(), "kwargs": check_kwargs(kwargs, what)}


def is_factory_spec(config: Any) -> bool:
    return isinstance(config, dict) and "factory" in config


def build_from_factory(spec: dict[str, Any], what: str = "model factory", root_hint: str | None = None):
    """Call the spec's factory with its kwargs; the result must be an nn.Module."""
    from torch import nn

    extra = sorted(set(spec) - {"factory", "kwargs"})
    if extra:
        raise ModelFactoryError(f"{what} spec has unknown keys {', '.join(extra)}; it takes factory and kwargs")
    fn = resolve_factory(spec["factory"], what, root_hint)
    kwargs = check_kwargs(spec.get("kwargs"), what)
    try:
        model = fn(**kwargs)
    except TypeError as exc:
        raise ModelFactoryError(f"{what}: {spec['factory']}(**{kwargs}) raised TypeError: {_first_line(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - the user's factory raised
        raise ModelFactoryError(f"{what}: {spec['factory']} raised {type(exc).__name__}: {_first_line(exc)}") from None
    if not isinstance(model, nn.Module):
        raise ModelFactoryError(f"{what}: {spec['factory']} returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def describe_source(spec: dict[str, Any]) -> dict[str, Any]:
    """What pins a factory model besides its spec: the source file of its module and that file's sha256,
    and the folder the top-level package was imported from (None for a module without a file)."""
    if not is_factory_spec(spec):
        return {}
    module_name, _ = parse_import_path(spec["factory"])
    module = sys.modules.get(module_name) or _import(module_name, "model factory")
    try:
        source = inspect.getsourcefile(module)
    except TypeError:
        source = None
    out: dict[str, Any] = {"import_path": spec["factory"], "kwargs": spec.get("kwargs", {}),
                           "source_file": None, "source_sha256": None, "import_root": None}
    if source and os.path.isfile(source):
        out["source_file"] = str(Path(source).resolve())
        out["source_sha256"] = hashlib.sha256(Path(source).read_bytes()).hexdigest()
        out["import_root"] = describe_import_root(spec["factory"])
    return out


def describe_import_root(path: str) -> str | None:
    """The folder a factory's top-level package was imported from (for worker processes and later runs)."""
    module_name, _ = parse_import_path(path)
    module = sys.modules.get(module_name)
    source = getattr(module, "__file__", None)
    if not source:
        return None
    depth = module_name.count(".") + (1 if Path(source).name == "__init__.py" else 0)
    return str(Path(source).resolve().parents[depth])
