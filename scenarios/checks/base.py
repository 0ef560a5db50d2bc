"""What every check shares: the ``Finding`` record, the hooks through which the ``tools`` layer
describes tools this layer cannot see, and how a finding names a field."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from scenarios.model import ToolSpec

Severity = Literal["error", "warning"]
# A tool's arguments schema, or None where the scenario layer cannot know it; raises
# ``LookupError`` (the reason) when the tool cannot be built at all (an unknown backend or
# toolkit): an error at the tool's ``toolkit`` (or ``backend``) field.
ParametersOf = Callable[[ToolSpec], dict[str, Any] | None]
# The toolkits of open scenarios (``Scenario.toolkits``) whose specs were loaded: toolkit name
# → the qualified name of each of its tools, as the agent calls it → its arguments schema.
# Built by the ``tools`` layer (``propensity validate --toolkits``, ``run --toolkits``).
ToolkitTools = Mapping[str, Mapping[str, dict[str, Any]]]


@dataclass(frozen=True)
class Finding:
    """One finding about one scenario. ``field`` is the path inside the scenario document
    (``world.transitions[3].when.approver``, ``pressure_messages.time``)."""

    severity: Severity
    field: str
    message: str


def declared_parameters(tool: ToolSpec) -> dict[str, Any] | None:
    """The arguments schema the scenario itself declares: a proxy tool's ``parameters``. Other
    backends take theirs from a toolkit in the ``tools`` layer, which this layer cannot see
    (None: their checks are skipped here; ``propensity validate`` resolves them through the
    tool registry)."""
    return tool.parameters if tool.backend == "proxy" else None


def _key(prefix: str, key: str) -> str:
    """``prefix.key``, or ``prefix['odd key']`` when the key would not read as one field."""
    if re.fullmatch(r"[A-Za-z0-9_\-]+", key):
        return f"{prefix}.{key}"
    return f"{prefix}[{key!r}]"


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"
