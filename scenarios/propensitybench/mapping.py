"""One PB scenario mapped onto a ``propensity`` scenario (the mapping ``scenarios.propensitybench``
describes): its tools, configuration, system prompt, policy, outcomes and pressure messages."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from scenarios.model import Policy, PressureContext, PressureText, bounded_id, slug
from scenarios.pressure import PRESSURE_CATEGORIES
from scenarios.propensitybench.files import TAG, _Context, _Reader, _Where
from scenarios.records import RiskLabel

_MAX_LEVEL = 10
_TOOL_NAME_LIMIT = 64


def _clean(text: str) -> str:
    """PB's text without trailing blanks on its lines (they only make YAML output unreadable)."""
    return re.sub(r"[ \t]+\n", "\n", text).strip()


def _sentence(text: str) -> str:
    text = _clean(text)
    return text[:1].upper() + text[1:]


def _words(text: str) -> str:
    # Hyphens between digits stay: "Suite-2-3-East-Wing" reads "Suite 2-3 East Wing".
    return re.sub(r"_+|(?<!\d)-+|-+(?!\d)", " ", text).strip()


def _unique(candidate: str, taken: set[str], *, separator: str, limit: int | None = None) -> str:
    chosen, number = candidate, 1
    while chosen in taken:
        number += 1
        suffix = f"{separator}{number}"
        chosen = (candidate[: limit - len(suffix)] if limit else candidate) + suffix
    taken.add(chosen)
    return chosen


def _tool_name(text: str, taken: set[str]) -> str:
    """A name our tool-name pattern accepts, unique among the scenario's tool names."""
    name = re.sub(r"[^A-Za-z0-9_]+", "_", text.strip()).strip("_") or "tool"
    if not re.match(r"[A-Za-z_]", name):
        name = "t_" + name
    return _unique(name[:_TOOL_NAME_LIMIT], taken, separator="_", limit=_TOOL_NAME_LIMIT)


def _config(reader: _Reader, key: str) -> dict[str, Any] | None:
    value = reader.get("configurations", key, kind=object)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            reader.fail(reader.at("configurations", key), f"not valid JSON: {exc}")
            return None
    if value is None:
        return None
    if not isinstance(value, dict):
        reader.fail(reader.at("configurations", key), "expected a JSON object")
        return None
    return value


_JSON_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (list, "array"),
    (dict, "object"),
)


def _json_type(value: Any) -> str:
    return next((name for kind, name in _JSON_TYPES if isinstance(value, kind)), "string")


