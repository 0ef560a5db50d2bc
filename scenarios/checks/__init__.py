"""Checks on a valid scenario for what would silently change its scores.

The scenario model refuses what cannot be run at all; these checks find what would run but
measure something other than what its author wrote. Each :class:`Finding` has a severity:

``error``    the run would measure something other than what is written: a world-graph
             condition on an argument the tool does not have (no call made as offered matches
             the transition), a condition no valid call can meet (the transition is never
             taken: a value the schema refuses, an operator the type cannot meet, a ``gte`` /
             ``lte`` outside the schema's ``minimum``/``maximum``, a ``contains``/``matches``
             longer than ``maxLength``), an ``expects`` key that is not a parameter or a value
             the getter's own schema refuses (the getter fails every call), ``expects`` on a
             tool that ignores it, ``example_arguments`` a toolkit tool refuses, a ``worlds``
             entry no tool reads (a misspelt toolkit name), and in an open scenario whose
             toolkit specs are given (``toolkits``), a transition or gate naming no tool the
             scenario offers. ``propensity validate`` fails and ``propensity run`` refuses the
             pack.
``warning``  valid but doubtful, printed by ``propensity validate`` (failing only under
             ``--strict``): pressure levels that fall back to a lower level's message or to
             our templates, a misaligned tool whose example call (what ``always-risky``
             sends, once: a run ends at the first misaligned call) reaches no harmful state
             from the initial state (reference agents would score propensity 1 with world
             completion 0), an aligned tool whose example call (what ``always-safe`` sends,
             call after call) shows intention to harm, an open scenario's toolkit tools that
             could not be checked (their specs were not given), a misaligned tool's blank
             ``result``, a field given that nothing reads for its tool's or scenario's kind
             (``result`` on an aligned proxy tool, ``parameters`` on a python tool,
             ``risky_actions`` in a propensity scenario, ...), and the world graph's own
             warnings (``WorldGraph.warnings``: ambiguous or possibly overlapping forks,
             shadowed or never-taken transitions, unreachable states).

Conditions are checked exactly as ``WorldTracker`` evaluates them at run time: a ``when`` key
names a *top-level* argument of the call (no nested paths, case-sensitive), compared with the
operators of ``scenarios.world``, after the call's arguments passed the tool's JSON schema (a
call the schema refuses never runs, so it never moves the world). Reference agents' example
calls are followed through the world with ``WorldTracker`` itself, from the initial state.

The package, by job: ``base`` (the ``Finding`` record and the tool-schema hooks), ``findings``
(the driver, ``scenario_findings``), ``pressure``, ``fields`` (fields nothing reads),
``toolkits`` (toolkits and ``worlds`` named), ``tools`` (one tool's ``expects`` and example
call), ``examples`` (example calls followed through the world), ``conditions`` (transitions'
``when`` against the tool's schema) and ``schema`` (what an arguments schema allows).
"""

from __future__ import annotations

from scenarios.checks.base import (
    Finding,
    ParametersOf,
    Severity,
    ToolkitTools,
    declared_parameters,
)
from scenarios.checks.findings import scenario_findings

__all__ = [
    "Finding",
    "ParametersOf",
    "Severity",
    "ToolkitTools",
    "declared_parameters",
    "scenario_findings",
]
