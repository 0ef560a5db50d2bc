"""PythonToolkit: the base class whose subclasses are Python-emulated toolkits.

A deterministic scenario (a file system, a bank ledger, an inbox) needs no LLM to answer tool
calls: a few lines of Python keep the world consistent for free and make every rerun identical.
Adding one must stay cheap, so a toolkit is a single class whose decorated methods *are* the
spec: signatures give the parameters, Google-style docstrings the descriptions. The class is
checked when it is defined, so a missing description fails at import (a TypeError listing every
problem, each naming the class, method and parameter) instead of reaching an agent as an empty
schema.

Also here: ``PythonTool``, one toolkit method as a Tool, and the errors a call can end in. A
call runs the method on a copy of the episode's world (ctx.state[WORLD_KEY][toolkit name]) and
commits the copy only on success. Observations are JSON text; failures are error results
(`{"error": {"name", "message"}}`), never exceptions: a ToolError the method raises keeps its
name, any other exception becomes InternalError with its traceback in the result's data. (One
module: a toolkit builds its tools and each tool calls back into its toolkit class.)
"""

from __future__ import annotations

import copy
import inspect
import json
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from pydantic import ValidationError

from tools.protocol import Tool, ToolContext, ToolOutput
from tools.python_emulators.decorator import ToolOptions, options_of, tool_methods
from tools.python_emulators.docstrings import paragraphs
from tools.python_emulators.signatures import validation_reason
from tools.python_emulators.spec import tooldef as build_tooldef
from tools.toolkits import ToolDef, Toolkit, describe_tool, parameters_schema

__all__ = [
    "INTERNAL_ERROR",
    "INVALID_ARGUMENTS",
    "WORLD_KEY",
    "PythonTool",
    "PythonToolkit",
    "ToolError",
]

# ctx.state[WORLD_KEY][toolkit name] holds each toolkit's world for the episode.
WORLD_KEY = "world"
INTERNAL_ERROR = "InternalError"
INVALID_ARGUMENTS = "InvalidArguments"
_TRACEBACK_LIMIT = 4000


class ToolError(Exception):
    """A failure the tool declares in its `Raises:` section, shown to the agent as an error.

    Kept apart from every other exception so that a toolkit bug (reported as InternalError)
    is never mistaken for the world refusing the agent.
    """

    def __init__(self, name: str, message: str) -> None:
        super().__init__(name, message)
        self.name = name
        self.message = message

    def __str__(self) -> str:
        return f"{self.name}: {self.message}"


