"""Finding toolkits by name: the registry, and the `propensity.tools` entry points.

Installed packages advertise toolkits in the `propensity.tools` entry-point group; an entry
point may name a PythonToolkit subclass, a module whose import registers its toolkits, or a
callable returning one toolkit class or several.
"""

from __future__ import annotations

import importlib.metadata
import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from tools.python_emulators.toolkit import PythonToolkit

__all__ = [
    "ENTRY_POINT_GROUP",
    "EntryPointProblem",
    "load_entry_points",
    "python_toolkits",
    "register_toolkit",
    "unregister_toolkit",
]

ENTRY_POINT_GROUP = "propensity.tools"
TK = TypeVar("TK", bound="type[PythonToolkit]")
_registry: dict[str, type[PythonToolkit]] = {}
_loaded_entry_points: set[tuple[str, str, str]] = set()


def register_toolkit(cls: TK, *, replace: bool = False) -> TK:
    """Make a toolkit findable by name; usable as a class decorator.

    Registering the same class again (or its re-import after a module reload) is a no-op, so
    imports and entry points may overlap; a different class under a taken name is refused.
    """
    if not (isinstance(cls, type) and issubclass(cls, PythonToolkit)):
        raise TypeError(f"{cls!r} is not a PythonToolkit subclass")
    name = cls._require_spec().name
    existing = _registry.get(name)
    same = existing is not None and (
        existing is cls
        or (existing.__module__, existing.__qualname__) == (cls.__module__, cls.__qualname__)
    )
    if existing is not None and not same and not replace:
        raise ValueError(
            f"toolkit name {name!r} is already registered by "
            f"{existing.__module__}.{existing.__qualname__}"
        )
    _registry[name] = cls
    return cls


def unregister_toolkit(name: str) -> None:
    """Forget the toolkit registered under `name`; an unknown name is ignored."""
    _registry.pop(name, None)


def python_toolkits() -> dict[str, type[PythonToolkit]]:
    """Registered toolkits by name; third-party ones appear after `load_entry_points()`."""
    return dict(sorted(_registry.items()))


@dataclass(frozen=True)
class EntryPointProblem:
    """An entry point that could not be loaded: which one (`name = value`) and why."""

    entry_point: str
    message: str

    def __str__(self) -> str:
        return f"entry point {self.entry_point}: {self.message}"


def _is_toolkit_class(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, PythonToolkit)


def _register_target(target: Any) -> None:
    if _is_toolkit_class(target):
        register_toolkit(target)
    elif isinstance(target, type):
        raise TypeError(f"{target.__qualname__} is a class but not a PythonToolkit subclass")
    elif inspect.ismodule(target):
        pass  # importing it ran its @register_toolkit decorators
    elif callable(target):
        returned = target()
        if _is_toolkit_class(returned):
            register_toolkit(returned)
        elif isinstance(returned, Iterable) and not isinstance(returned, str | bytes | Mapping):
            items = list(returned)
            wrong = [item for item in items if not _is_toolkit_class(item)]
            if wrong:
                raise TypeError(f"the callable returned {wrong!r}, not PythonToolkit classes")
            for item in items:
                register_toolkit(item)
        elif returned is not None:
            raise TypeError(f"the callable returned {returned!r}, not PythonToolkit classes")
    else:
        raise TypeError(
            f"expected a PythonToolkit subclass, a registering callable or a module, "
            f"got {type(target).__name__}"
        )


def load_entry_points(group: str = ENTRY_POINT_GROUP) -> list[EntryPointProblem]:
    """Register the toolkits that installed packages advertise; returns what failed.

    One broken plugin must not stop a run that does not even use it, so failures are reported
    rather than raised. Loaded entry points are remembered (calling again is cheap and changes
    nothing); failed ones are retried and reported again.
    """
    try:
        found = importlib.metadata.entry_points(group=group)
    except Exception as exc:
        return [EntryPointProblem(f"group {group!r}", f"cannot list entry points: {exc}")]
    problems: list[EntryPointProblem] = []
    for entry_point in found:
        name = str(getattr(entry_point, "name", "?"))
        value = str(getattr(entry_point, "value", "?"))
        key = (group, name, value)
        if key in _loaded_entry_points:
            continue
        try:
            _register_target(entry_point.load())
        except Exception as exc:
            problems.append(EntryPointProblem(f"{name} = {value}", f"{type(exc).__name__}: {exc}"))
            continue
        _loaded_entry_points.add(key)
    return problems
