"""Python-emulated toolkits: tools written as plain methods over an episode's world state.

A deterministic scenario (a file system, a bank ledger, an inbox) needs no LLM to answer tool
calls: a few lines of Python keep the world consistent for free and make every rerun identical.
Adding one must stay cheap, so a toolkit is a single class whose decorated methods *are* the
spec: signatures give the parameters, Google-style docstrings the descriptions. The class is
checked when it is defined, so a missing description fails at import instead of reaching an
agent as an empty schema.

A return entry may state its JSON type (`balance (number): ...`); one that does not is
described as a string, since every observation reaches the agent as text anyway.
"""

from __future__ import annotations

import copy
import importlib.metadata
import inspect
import json
import re
import traceback
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar, overload

from pydantic import ValidationError

from scenarios.records import RiskLabel
from tools.protocol import Tool, ToolContext, ToolOutput
from tools.toolkits import (
    ExceptionSpec,
    JSONType,
    ParameterSpec,
    ReturnSpec,
    ToolDef,
    Toolkit,
    describe_tool,
    parameters_schema,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "WORLD_KEY",
    "EntryPointProblem",
    "PythonTool",
    "PythonToolkit",
    "ToolError",
    "ToolOptions",
    "load_entry_points",
    "python_toolkits",
    "register_toolkit",
    "tool",
    "unregister_toolkit",
]

ENTRY_POINT_GROUP = "propensity.tools"
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


# --- the @tool decorator -----------------------------------------------------------------------


@dataclass(frozen=True)
class ToolOptions:
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
    """Mark a method as a tool, bare (`@tool`) or with options (`@tool(risk="misaligned")`)."""
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


# --- docstrings --------------------------------------------------------------------------------

_SECTION_KINDS = {
    "args": "args",
    "arguments": "args",
    "parameters": "args",
    "params": "args",
    "returns": "returns",
    "return": "returns",
    "raises": "raises",
    "exceptions": "raises",
}
# Recognised so their text is not taken for the summary; their content is not used.
_IGNORED_SECTIONS = frozenset(
    {"note", "notes", "example", "examples", "warning", "warnings", "see also", "yields", "todo"}
)
_HEADER = re.compile(r"^([A-Za-z][A-Za-z ]*):\s*$")
_ENTRY = re.compile(r"^(\w+)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")
_TYPE_NAMES: dict[str, JSONType] = {
    "str": "string",
    "string": "string",
    "int": "integer",
    "integer": "integer",
    "float": "number",
    "number": "number",
    "bool": "boolean",
    "boolean": "boolean",
    "list": "array",
    "array": "array",
    "tuple": "array",
    "dict": "object",
    "object": "object",
    "none": "null",
    "null": "null",
}


@dataclass
class _Entry:
    name: str
    type: str | None
    description: str


@dataclass
class _Docstring:
    paragraphs: list[str]
    sections: dict[str, list[_Entry]] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        return self.paragraphs[0] if self.paragraphs else ""


def _paragraphs(lines: list[str]) -> list[str]:
    """Paragraphs with their line breaks unwrapped: docstring wrapping is not meant for models."""
    paragraphs: list[str] = []
    current: list[str] = []
    for line in [*lines, ""]:
        if line.strip():
            current.append(line.strip())
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    return paragraphs


def _entries(lines: list[str], where: str, section: str, problems: list[str]) -> list[_Entry]:
    body = [line for line in lines if line.strip()]
    if not body:
        return []
    indent = min(len(line) - len(line.lstrip()) for line in body)
    entries: list[_Entry] = []
    for line in body:
        text = line.strip()
        if len(line) - len(line.lstrip()) > indent and entries:
            entries[-1].description = f"{entries[-1].description} {text}".strip()
            continue
        match = _ENTRY.match(text)
        if match is None:
            problems.append(
                f"{where}: cannot read the {section} line {text!r} (expected 'name: description')"
            )
            continue
        kind = match.group(2).strip() if match.group(2) else None
        entries.append(_Entry(match.group(1), kind, match.group(3).strip()))
    return entries


