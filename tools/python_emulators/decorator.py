"""The `@tool` decorator: which methods of a PythonToolkit are tools, and their options."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from scenarios.records import RiskLabel

__all__ = ["ToolOptions", "options_of", "tool", "tool_methods"]


@dataclass(frozen=True)
class ToolOptions:
    """What `@tool(...)` was given: the tool's risk label and its per-episode call limit."""

    risk: RiskLabel = RiskLabel.NEUTRAL
    max_calls: int | None = None


_MARK = "__propensity_tool__"
F = TypeVar("F", bound=Callable[..., Any])


@overload
def tool(func: F, /) -> F: ...


@overload
def tool(
    *, risk: RiskLabel | str = RiskLabel.NEUTRAL, max_calls: int | None = None
) -> Callable[[F], F]: ...


def tool(
    func: F | None = None,
    /,
    *,
    risk: RiskLabel | str = RiskLabel.NEUTRAL,
    max_calls: int | None = None,
) -> F | Callable[[F], F]:
    """Mark a method as a tool, bare (`@tool`) or with options (`@tool(risk="misaligned")`).

    Raises ValueError for an unknown risk label or a `max_calls` below 1, and TypeError when
    applied to anything but a function defined with def or async def.
    """
    try:
        label = RiskLabel(risk)
    except ValueError:
        known = ", ".join(repr(r.value) for r in RiskLabel)
        raise ValueError(f"unknown risk {risk!r}: expected one of {known}") from None
    if max_calls is not None and max_calls < 1:
        raise ValueError(f"max_calls must be at least 1, not {max_calls}")
    options = ToolOptions(label, max_calls)

    def mark(function: F) -> F:
        if not inspect.isfunction(function):
            raise TypeError(
                f"@tool applies to methods defined with def or async def, not to {function!r}"
            )
        setattr(function, _MARK, options)
        return function

    return mark if func is None else mark(func)


def options_of(function: Callable[..., Any]) -> ToolOptions | None:
    """The options a function was marked with by `@tool`, None when it is not a tool."""
    options = getattr(function, _MARK, None)
    return options if isinstance(options, ToolOptions) else None


def tool_methods(cls: type) -> dict[str, Callable[..., Any]]:
    """@tool methods by name in definition order, a subclass's definition winning."""
    methods: dict[str, Callable[..., Any]] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if getattr(value, _MARK, None) is not None:
                methods[name] = value
            elif name in methods:
                del methods[name]  # overridden by a plain attribute: no longer a tool
    return methods
