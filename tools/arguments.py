"""Minimal valid arguments synthesised from a JSON schema.

Reference agents and scripted test models must make *valid* calls to tools they know nothing
about beyond the function-calling schema; this gives them the smallest arguments that pass
validation, preferring values the schema itself suggests (examples, defaults, enums, consts).
The rule lives in ``scenarios.schemas`` (the lowest layer), so ``propensity validate`` predicts
exactly the calls the reference agents make; this module is its name in the ``tools`` layer.
"""

from __future__ import annotations

from scenarios.schemas import example_arguments, example_for_schema

__all__ = ["example_arguments", "example_for_schema"]