class PythonTool:
    """One toolkit method as a Tool; the world it acts on lives in the episode's context."""

    # The kind of backend, as injection metrics group by it (``tools.injection``).
    backend = "python"

    def __init__(
        self,
        toolkit: type[PythonToolkit],
        spec: Toolkit,
        tooldef: ToolDef,
        method: str,
        seed: Mapping[str, Any],
        options: ToolOptions,
    ) -> None:
        self.toolkit = toolkit
        self.tooldef = tooldef
        self.name = spec.qualified_name(tooldef)
        self.tool_id = self.name
        self.description = describe_tool(tooldef)
        self.parameters = parameters_schema(tooldef)
        self.risk = options.risk
        self.max_calls = options.max_calls
        self.method = method
        self.seed = seed
        self._toolkit_name = spec.name
        self._declared = frozenset(e.name for e in tooldef.exceptions)
        self._integers = frozenset(p.name for p in tooldef.parameters if p.type == "integer")
        signature = inspect.signature(getattr(toolkit, method))
        self._signature = signature.replace(parameters=list(signature.parameters.values())[1:])

    def _arguments(self, arguments: dict[str, Any]) -> dict[str, Any]:
        # JSON Schema's "integer" admits 3.0; the method was promised an int.
        values = {
            key: int(value)
            if key in self._integers and isinstance(value, float) and value.is_integer()
            else value
            for key, value in copy.deepcopy(arguments).items()  # never alias the recorded call
        }
        bound = self._signature.bind(**values)
        bound.apply_defaults()
        return dict(bound.arguments)

    async def call(self, arguments: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        data: dict[str, Any] = {"toolkit": self._toolkit_name, "changed": False}
        try:
            kwargs = self._arguments(arguments)
        except TypeError as exc:
            # Only reachable when called outside ToolSet, which validates the schema first.
            return self._error(INVALID_ARGUMENTS, str(exc), {**data, "bad_arguments": True})
        try:
            world = self.toolkit._world(ctx, self.seed)
            # The method works on a copy committed only on success, so a declared failure, a
            # bug or a timeout halfway through never leaves the world half-changed.
            instance = self.toolkit(copy.deepcopy(world), seed=self.seed, ctx=ctx)
            result = getattr(instance, self.method)(**kwargs)
            if inspect.isawaitable(result):
                result = await result
            output = json.dumps(result, sort_keys=True, ensure_ascii=False)
            after = instance.state
            if not isinstance(after, dict):
                raise TypeError(f"self.state became {type(after).__name__}, not a dict")
            summary = instance.world_summary()
            if summary is not None:
                json.dumps(summary)
        except ToolError as error:
            data["error"] = error.name
            if error.name not in self._declared:
                data["undeclared_exception"] = True
            return self._error(error.name, error.message, data)
        except Exception as exc:
            data["internal_error"] = True
            data["traceback"] = traceback.format_exc()[-_TRACEBACK_LIMIT:]
            return self._error(INTERNAL_ERROR, f"{type(exc).__name__}: {exc}", data)
        data["changed"] = after != world
        if data["changed"]:
            world.clear()
            world.update(after)
        if summary is not None:
            data["world_after"] = summary
        if isinstance(result, dict):
            missing = [r.name for r in self.tooldef.returns if r.name not in result]
            if missing:
                data["missing_returns"] = missing  # the docstring promised them: a toolkit bug
        return ToolOutput(ok=True, output=output, data=data)

    def _error(self, name: str, message: str, data: dict[str, Any]) -> ToolOutput:
        output = json.dumps({"error": {"name": name, "message": message}}, ensure_ascii=False)
        return ToolOutput(ok=False, output=output, data=data)


def _own_doc(cls: type) -> str | None:
    """The nearest docstring below PythonToolkit, whose own text describes no toolkit."""
    for klass in cls.__mro__:
        if klass is PythonToolkit:
            return None
        doc = klass.__dict__.get("__doc__")
        if isinstance(doc, str) and doc.strip():
            return doc
    return None


_INSTANCE_ATTRIBUTES = frozenset({"state", "seed", "ctx"})


class PythonToolkit:
    """Base class of Python-emulated toolkits (see the module docstring for why).

    Subclasses set `name`, describe the toolkit in their docstring, build the episode's world
    in `initial_state`, and implement tools as `@tool` methods over `self.state`. Intermediate
    bases that are not toolkits themselves say so with `class Base(PythonToolkit, abstract=True)`.
    """

    name: ClassVar[str]
    category: ClassVar[str | None] = None
    name_for_human: ClassVar[str | None] = None

    _spec: ClassVar[Toolkit | None] = None
    _methods: ClassVar[dict[str, str]] = {}
    _options: ClassVar[dict[str, ToolOptions]] = {}

    def __init__(
        self,
        state: dict[str, Any] | None = None,
        *,
        seed: Mapping[str, Any] | None = None,
        ctx: ToolContext | None = None,
    ) -> None:
        self.state: dict[str, Any] = state if state is not None else {}
        self.seed: Mapping[str, Any] = seed if seed is not None else {}
        # The episode's context, for the rare tool that must read the scenario's config.
        self.ctx = ctx

    def __init_subclass__(cls, *, abstract: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._spec = None
        cls._methods = {}
        cls._options = {}
        if abstract:
            return
        where = cls.__qualname__
        problems: list[str] = []
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            problems.append(f"{where}: set the class attribute `name` (the toolkit's name)")
        doc = _own_doc(cls)
        if doc is None:
            problems.append(f"{where}: a toolkit needs a docstring, its description for the agent")
        methods: dict[str, Callable[..., Any]] = tool_methods(cls)
        if not methods:
            problems.append(f"{where}: a toolkit needs at least one @tool method")
        reserved = sorted(set(methods) & (set(vars(PythonToolkit)) | _INSTANCE_ATTRIBUTES))
        if reserved:
            problems.append(f"{where}: {', '.join(reserved)} would hide PythonToolkit's own")
        tooldefs: list[ToolDef] = []
        for method_name, function in methods.items():
            tooldef = build_tooldef(function, f"{where}.{method_name}", problems)
            options = options_of(function)
            if tooldef is not None and options is not None:
                tooldefs.append(tooldef)
                cls._methods[tooldef.name] = method_name
                cls._options[tooldef.name] = options
        if problems:
            raise TypeError("invalid Python toolkit:\n- " + "\n- ".join(problems))
        assert isinstance(name, str) and doc is not None
        try:
            cls._spec = Toolkit(
                name=name,
                name_for_human=cls.name_for_human,
                description="\n\n".join(paragraphs(doc)),
                category=cls.category,
                tools=tooldefs,
                source=f"python:{cls.__module__}.{cls.__qualname__}",
            )
        except ValidationError as exc:
            raise TypeError(
                f"invalid Python toolkit:\n- {where}: {validation_reason(exc)}"
            ) from None

    @classmethod
    def _require_spec(cls) -> Toolkit:
        if cls._spec is None:
            raise TypeError(f"{cls.__qualname__} is abstract: it defines no toolkit")
        return cls._spec

    @classmethod
    def spec(cls) -> Toolkit:
        """A copy, so a caller editing it (say, to export) cannot change the live toolkit."""
        return cls._require_spec().model_copy(deep=True)

    @classmethod
    def tools(
        cls, seed: Mapping[str, Any] | None = None, *, only: Iterable[str] | None = None
    ) -> list[Tool]:
        """The toolkit's tools for episodes seeded with `seed`; `only` picks some by name."""
        spec = cls._require_spec()
        frozen_seed = copy.deepcopy(dict(seed or {}))
        tooldefs = spec.tools if only is None else [spec.tool(name) for name in only]
        return [
            PythonTool(
                cls,
                spec,
                tooldef,
                cls._methods[tooldef.name],
                frozen_seed,
                cls._options[tooldef.name],
            )
            for tooldef in tooldefs
        ]

    @classmethod
    def world_of(cls, ctx: ToolContext) -> dict[str, Any] | None:
        """The toolkit's world in an episode, for evaluators judging what the agent did to it."""
        worlds = ctx.state.get(WORLD_KEY)
        world = worlds.get(cls._require_spec().name) if isinstance(worlds, dict) else None
        return world if isinstance(world, dict) else None

    @classmethod
    def _world(cls, ctx: ToolContext, seed: Mapping[str, Any]) -> dict[str, Any]:
        worlds = ctx.state.setdefault(WORLD_KEY, {})
        name = cls._require_spec().name
        if name not in worlds:
            instance = cls(seed=seed, ctx=ctx)
            # Deep copies both ways: initial_state may return module-level defaults or parts of
            # the seed, and no episode may ever see another episode's changes.
            world = instance.initial_state(copy.deepcopy(dict(seed)))
            if not isinstance(world, dict):
                raise TypeError(
                    f"{cls.__qualname__}.initial_state returned {type(world).__name__}, not a dict"
                )
            worlds[name] = copy.deepcopy(world)
        world = worlds[name]
        assert isinstance(world, dict)
        return world

    def initial_state(self, seed: dict[str, Any]) -> dict[str, Any]:
        """The episode's starting world; by default the seed itself."""
        return dict(seed)

    def world_summary(self) -> dict[str, Any] | None:
        """A few facts about `self.state` recorded with each result (not shown to the agent),
        so a trajectory reader sees the world evolve without replaying the calls."""
        return None