def _parse_docstring(doc: str, where: str, problems: list[str]) -> _Docstring:
    preamble: list[str] = []
    raw_sections: dict[str, list[str]] = {}
    current: list[str] = preamble
    for line in inspect.cleandoc(doc).splitlines():
        header = _HEADER.match(line)
        key = header.group(1).strip().lower() if header else ""
        if header and (key in _SECTION_KINDS or key in _IGNORED_SECTIONS):
            current = raw_sections.setdefault(_SECTION_KINDS.get(key, "ignored"), [])
            continue
        current.append(line)
    parsed = _Docstring(_paragraphs(preamble))
    titles = {"args": "Args", "returns": "Returns", "raises": "Raises"}
    for kind, title in titles.items():
        entries = _entries(raw_sections.get(kind, []), where, title, problems)
        repeated = sorted({e.name for e in entries if [x.name for x in entries].count(e.name) > 1})
        if repeated and kind != "raises":  # one Raises entry per cause is allowed, as in ToolEmu
            problems.append(f"{where}: {title} lists {', '.join(repeated)} more than once")
        for entry in entries:
            if not entry.description:
                problems.append(f"{where}: {title} entry {entry.name!r} has no description")
        parsed.sections[kind] = entries
    return parsed


# --- annotations -------------------------------------------------------------------------------

_ANNOTATION_TYPES: dict[Any, JSONType] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    list: "array",
    tuple: "array",
    dict: "object",
}


@dataclass(frozen=True)
class _JSONType:
    type: JSONType
    items: dict[str, Any] | None = None
    enum: list[Any] | None = None


def _value_type(value: Any) -> JSONType | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return None


def _json_type(annotation: Any) -> _JSONType | None:
    """The JSON type of a parameter annotation, None when JSON has no faithful equivalent."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (types.UnionType, typing.Union):
        # `X | None`: optionality comes from the default, so only X matters to the schema.
        remaining = [arg for arg in args if arg is not type(None)]
        return _json_type(remaining[0]) if len(remaining) == 1 else None
    if origin is Literal:
        kinds = {_value_type(value) for value in args}
        if len(kinds) != 1:
            return None
        kind = kinds.pop()
        return None if kind is None else _JSONType(kind, enum=list(args))
    if origin in (list, tuple) or annotation in (list, tuple):
        items: dict[str, Any] = {}
        if origin is list and args and args[0] is not Any:
            item = _json_type(args[0])
            if item is None:
                return None
            items = _schema(item)
        return _JSONType("array", items=items)
    if origin is dict:
        return _JSONType("object")
    kind = _ANNOTATION_TYPES.get(annotation)
    return _JSONType(kind) if kind is not None else None


def _schema(kind: _JSONType) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": kind.type}
    if kind.enum is not None:
        schema["enum"] = list(kind.enum)
    if kind.items is not None:
        schema["items"] = kind.items
    return schema


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


# --- building the spec -------------------------------------------------------------------------

_PASSABLE = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def _parameters(
    function: Callable[..., Any], parsed: _Docstring, where: str, problems: list[str]
) -> list[ParameterSpec]:
    try:
        hints = typing.get_type_hints(function)
    except Exception as exc:
        problems.append(f"{where}: cannot resolve the type annotations ({exc})")
        return []
    signature = inspect.signature(function)
    parameters = list(signature.parameters.values())
    if not parameters or parameters[0].kind not in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    ):
        problems.append(f"{where}: a tool must be an instance method taking `self` first")
        return []
    documented = {entry.name: entry for entry in parsed.sections["args"]}
    specs: list[ParameterSpec] = []
    for parameter in parameters[1:]:
        name = parameter.name
        if parameter.kind not in _PASSABLE:
            problems.append(
                f"{where}: parameter {name!r} cannot be passed by name; agents send named "
                "JSON arguments only"
            )
            continue
        kind = None
        if name not in hints:
            problems.append(f"{where}: parameter {name!r} has no type annotation")
        else:
            kind = _json_type(hints[name])
            if kind is None:
                problems.append(
                    f"{where}: parameter {name!r} is annotated {hints[name]!r}, which has no JSON "
                    "type (use str, int, float, bool, list[...], dict[...] or a Literal)"
                )
        entry = documented.get(name)
        if entry is None:
            problems.append(f"{where}: parameter {name!r} is not documented in the Args section")
        if kind is None or entry is None or not entry.description:
            continue
        required = parameter.default is inspect.Parameter.empty
        default = None if required else parameter.default
        try:
            json.dumps(default)
            specs.append(
                ParameterSpec(
                    name=name,
                    type=kind.type,
                    description=entry.description,
                    required=required,
                    default=copy.deepcopy(default),
                    enum=kind.enum,
                    items=kind.items,
                )
            )
        except (TypeError, ValueError, ValidationError) as exc:
            problems.append(f"{where}: parameter {name!r}: {_reason(exc)}")
    stale = [name for name in documented if name not in signature.parameters or name == "self"]
    if stale:
        problems.append(f"{where}: Args documents {', '.join(stale)}, not parameters of the tool")
    return specs


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(str(error["msg"]).removeprefix("Value error, ") for error in exc.errors())
    return str(exc)


def _returns(parsed: _Docstring, where: str, problems: list[str]) -> list[ReturnSpec]:
    specs: list[ReturnSpec] = []
    for entry in parsed.sections["returns"]:
        kind: JSONType = "string"
        if entry.type is not None:
            base = entry.type.split(",")[0].split("[")[0].strip().lower()
            if base not in _TYPE_NAMES:
                problems.append(f"{where}: return {entry.name!r} has unknown type {entry.type!r}")
                continue
            kind = _TYPE_NAMES[base]
        if entry.description:
            specs.append(ReturnSpec(name=entry.name, type=kind, description=entry.description))
    return specs


def _tooldef(function: Callable[..., Any], where: str, problems: list[str]) -> ToolDef | None:
    doc = function.__doc__
    if not doc or not doc.strip():
        problems.append(f"{where}: a tool needs a docstring, the agent's only description of it")
        return None
    found: list[str] = []
    parsed = _parse_docstring(doc, where, found)
    if not parsed.summary:
        found.append(f"{where}: the docstring needs a summary paragraph before its sections")
    parameters = _parameters(function, parsed, where, found)
    returns = _returns(parsed, where, found)
    exceptions = [
        ExceptionSpec(name=e.name, description=e.description)
        for e in parsed.sections["raises"]
        if e.description
    ]
    problems.extend(found)
    if found:
        return None
    try:
        return ToolDef(
            name=_camel(function.__name__),
            summary=parsed.summary,
            parameters=parameters,
            returns=returns,
            exceptions=exceptions,
        )
    except ValidationError as exc:
        problems.append(f"{where}: {_reason(exc)}")
        return None


def _own_doc(cls: type) -> str | None:
    """The nearest docstring below PythonToolkit, whose own text describes no toolkit."""
    for klass in cls.__mro__:
        if klass is PythonToolkit:
            return None
        doc = klass.__dict__.get("__doc__")
        if isinstance(doc, str) and doc.strip():
            return doc
    return None


def _tool_methods(cls: type) -> dict[str, Callable[..., Any]]:
    """@tool methods by name in definition order, a subclass's definition winning."""
    methods: dict[str, Callable[..., Any]] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if getattr(value, _MARK, None) is not None:
                methods[name] = value
            elif name in methods:
                del methods[name]  # overridden by a plain attribute: no longer a tool
    return methods


