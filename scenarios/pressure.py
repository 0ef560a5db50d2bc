"""Pressure rules the scenario layer owns: category names and which authored message a level gets.

A scenario may bring its own pressure messages (``Scenario.pressure_messages``: category →
messages, each with a ``level`` on our 0–10 scale). ``sandbox.pressure`` (a higher layer) plans
every episode with :class:`AuthoredMessages`, and ``propensity validate`` describes the same
rule's gaps with :func:`level_gaps`, so what validate says is what a run delivers.

The level rule: a slot at scheduled level L gets a message authored at the **highest level at
or below L** (the nearest one not above it), never one authored for a higher level. Several
messages authored at that level are handed out in turn, in the order written, continuing across
slots and across scheduled levels that fall back to the same authored level, and starting over
once all have been used. When no message is authored at or below L (L is below the lowest
authored level), the slot gets our built-in template for that category and level.
"""

from __future__ import annotations

import difflib
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from typing import Protocol

# The six pressure categories, defined here once (``sandbox.pressure.ALL_CATEGORIES`` and
# ``PressureCategory`` are built from this list).
PRESSURE_CATEGORIES: tuple[str, ...] = (
    "time",
    "financials",
    "power-seeking",
    "resource-deprivation",
    "self-preservation",
    "evaluation-awareness",
)
# Not categories a scenario can write messages for: the baseline has no pressure, and a mixed
# episode rotates through the categories, each using that category's messages.
EPISODE_ONLY_CATEGORIES = ("baseline", "mixed")
# The levels of the default schedule (``PressureSchedule().levels``); validate describes gaps
# for it.
DEFAULT_LEVELS: tuple[int, ...] = tuple(range(1, 11))


class _Levelled(Protocol):
    @property
    def level(self) -> int: ...


def canonical_category(key: str) -> str:
    """The category a ``pressure_messages`` key names (PropensityBench spells categories with
    underscores: ``self_preservation`` is ``self-preservation``)."""
    return key.replace("_", "-")


def category_key_problem(key: str) -> str | None:
    """None when ``key`` may key ``pressure_messages`` (one of the six categories, in our
    spelling or with underscores); otherwise why not, with a "did you mean" suggestion when a
    category is close (case, separators or spelling)."""
    if canonical_category(key) in PRESSURE_CATEGORIES:
        return None
    known = ", ".join(PRESSURE_CATEGORIES)
    if key.lower() in EPISODE_ONLY_CATEGORIES:
        return (
            f"{key!r} is not a category messages can be written for (a baseline episode has no "
            f"pressure; a mixed one uses each category's own messages); valid: {known}"
        )
    folded = canonical_category(key.strip().lower()).replace(" ", "-")
    close = (
        [folded]
        if folded in PRESSURE_CATEGORIES
        else difflib.get_close_matches(folded, PRESSURE_CATEGORIES, n=1, cutoff=0.6)
    )
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return (
        f"unknown pressure category {key!r}{hint}; valid: {known} (or the same with "
        "underscores). Messages under an unknown key would never be used: the run would fall "
        "back to our built-in templates"
    )


class AuthoredMessages:
    """One category's scenario messages, handed out by the level rule (see the module doc).

    ``pick(level)`` returns the index (into the messages as given) of the message for the next
    slot at ``level``, or None when the built-in template applies. Picking advances a per-level
    turn, so an instance belongs to one episode plan.
    """

    def __init__(self, messages: Sequence[_Levelled]) -> None:
        self._by_level: dict[int, list[int]] = {}
        for index, message in enumerate(messages):
            self._by_level.setdefault(message.level, []).append(index)
        self._levels = sorted(self._by_level)
        self._turns = dict.fromkeys(self._levels, 0)

    def source_level(self, level: int) -> int | None:
        """The authored level whose messages a slot at scheduled ``level`` gets: the highest at
        or below it; None when every message is authored above ``level``."""
        position = bisect_right(self._levels, level)
        return self._levels[position - 1] if position else None

    def pick(self, level: int) -> int | None:
        source = self.source_level(level)
        if source is None:
            return None
        indices = self._by_level[source]
        turn = self._turns[source]
        self._turns[source] = turn + 1
        return indices[turn % len(indices)]

    def count_at(self, level: int) -> int:
        return len(self._by_level.get(level, []))


def levels_text(levels: Sequence[int]) -> str:
    """``[1]`` → "level 1", ``[3, 4, 5]`` → "levels 3-5", ``[1, 3, 4]`` → "levels 1, 3-4"."""
    runs: list[tuple[int, int]] = []
    for level in sorted(set(levels)):
        if runs and level == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], level)
        else:
            runs.append((level, level))
    parts = [str(a) if a == b else f"{a}-{b}" for a, b in runs]
    plural = len(runs) > 1 or runs[0][0] != runs[0][1]
    return ("levels " if plural else "level ") + ", ".join(parts)


def level_gaps(messages: Sequence[_Levelled], levels: Iterable[int] = DEFAULT_LEVELS) -> str | None:
    """What the level rule does with ``messages`` at scheduled ``levels`` where no message is
    authored at exactly that level, as one sentence; None when every level has its own.

    E.g. messages at levels 2 and 6 over levels 1–10: "level 1 uses the built-in template (no
    message is authored at or below it); levels 3-5 repeat the level-2 message; levels 7-10
    repeat the level-6 message".
    """
    authored = AuthoredMessages(messages)
    templated: list[int] = []
    reused: dict[int, list[int]] = {}
    for level in levels:
        source = authored.source_level(level)
        if source is None:
            templated.append(level)
        elif source != level:
            reused.setdefault(source, []).append(level)
    parts: list[str] = []
    if templated:
        one = len(set(templated)) == 1
        parts.append(
            f"{levels_text(templated)} {'uses' if one else 'use'} the built-in template "
            f"(no message is authored at or below {'it' if one else 'them'})"
        )
    for source in sorted(reused):
        many = authored.count_at(source) > 1
        verb = "repeats" if len(set(reused[source])) == 1 else "repeat"
        what = f"the level-{source} messages in turn" if many else f"the level-{source} message"
        parts.append(f"{levels_text(reused[source])} {verb} {what}")
    return "; ".join(parts) or None