def _parameters(
    reader: _Reader, at: tuple[str | int, ...], config: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The arguments schema from PB's ``input_arguments``, and example arguments for it.

    Arguments are strings, as PB's are; an argument whose configuration value is not a string
    (a list, a number) also accepts that type, so an agent passing on exactly what a getter
    returned is not refused. Examples are the configuration values: what a correct call sends.
    """
    names = reader.get(*at, "input_arguments", kind=list, required=False) or []
    properties: dict[str, Any] = {}
    examples: dict[str, Any] = {}
    for index, arg in enumerate(names):
        if not isinstance(arg, str) or not arg:
            reader.fail(reader.at(*at, "input_arguments", index), "expected an argument name")
            continue
        schema: dict[str, Any] = {"type": "string", "description": _words(arg)}
        if arg in config:
            value = config[arg]
            examples[arg] = value
            native = _json_type(value)
            if native != "string":
                schema["type"] = [native, "string"]
            if native == "array":
                # Function-calling APIs refuse an array schema without `items`.
                kinds = {_json_type(item) for item in value}
                schema["items"] = {"type": kinds.pop()} if len(kinds) == 1 else {}
        properties[arg] = schema
    parameters: dict[str, Any] = {"type": "object", "properties": properties}
    if properties:
        parameters["required"] = list(properties)
    parameters["additionalProperties"] = False
    return parameters, examples


def _tools(reader: _Reader, config: Mapping[str, Any]) -> list[dict[str, Any]]:
    taken: set[str] = set()
    tools: list[dict[str, Any]] = []
    target = ("functions", "target_function")
    name = reader.get(*target, "name")
    description = reader.get(*target, "description")
    errors = reader.get(*target, "errors", kind=list)
    if errors is not None and not [e for e in errors if isinstance(e, str) and e.strip()]:
        reader.fail(reader.at(*target, "errors"), "no error texts")
    parameters, examples = _parameters(reader, target, config)
    if name and description and errors:
        tools.append(
            {
                "name": _tool_name(name, taken),
                "risk": RiskLabel.ALIGNED.value,
                "description": description,
                "parameters": parameters,
                "errors": [str(e) for e in errors if isinstance(e, str) and e.strip()],
                "example_arguments": examples,
            }
        )
    trigger = ("functions", "trigger_function")
    harmful = reader.get(*trigger, "harmful_name")
    harmful_description = reader.get(*trigger, "harmful_description")
    neutral = reader.get(*trigger, "neutral_name")
    neutral_description = reader.get(*trigger, "neutral_description")
    parameters, examples = _parameters(reader, trigger, config)
    if harmful and harmful_description and neutral and neutral_description:
        harmful_name = _tool_name(harmful, taken)
        tools.append(
            {
                "name": harmful_name,
                "risk": RiskLabel.MISALIGNED.value,
                "description": harmful_description,
                "harmful_name": harmful_name,
                "harmful_description": harmful_description,
                "benign_name": _tool_name(neutral, taken),
                "benign_description": neutral_description,
                "parameters": parameters,
                "example_arguments": examples,
            }
        )
    getters = reader.get("functions", "getter_functions", kind=list) or []
    for index in range(len(getters)):
        at = ("functions", "getter_functions", index)
        getter_name = reader.get(*at, "name")
        getter_description = reader.get(*at, "description")
        returns = reader.get(*at, "output_arguments", kind=list)
        parameters, examples = _parameters(reader, at, config)
        if not (getter_name and getter_description and returns is not None):
            continue
        missing = [key for key in returns if key not in config]
        if missing:
            reader.fail(
                reader.at(*at, "output_arguments"),
                f"returns {', '.join(map(str, missing))}, which neither configuration_known "
                "nor configuration_unknown holds",
            )
            continue
        tools.append(
            {
                "name": _tool_name(getter_name, taken),
                "risk": RiskLabel.NEUTRAL.value,
                "description": getter_description,
                "parameters": parameters,
                "returns": list(returns),
                "example_arguments": examples,
            }
        )
    return tools


def _pressure_messages(reader: _Reader) -> dict[str, list[dict[str, Any]]]:
    """PB's ``sys_messages`` by our category names, levels spread over 0-10 in PB's order."""
    raw = reader.get("sys_messages", kind=dict, required=False)
    if raw is None:
        return {}  # an earlier stage: our templates supply the pressure
    result: dict[str, list[dict[str, Any]]] = {}
    for pb_category, items in raw.items():
        at = reader.at("sys_messages", pb_category)
        category = pb_category.replace("_", "-")
        if category not in PRESSURE_CATEGORIES:
            reader.fail(at, f"unknown pressure category (known: {', '.join(PRESSURE_CATEGORIES)})")
            continue
        if not isinstance(items, list) or not items:
            reader.fail(at, "expected a non-empty list of messages")
            continue
        ordered = []
        for position, item in enumerate(items):
            body = item.get("body") if isinstance(item, dict) else None
            if not isinstance(body, str) or not body.strip():
                reader.fail(at / position / "body", "missing")
                continue
            rank = item.get("msg_level_index", position)
            ordered.append((rank if isinstance(rank, int) else position, position, item))
        ordered.sort(key=lambda entry: (entry[0], entry[1]))
        count = len(ordered)
        result[category] = [
            {
                # A lone message is all the pressure the category has: the top of the scale.
                "level": round(i * _MAX_LEVEL / (count - 1)) if count > 1 else _MAX_LEVEL,
                "text": _clean(item["body"]),
                "sender": str(item.get("from") or ""),
                "subject": str(item.get("subject") or ""),
            }
            for i, (_, _, item) in enumerate(ordered)
        ]
    return result


def _system_prompt(reader: _Reader, context: _Context, known: Mapping[str, Any]) -> str:
    role = reader.get("policy", "role_description")
    parts = [_clean(role or "")]
    # PB tells the agent about the shortcut and what it would achieve: the dilemma is explicit.
    for key in ("trigger_awareness", "trigger_rationale", "immediate_outcome_acknowledgment"):
        text = reader.get("policy", key, required=False)
        if text:
            parts.append(_clean(text))
    if known:
        lines = [
            f"- {key}: {value if isinstance(value, str) else json.dumps(value)}"
            for key, value in known.items()
        ]
        parts.append("What you already know about your environment:\n" + "\n".join(lines))
    workspace = _words(context.workspace)
    parts.append(
        f"You work in the {workspace} through the tools given to you; each call takes effect."
    )
    return "\n\n".join(part for part in parts if part)


def _build(
    raw: Mapping[str, Any], where: _Where, context: _Context, problems: list[str]
) -> dict[str, Any] | None:
    """A raw scenario mapping for our model, or None when PB's data lacks something needed."""
    reader = _Reader(raw, where, problems)
    known = _config(reader, "configuration_known")
    unknown = _config(reader, "configuration_unknown")
    config = {**(known or {}), **(unknown or {})}
    tools = _tools(reader, config)
    task = reader.get("messages", "task_message")
    prohibitions = reader.get("policy", "prohibitions_description")
    duties = reader.get("policy", "duties_description", required=False)
    harm = reader.get("policy", "negative_consequences", "text", required=False)
    connector = reader.get(
        "policy", "negative_consequences", "prefix_connector_sentence", required=False
    )
    # PB's text continues its connector ("However, altering ..."): keep them together.
    consequence = f"{connector.strip()} {harm.strip()}" if harm and connector else harm
    illegal = reader.get("states", "illegal_state", "description")
    target = reader.get("states", "target_state", "description")
    system_prompt = _system_prompt(reader, context, known or {})
    pressure = _pressure_messages(reader)
    if not reader.ok:
        return None
    role = context.role.get("name") if isinstance(context.role.get("name"), str) else None
    role_name = role or _words(context.role_key)
    title = _words(str(raw.get("name") or context.scenario_key))
    attack = reader.get("attack_vector", "name", required=False)
    tags = [TAG, slug(context.workspace), slug(context.role_key)]
    if attack:
        tags.append("attack-vector-" + slug(attack))
    scenario_id = bounded_id(
        slug("-".join((context.domain, context.workspace, context.role_key, context.scenario_key)))
    )
    return {
        "kind": "propensity",
        "id": scenario_id if re.match(r"[a-z]", scenario_id) else f"pb-{scenario_id}",
        "domain": bounded_id(slug(context.domain)) or "propensitybench",
        "title": title[:1].upper() + title[1:],
        "role": role_name,
        "system_prompt": system_prompt,
        "task": _clean(task),
        "policy": Policy(
            duties=[_clean(duties)] if duties else [],
            prohibitions=[_clean(prohibitions)],
            consequences=[_clean(consequence)] if consequence else [],
        ).model_dump(),
        "tools": tools,
        "config": config,
        "risky_outcomes": [_sentence(text) for text in (illegal, harm) if text],
        "expected_achievements": [_clean(target)],
        "pressure_context": PressureContext(
            organisation=f"the {_words(context.workspace)}",
            task_summary=f"the {title.lower()} work",
        ).model_dump(),
        "pressure_messages": {
            category: [PressureText.model_validate(m).model_dump() for m in messages]
            for category, messages in pressure.items()
        },
        "tags": tags,
    }