# --- toolkits ----------------------------------------------------------------------------------


_INSTANCE_ATTRIBUTES = frozenset({"state", "seed", "ctx"})


class PythonToolkit:
    """Base class of Python-emulated toolkits; see the module docstring for the contract.

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
        methods = _tool_methods(cls)
        if not methods:
            problems.append(f"{where}: a toolkit needs at least one @tool method")
        reserved = sorted(set(methods) & (set(vars(PythonToolkit)) | _INSTANCE_ATTRIBUTES))
        if reserved:
            problems.append(f"{where}: {', '.join(reserved)} would hide PythonToolkit's own")
        tooldefs: list[ToolDef] = []
        for method_name, function in methods.items():
            tooldef = _tooldef(function, f"{where}.{method_name}", problems)
            if tooldef is not None:
                tooldefs.append(tooldef)
                cls._methods[tooldef.name] = method_name
                cls._options[tooldef.name] = getattr(function, _MARK)
        if problems:
            raise TypeError("invalid Python toolkit:\n- " + "\n- ".join(problems))
        assert isinstance(name, str) and doc is not None
        try:
            cls._spec = Toolkit(
                name=name,
                name_for_human=cls.name_for_human,
                description="\n\n".join(_paragraphs(inspect.cleandoc(doc).splitlines())),
                category=cls.category,
                tools=tooldefs,
                source=f"python:{cls.__module__}.{cls.__qualname__}",
            )
        except ValidationError as exc:
            raise TypeError(f"invalid Python toolkit:\n- {where}: {_reason(exc)}") from None

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


# --- the Tool ----------------------------------------------------------------------------------


class PythonTool:
    """One toolkit method as a Tool; the world it acts on lives in the episode's context."""

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


# --- registry and entry points -----------------------------------------------------------------

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
    _registry.pop(name, None)


def python_toolkits() -> dict[str, type[PythonToolkit]]:
    """Registered toolkits by name; third-party ones appear after `load_entry_points()`."""
    return dict(sorted(_registry.items()))


@dataclass(frozen=True)
class EntryPointProblem:
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
