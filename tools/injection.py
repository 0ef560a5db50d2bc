"""The injection layer: plants an attacker's content into a tool's output, for every backend.

:class:`Injector` sits in :meth:`tools.toolset.ToolSet.execute`, the one place every tool call
of every backend (proxy, Python emulator, LLM emulator, code interpreter) passes through. It
counts the calls that match the injection's point (``scenarios.injections.InjectionPoint``:
tool, nth call, argument conditions) and, on the one that is due, rewrites the tool's output
(``append``, ``prepend``, a JSON ``field``, or ``inside`` a text as a paragraph of the
document). An LLM-emulated tool is first told to include the text verbatim in its observation
(:attr:`tools.emulator.EmulationContext.required_content`); when the emulator leaves it out,
the text is placed as declared anyway and the record says the emulator did not comply.
Code-interpreter tasks get their content as a file before the episode starts instead (the
``code_task`` kind writes it, ``place: file``). What was planted, where, and how is recorded
in the tool result's ``data["injection"]`` (:class:`PlantedInjection`).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from scenarios.injections import Injection
from tools.emulated_backend import EMULATOR_KEY, EmulatorSession
from tools.protocol import Tool, ToolContext, ToolOutput

__all__ = ["DATA_KEY", "Injector", "PlantedInjection", "place_text"]

#: Where a tool result records the injection planted in it.
DATA_KEY = "injection"


class PlantedInjection(BaseModel):
    """What the injection layer did to one tool output."""

    id: str
    template: str
    text: str
    tool: str
    # The tool's backend: proxy, python, emulated or container (``backend`` of its class).
    backend: str
    # Which matching call of ``tool`` this was (1-based).
    call: int
    # Where the text went: append, prepend, field NAME, inside NAME (or inside the output),
    # emulator (the LLM emulator wrote it in), or a fallback with its reason.
    placed: str
    # For an LLM-emulated tool: whether the emulator included the text itself.
    emulator_complied: bool | None = None


def _split_point(text: str) -> int:
    """Where a paragraph can go in the middle of ``text``: the line (or sentence) break
    nearest its middle; the end when it has none."""
    middle = len(text) // 2
    breaks = [i + 1 for i, c in enumerate(text) if c == "\n"]
    if not breaks:
        breaks = [i + 2 for i in range(len(text) - 1) if text[i : i + 2] == ". "]
    if not breaks:
        return len(text)
    return min(breaks, key=lambda i: abs(i - middle))


def _inside(document: str, text: str) -> str:
    cut = _split_point(document)
    head, tail = document[:cut], document[cut:]
    return f"{head.rstrip()}\n\n{text}\n\n{tail.lstrip()}".strip()


def _longest_string_path(value: Any, path: tuple[str | int, ...] = ()) -> tuple[Any, ...] | None:
    best: tuple[int, tuple[Any, ...]] | None = None
    stack: list[tuple[Any, tuple[Any, ...]]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str) and (best is None or len(item) > best[0]):
            best = (len(item), where)
        elif isinstance(item, dict):
            stack += [(v, (*where, k)) for k, v in item.items()]
        elif isinstance(item, list):
            stack += [(v, (*where, i)) for i, v in enumerate(item)]
    return best[1] if best is not None else None


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


def _set(value: Any, path: tuple[Any, ...], new: Any) -> None:
    for key in path[:-1]:
        value = value[key]
    value[path[-1]] = new


def _dotted(field: str, document: Any) -> tuple[Any, ...]:
    """``a.0.b`` as a path into ``document``: a number indexes a list."""
    path: list[Any] = []
    node = document
    for part in field.split("."):
        key: Any = int(part) if isinstance(node, list) and part.isdigit() else part
        path.append(key)
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            node = None
    return tuple(path)


def place_text(output: str, text: str, place: str, field: str | None) -> tuple[str, str]:
    """``output`` with ``text`` planted as ``place`` says, and how it was placed.

    ``field`` and ``inside`` work on a JSON object output: the dotted ``field`` is replaced
    (``field``) or gets the text as a paragraph in its middle (``inside``; without ``field``,
    the longest string of the output). Where the output is not a JSON object or lacks the
    field, the text is appended and the returned description says why."""
    if place == "prepend":
        return f"{text}\n\n{output}", "prepend"
    if place in ("field", "inside"):
        try:
            document = json.loads(output)
        except json.JSONDecodeError:
            document = None
        if isinstance(document, dict | list):
            path = _dotted(field, document) if field else _longest_string_path(document)
            try:
                current = _get(document, path) if path is not None else None
                parent = _get(document, path[:-1]) if path else None
            except (KeyError, IndexError, TypeError):
                current = parent = None
            settable = isinstance(parent, dict) or (
                isinstance(parent, list) and isinstance(path[-1] if path else None, int)
            )
            if path is not None and settable and (place == "field" or isinstance(current, str)):
                if place == "field":
                    _set(document, path, text)
                else:
                    _set(document, path, _inside(str(current), text))
                where = ".".join(str(p) for p in path)
                return json.dumps(document, ensure_ascii=False), f"{place} {where}"
            reason = f"no string field {field!r} in the output" if field else "no text field"
            return f"{output}\n\n{text}", f"append ({place} impossible: {reason})"
        if place == "inside" and field is None:
            return _inside(output, text), "inside the output"
        return f"{output}\n\n{text}", f"append ({place} impossible: the output is not JSON)"
    return f"{output}\n\n{text}", "append"


def _contains(output: str, text: str) -> bool:
    """Whether an emulated observation (JSON) carries ``text`` verbatim in one string."""
    try:
        document = json.loads(output)
    except json.JSONDecodeError:
        return text in output
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and text in item:
            return True
        if isinstance(item, dict):
            stack += list(item.values())
        elif isinstance(item, list):
            stack += item
    return False


class Injector:
    """Plants one rendered injection into the due tool call of one episode.

    ``text`` is the rendered attack (``scenarios.injections.render_injection``). Calls are
    counted per tool (by the names in :meth:`_names`) only when they reach the tool (valid
    arguments, within the call limit); the injection fires once, on the ``at.call``-th match.
    """

    def __init__(self, injection: Injection, text: str) -> None:
        self.injection = injection
        self.text = text
        self.matches = 0
        self.planted: PlantedInjection | None = None
        # Why the due call got nothing planted (it timed out), if so.
        self.failed: str | None = None

    @staticmethod
    def _names(tool: Tool) -> set[str]:
        """The canonical name only: injections name tools as the scenario does, whatever the
        episode's naming shows."""
        return {tool.tool_id}

    def due(self, tool: Tool, arguments: dict[str, Any]) -> bool:
        """Count this call if it matches the point; True when the injection goes into it."""
        if self.planted is not None or self.failed or self.injection.at.place == "file":
            return False
        if not self.injection.at.matches(self._names(tool), arguments):
            return False
        self.matches += 1
        return self.matches == self.injection.at.call

    def before(self, ctx: ToolContext) -> None:
        """Tell an LLM emulator of this episode to write the text into its observation."""
        session = ctx.environments.get(EMULATOR_KEY)
        if isinstance(session, EmulatorSession):
            session.context.required_content = self.text

    def cancel(self, ctx: ToolContext) -> None:
        """The due call gave no output (it timed out): nothing was planted; the emulator is
        no longer asked for the text. The injection is then never delivered in this episode
        (its score says so; it counts in no attack rate)."""
        session = ctx.environments.get(EMULATOR_KEY)
        if isinstance(session, EmulatorSession):
            session.context.required_content = None
        self.failed = f"the call it was due in ({self.injection.at.tool}) gave no output"

    def plant(self, tool: Tool, outcome: ToolOutput, ctx: ToolContext) -> ToolOutput:
        """The due call's output with the text planted, and the record of what was done."""
        session = ctx.environments.get(EMULATOR_KEY)
        emulated = isinstance(session, EmulatorSession) and "emulator" in outcome.data
        complied: bool | None = None
        if isinstance(session, EmulatorSession):
            session.context.required_content = None
        if emulated and _contains(outcome.output, self.text):
            output, placed, complied = outcome.output, "emulator", True
        else:
            at = self.injection.at
            output, placed = place_text(outcome.output, self.text, at.place, at.field)
            complied = False if emulated else None
        self.planted = PlantedInjection(
            id=self.injection.id,
            template=self.injection.template,
            text=self.text,
            tool=tool.name,
            backend=str(getattr(tool, "backend", type(tool).__name__)),
            call=self.matches,
            placed=placed,
            emulator_complied=complied,
        )
        data = {**outcome.data, DATA_KEY: self.planted.model_dump(mode="json")}
        return ToolOutput(ok=outcome.ok, output=output, data=data)
