"""The pressure engine: which pressure message is due, at what level, in which category.

Pressure escalates inside an episode (PropensityBench's design): the agent starts at level 0,
and after each turn (or each failed aligned call) the next message of the schedule arrives.
The engine is a pure state machine so the episode loop stays readable and the schedule is
testable without an agent.

Where a scenario brings its own messages for a category, a scheduled level L gets the message
authored at the highest level at or below L (never one written for a higher level), and a level
below every authored message gets our built-in template: see :func:`plan_messages`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from itertools import pairwise
from string import Formatter
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from scenarios.model import PressureText, Scenario
from scenarios.pressure import PRESSURE_CATEGORIES, AuthoredMessages

MAX_LEVEL = 10
BASELINE = "baseline"
MIXED = "mixed"
TEMPLATE_FIELDS = frozenset(
    {
        "role",
        "organisation",
        "authority",
        "task_summary",
        "deadline",
        "asset",
        "budget",
        "replacement",
    }
)


# The six categories are defined once, in the scenario layer (scenario files key their own
# messages by them); the enum is built from that list.
PressureCategory = StrEnum(  # type: ignore[misc]
    "PressureCategory", {c.upper().replace("-", "_"): c for c in PRESSURE_CATEGORIES}
)

ALL_CATEGORIES: tuple[str, ...] = PRESSURE_CATEGORIES


def _did_you_mean(name: str, known: tuple[str, ...]) -> str:
    folded = name.strip().lower().replace("_", "-").replace(" ", "-")
    close = [folded] if folded in known else difflib.get_close_matches(folded, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def parse_category(name: str) -> str:
    """A category name as used in episode variants: one of the six, `baseline` or `mixed`.
    Raises ``ValueError`` naming the known ones (and the closest) otherwise."""
    if name in ALL_CATEGORIES or name in (BASELINE, MIXED):
        return name
    known = (*ALL_CATEGORIES, BASELINE, MIXED)
    raise ValueError(
        f"unknown pressure category {name!r}{_did_you_mean(name, known)} "
        f"(known: {', '.join(known)})"
    )


class PressureSchedule(BaseModel):
    """How pressure escalates within one episode."""

    model_config = ConfigDict(extra="forbid")

    levels: list[int] = Field(default_factory=lambda: list(range(1, MAX_LEVEL + 1)), min_length=1)
    messages_per_level: int = Field(default=1, ge=1, le=10)
    trigger: Literal["turn", "failed_aligned_call"] = "turn"
    # Agent turns allowed after the last pressure message before the episode ends.
    turns_after_last: int = Field(default=1, ge=1)
    # Turns the agent gets in a zero-pressure baseline episode; None (the default): as many as
    # a pressured episode of this schedule gets (``baseline_length``), so a baseline differs
    # from its pressured episodes in pressure only, not in how many tries the agent has.
    baseline_turns: int | None = Field(default=None, ge=1)
    # Categories rotated through in `mixed` episodes; empty means all six.
    mixed_categories: list[str] = Field(default_factory=list)

    def baseline_length(self) -> int:
        """Turns of a baseline episode: ``baseline_turns`` when set, else the turns a pressured
        episode gets when every turn brings the next message (one per scheduled message, then
        ``turns_after_last``): an agent that gives in after N failed tries does so in both, so
        the baseline-versus-pressure difference is pressure's alone."""
        if self.baseline_turns is not None:
            return self.baseline_turns
        return len(self.levels) * self.messages_per_level + self.turns_after_last

    @field_validator("levels")
    @classmethod
    def _levels_in_range(cls, levels: list[int]) -> list[int]:
        for level in levels:
            if not 1 <= level <= MAX_LEVEL:
                raise ValueError(f"pressure levels must be between 1 and {MAX_LEVEL}, got {level}")
        # Pressure escalates: the by-level figures are cumulative (an episode counts at every
        # level up to the one it reached), which a level list going down would falsify.
        drops = [(a, b) for a, b in pairwise(levels) if b < a]
        if drops:
            shown = ", ".join(f"{a} then {b}" for a, b in drops[:3])
            raise ValueError(
                f"pressure levels must not decrease (pressure escalates, and by-level results "
                f"count an episode at every level up to the one it reached); got "
                f"{', '.join(map(str, levels))}: {shown}. Give them in increasing order, e.g. "
                f"{', '.join(map(str, sorted(levels)))}"
            )
        return levels

    @field_validator("mixed_categories")
    @classmethod
    def _known_categories(cls, categories: list[str]) -> list[str]:
        for category in categories:
            if category not in ALL_CATEGORIES:
                raise ValueError(
                    f"unknown pressure category {category!r}"
                    f"{_did_you_mean(category, ALL_CATEGORIES)} "
                    f"(known: {', '.join(ALL_CATEGORIES)})"
                )
        return categories


class PressureTemplates:
    """Our own escalating message templates, one per category and level, filled per scenario."""

    def __init__(self, templates: dict[str, dict[int, str]]) -> None:
        problems = []
        for category in ALL_CATEGORIES:
            levels = templates.get(category, {})
            for level in range(1, MAX_LEVEL + 1):
                text = levels.get(level)
                if not text:
                    problems.append(f"{category} level {level}: missing")
                    continue
                fields = {name for _, name, _, _ in Formatter().parse(text) if name}
                unknown = fields - TEMPLATE_FIELDS
                if unknown:
                    problems.append(f"{category} level {level}: unknown fields {sorted(unknown)}")
        if problems:
            raise ValueError("invalid pressure templates: " + "; ".join(problems))
        self._templates = templates

    @classmethod
    def from_yaml(cls, text: str) -> PressureTemplates:
        raw: dict[str, dict[Any, str]] = yaml.safe_load(text)
        return cls({cat: {int(k): v for k, v in levels.items()} for cat, levels in raw.items()})

    def render(self, category: str, level: int, context: dict[str, str]) -> str:
        """The template filled with ``context``; a message that opens with a filled value
        ("the organisation is counting on ...") starts with a capital letter."""
        text: str = self._templates[category][level].format_map(context)
        return text[:1].upper() + text[1:]


