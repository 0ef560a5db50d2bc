"""`propensity tools new NAME`: a working Python tool emulator and its test, ready to edit.

The generated toolkit is deliberately complete (state, two tools, a declared error, a test
that exercises all of it) so a new user starts from something that runs and changes it,
rather than from a blank file and the reference documentation.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path

TOOLKIT_TEMPLATE = '''"""{name}: a stateful tool emulator (from propensity tools new)."""

from __future__ import annotations

from typing import Any

from tools.python_emulators import PythonToolkit, ToolError, register_toolkit, tool


@register_toolkit
class {name}(PythonToolkit):
    """Items with a status that an agent can inspect and change."""

    name = "{name}"

    def initial_state(self, seed: dict[str, Any]) -> dict[str, Any]:
        """The episode's starting world; a scenario's `worlds: {{{name}: ...}}` replaces it."""
        return {{"items": dict(seed.get("items", {{"item-1": "active", "item-2": "paused"}}))}}

    @tool
    def get_status(self, item_id: str) -> dict[str, Any]:
        """Get the status of one item.

        Args:
            item_id: identifier of the item
        Returns:
            item_id (string): the item
            status (string): its current status
        Raises:
            ItemNotFound: there is no item with that identifier
        """
        if item_id not in self.state["items"]:
            raise ToolError("ItemNotFound", f"no item {{item_id!r}}")
        return {{"item_id": item_id, "status": self.state["items"][item_id]}}

    @tool
    def set_status(self, item_id: str, status: str) -> dict[str, Any]:
        """Change the status of one item.

        Args:
            item_id: identifier of the item
            status: the new status
        Returns:
            item_id (string): the item
            previous (string): its status before the change
            status (string): its status now
        Raises:
            ItemNotFound: there is no item with that identifier
        """
        previous = self.get_status(item_id)["status"]
        self.state["items"][item_id] = status
        return {{"item_id": item_id, "previous": previous, "status": status}}
'''

TEST_TEMPLATE = '''"""Tests of the {name} tool emulator (generated with it)."""

from __future__ import annotations

import asyncio
import json

from {module} import {name}
from scenarios.records import Naming, ToolCall
from tools import ToolContext, ToolSet


def run(toolset: ToolSet, ctx: ToolContext, name: str, **arguments: object) -> dict:
    call = ToolCall(id=name, name=name, arguments=arguments)
    result = asyncio.run(toolset.execute(call, ctx))
    return {{"ok": result.ok, **json.loads(result.output)}}


def test_state_persists_within_an_episode_and_errors_are_declared() -> None:
    toolset = ToolSet({name}.tools())
    ctx = ToolContext(episode_id="e1", scenario=None, naming=Naming.HARMFUL)
    assert run(toolset, ctx, "{name}GetStatus", item_id="item-1")["status"] == "active"
    changed = run(toolset, ctx, "{name}SetStatus", item_id="item-1", status="retired")
    assert changed["previous"] == "active" and changed["status"] == "retired"
    assert run(toolset, ctx, "{name}GetStatus", item_id="item-1")["status"] == "retired"
    missing = run(toolset, ctx, "{name}GetStatus", item_id="nope")
    assert not missing["ok"] and missing["error"]["name"] == "ItemNotFound"


def test_episodes_do_not_share_state() -> None:
    toolset = ToolSet({name}.tools({{"items": {{"a": "on"}}}}))
    first = ToolContext(episode_id="e1", scenario=None, naming=Naming.HARMFUL)
    second = ToolContext(episode_id="e2", scenario=None, naming=Naming.HARMFUL)
    run(toolset, first, "{name}SetStatus", item_id="a", status="off")
    assert run(toolset, second, "{name}GetStatus", item_id="a")["status"] == "on"
'''


def snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def scaffold(name: str, directory: Path) -> list[Path]:
    if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", name) or keyword.iskeyword(name):
        raise ValueError(f"toolkit names are CamelCase identifiers (e.g. Greenhouse), not {name!r}")
    module = snake_case(name)
    toolkit_path = directory / f"{module}.py"
    test_path = directory / f"test_{module}.py"
    existing = [str(p) for p in (toolkit_path, test_path) if p.exists()]
    if existing:
        raise FileExistsError(f"refusing to overwrite {', '.join(existing)}")
    directory.mkdir(parents=True, exist_ok=True)
    toolkit_path.write_text(TOOLKIT_TEMPLATE.format(name=name), encoding="utf-8")
    test_path.write_text(TEST_TEMPLATE.format(name=name, module=module), encoding="utf-8")
    return [toolkit_path, test_path]
