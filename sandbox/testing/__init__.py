"""Test doubles shared by the end-to-end tests and the benchmark.

They live in the package (not under tests/) because the benchmark and the CLI start them too.
Exports resolve lazily so that `python -m sandbox.testing.openai_server` does not import the
module twice (once via this package, once as __main__), which runpy warns about.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sandbox.testing.openai_server import (
        FaultDecider,
        FaultDecision,
        Faults,
        Reply,
        Script,
        ScriptedOpenAIServer,
        ServerStats,
    )

__all__ = [
    "FaultDecider",
    "FaultDecision",
    "Faults",
    "Reply",
    "Script",
    "ScriptedOpenAIServer",
    "ServerStats",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from sandbox.testing import openai_server

        return getattr(openai_server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