@cache
def default_templates() -> PressureTemplates:
    text = (resources.files("sandbox.pressure") / "templates.yaml").read_text(encoding="utf-8")
    return PressureTemplates.from_yaml(text)


def template_context(scenario: Scenario) -> dict[str, str]:
    context = scenario.pressure_context.model_dump()
    context["role"] = scenario.role
    return context


@dataclass(frozen=True)
class PressureMessage:
    category: str
    level: int
    index: int
    text: str


def render_scenario_message(message: PressureText) -> str:
    """A scenario's own message as the agent reads it: an e-mail-like header (when the scenario
    names a sender or subject, as PropensityBench's messages do) above the body."""
    header = [
        f"{label}: {value}"
        for label, value in (("From", message.sender), ("Subject", message.subject))
        if value
    ]
    return "\n".join(header) + "\n\n" + message.text if header else message.text


def scenario_messages(scenario: Scenario, category: str) -> list[PressureText]:
    """The scenario's own messages for `category` (PropensityBench spells categories with
    underscores, so that spelling is accepted too; the model refuses both spellings at once and
    any key that is not a category); empty when our templates apply."""
    own = scenario.pressure_messages
    return own.get(category) or own.get(category.replace("-", "_")) or []


def plan_messages(
    scenario: Scenario,
    category: str,
    schedule: PressureSchedule,
    templates: PressureTemplates | None = None,
) -> list[PressureMessage]:
    """The full ordered list of pressure messages an episode may receive.

    The schedule alone decides how many messages there are and at which level each arrives
    (``len(levels) * messages_per_level``, in ``levels`` order), whoever wrote the text, so an
    episode's length and its by-level statistics mean the same with templates or without.

    The text comes from our templates, except for a category in which the scenario brings its
    own messages (``scenario.pressure_messages``, e.g. imported from PropensityBench); for
    ``mixed`` this is decided per category of the rotation. In such a category a slot at
    scheduled level L gets a message authored at the highest level at or below L, never one
    authored for a higher level (``scenarios.pressure.AuthoredMessages``):

    - several messages authored at that level are used in turn, in the order written; the turn
      continues across the slots of one level (``messages_per_level`` > 1) and across later
      scheduled levels that fall back to the same authored level, and starts over once all
      have been used, so a message repeats only when its level has fewer messages than slots;
    - levels above the highest authored one repeat that level's messages (messages at 2 and 6:
      levels 3-5 repeat the level-2 message, levels 7-10 the level-6 one);
    - a level below the lowest authored one gets our built-in template for that category and
      level (messages at 2 and 6: level 1 is our level-1 template), exactly as a category
      without messages of its own would.

    ``propensity validate`` warns about these gaps for the default schedule. A scenario
    message keeps the scheduled level L (the level the run measures), is delivered as written
    (its sender and subject head the text) and gets no "Follow-up" prefix; template repeats
    within one level of a single-category episode do.
    """
    if category == BASELINE:
        return []
    templates = templates or default_templates()
    context = template_context(scenario)
    rotation = list(schedule.mixed_categories or ALL_CATEGORIES)
    authored: dict[str, tuple[list[PressureText], AuthoredMessages]] = {}
    for name in rotation if category == MIXED else [category]:
        own = scenario_messages(scenario, name)
        if own:
            authored[name] = (own, AuthoredMessages(own))
    messages: list[PressureMessage] = []
    for level in schedule.levels:
        for repeat in range(schedule.messages_per_level):
            index = len(messages)
            this_category = rotation[index % len(rotation)] if category == MIXED else category
            own_and_picker = authored.get(this_category)
            picked = own_and_picker[1].pick(level) if own_and_picker else None
            if own_and_picker is not None and picked is not None:
                text = render_scenario_message(own_and_picker[0][picked])
            else:
                text = templates.render(this_category, level, context)
                if repeat and category != MIXED:
                    text = f"Follow-up ({repeat + 1} of {schedule.messages_per_level}): {text}"
            messages.append(PressureMessage(this_category, level, index, text))
    return messages


class PressureEngine:
    """Decides, after each agent turn, whether the next pressure message is due."""

    def __init__(self, messages: list[PressureMessage], schedule: PressureSchedule) -> None:
        self._messages = messages
        self._schedule = schedule
        self._next = 0
        self.level = 0
        self.category: str | None = None

    @property
    def is_baseline(self) -> bool:
        return not self._messages

    @property
    def exhausted(self) -> bool:
        return self._next >= len(self._messages)

    @property
    def delivered(self) -> int:
        return self._next

    def after_turn(self, *, failed_aligned_call: bool) -> PressureMessage | None:
        if self.exhausted:
            return None
        if self._schedule.trigger == "failed_aligned_call" and not failed_aligned_call:
            return None
        message = self._messages[self._next]
        self._next += 1
        self.level, self.category = message.level, message.category
        return message
