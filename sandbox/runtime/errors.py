"""The one error a run raises before it starts: the run cannot start as configured."""

from __future__ import annotations


class RunError(Exception):
    """The run cannot start (bad configuration, unknown agent or episode kind, a kind's own
    refusal, an unusable run directory). Raised before anything is written where it can be."""
