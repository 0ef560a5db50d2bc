"""The world graph itself: its states, its tool-labelled transitions and its gates, the checks
that make a graph valid, the views and lookups the runtime and the reports use, and the warnings
about doubtful but valid declarations (``WorldGraph.warnings``)."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Any, Literal

import networkx as nx
from pydantic import Field, model_validator

from scenarios.base import StrictModel
from scenarios.world.conditions import (
    Conditions,
    condition_holds,
    conditions_disjoint,
    conditions_imply,
)

_IDENT = r"^[a-z][a-z0-9_\-]*$"
# Bounded work for ``WorldGraph.warnings``: transition pairs compared per graph.
_MAX_PAIRS = 250_000

StateKind = Literal["initial", "normal", "goal", "harmful"]


class WorldState(StrictModel):
    id: str = Field(pattern=_IDENT)
    kind: StateKind = "normal"
    # 0–10; required (> 0) for harmful states, 0 for every other kind.
    severity: float = Field(default=0.0, ge=0.0, le=10.0)
    description: str = ""
    # A non-harmful state the scenario counts as a step toward harm: attempting a transition
    # into it shows intention (not completion). Harmful states need no flag (they always do).
    risky: bool = False

    @model_validator(mode="after")
    def _severity_matches_kind(self) -> WorldState:
        if self.kind == "harmful" and self.severity <= 0:
            raise ValueError(f"harmful state {self.id!r} needs a severity above 0")
        if self.kind != "harmful" and self.severity != 0:
            raise ValueError(f"only harmful states carry a severity (state {self.id!r})")
        if self.risky and self.kind == "harmful":
            raise ValueError(
                f"harmful state {self.id!r} needs no `risky` flag (attempts on it always count "
                "as intention)"
            )
        return self


class Transition(StrictModel):
    # Optional name for reports; defaults to "source->target" (see ``label``).
    id: str | None = None
    source: str
    target: str
    tool: str = Field(min_length=1)
    when: Conditions = Field(default_factory=dict)
    requires_success: bool = True

    @property
    def label(self) -> str:
        return self.id or f"{self.source}->{self.target}"

    def matches(self, tool_id: str, arguments: Mapping[str, Any]) -> bool:
        """Tool and argument conditions match (the result's success is not considered)."""
        if tool_id != self.tool:
            return False
        return all(
            name in arguments and condition_holds(condition, arguments[name])
            for name, condition in self.when.items()
        )


class WorldGraph(StrictModel):
    states: list[WorldState] = Field(min_length=1)
    transitions: list[Transition] = Field(default_factory=list)
    # tool → states where it is available; a tool not listed is available everywhere.
    gates: dict[str, list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> WorldGraph:
        ids = [state.id for state in self.states]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate state ids: {', '.join(duplicates)}")
        initial = [state.id for state in self.states if state.kind == "initial"]
        if len(initial) != 1:
            raise ValueError(f"a world needs exactly one initial state, found {len(initial)}")
        if not any(state.kind in ("harmful", "goal") for state in self.states):
            raise ValueError("a world needs at least one harmful or goal state")
        known = set(ids)
        for transition in self.transitions:
            for end in (transition.source, transition.target):
                if end not in known:
                    raise ValueError(f"transition {transition.label!r} names unknown state {end!r}")
        named = [t.id for t in self.transitions if t.id is not None]
        if len(named) != len(set(named)):
            raise ValueError("transition ids must be unique")
        for tool, where in self.gates.items():
            unknown = sorted(set(where) - known)
            if unknown:
                raise ValueError(f"gate for {tool!r} names unknown states: {', '.join(unknown)}")
        for transition in self.transitions:
            if not self.tool_allowed(transition.source, transition.tool):
                raise ValueError(
                    f"transition {transition.label!r} uses {transition.tool!r}, which is gated "
                    f"away from its source state {transition.source!r}"
                )
        return self

    # --- lookups ---------------------------------------------------------------------------

    def state(self, state_id: str) -> WorldState:
        for state in self.states:
            if state.id == state_id:
                return state
        raise KeyError(f"unknown world state {state_id!r}")

    @property
    def initial(self) -> WorldState:
        return next(state for state in self.states if state.kind == "initial")

    def harmful_states(self) -> list[WorldState]:
        return [state for state in self.states if state.kind == "harmful"]

    def goal_states(self) -> list[WorldState]:
        return [state for state in self.states if state.kind == "goal"]

    def tools(self) -> set[str]:
        """Every tool the graph mentions, in transitions or gates."""
        return {t.tool for t in self.transitions} | set(self.gates)

    # --- graph views -----------------------------------------------------------------------

    def to_networkx(self) -> nx.DiGraph:
        """Nodes carry ``kind``/``severity``/``description``/``risky``. A DiGraph has one edge
        per ordered pair, so each edge carries every transition between the pair in
        ``transitions`` and the first declared one's ``tool``, ``when`` and ``requires_success``
        at the top level."""
        graph = nx.DiGraph()
        for state in self.states:
            graph.add_node(
                state.id,
                kind=state.kind,
                severity=state.severity,
                description=state.description,
                risky=state.risky,
            )
        for transition in self.transitions:
            pair = (transition.source, transition.target)
            dumped = transition.model_dump()
            if graph.has_edge(*pair):
                graph.edges[pair]["transitions"].append(dumped)
            else:
                graph.add_edge(
                    *pair,
                    tool=transition.tool,
                    when=transition.when,
                    requires_success=transition.requires_success,
                    transitions=[dumped],
                )
        return graph

    def reachable_harmful_from(self, state_id: str) -> set[str]:
        """Harmful states reachable from ``state_id`` (excluding itself)."""
        self.state(state_id)
        harmful = {state.id for state in self.harmful_states()}
        return set(nx.descendants(self.to_networkx(), state_id)) & harmful

    def intent_targets(self) -> set[str]:
        """States an attempted transition into shows intention to harm: harmful or risky."""
        return {state.id for state in self.states if state.kind == "harmful" or state.risky}

    def warnings(
        self,
        never_taken: Mapping[int, str] | None = None,
        unmatched: Collection[int] = (),
    ) -> list[tuple[str, str]]:
        """Doubtful but valid declarations, as ``(field, message)`` pairs; ``field`` is relative
        to the graph (``transitions[3]``, ``states[2]``). ``never_taken`` maps indices of
        transitions the caller knows can never be taken to why (``scenarios.checks`` passes
        those of tools that always fail, and those whose conditions no valid call meets); they
        count for reachability. ``unmatched``: those of them that no call even matches (a
        condition no valid call meets, a tool the scenario lacks), so they fork with nothing.

        Ambiguous fork: a transition ``h`` into a harmful or risky state and a transition ``g``
        into a goal state leave the same source with the same tool, and every call matching
        ``g`` surely matches ``h`` too (``conditions_imply(g.when, h.when)``: e.g. ``h`` has no
        conditions, or only ones ``g`` also has, or ``h`` says ``amount: {gte: 100}`` where
        ``g`` says ``{gte: 500}``). Then the aligned move also reads as intention to harm. The
        warning names ``h``; give it a condition that ``g`` lacks or contradicts (or use
        distinct tools). Also when their conditions merely *may overlap* (not provably
        disjoint, ``conditions_disjoint``: ``lte 1000`` against ``gte 600``, ``in`` lists
        sharing a value, a regex that matches anything): a call meeting both reaches the goal
        while reading as harm, or is taken as harm while meeting the aligned transition. Not
        when ``h`` is a carve-out of ``g`` (every call matching ``h`` matches ``g``, and ``h``
        is declared first and taken whenever ``g`` would be: the documented way to single out
        the harmful calls), nor when no call matches ``h`` (``unmatched``).

        Shadowed transition: an earlier transition with the same source and tool matches every
        call a later one matches and is taken whenever the later one could be (it does not
        require success where the later one does not), so the later one is never taken. Named
        when the two lead to different states.

        Unreachable state: no chain of transitions that can be taken leads to it from the
        initial state; a harmful state there is never completed, a goal never reached."""
        found: list[tuple[str, str]] = []
        dead: dict[int, str] = dict(never_taken or {})
        groups: dict[tuple[str, str], list[int]] = {}
        for index, transition in enumerate(self.transitions):
            groups.setdefault((transition.source, transition.tool), []).append(index)
        pairs = sum(len(members) ** 2 for members in groups.values())
        if pairs > _MAX_PAIRS:
            found.append(
                (
                    "transitions",
                    f"too many transitions leave one state with one tool ({pairs:,} pairs) to "
                    "check them for ambiguous forks and shadowing; not checked",
                )
            )
            groups = {}
        forks: dict[int, tuple[str, str]] = {}
        for members in groups.values():
            for position, later in enumerate(members):
                t_later = self.transitions[later]
                for earlier in members[:position]:
                    t_earlier = self.transitions[earlier]
                    if (
                        later not in dead
                        and earlier not in dead
                        and t_earlier.target != t_later.target
                        and (not t_earlier.requires_success or t_later.requires_success)
                        and conditions_imply(t_later.when, t_earlier.when)
                    ):
                        dead[later] = (
                            f"{t_earlier.label!r}, declared earlier, matches every call it "
                            "matches and is taken first"
                        )
                        found.append(
                            (
                                f"transitions[{later}]",
                                f"{t_later.label!r} is never taken: {dead[later]}, so calls "
                                f"meant for {t_later.target!r} move the world to "
                                f"{t_earlier.target!r} (give it a condition the earlier one "
                                "lacks, or declare it first)",
                            )
                        )
                for other in members:
                    if later not in forks:
                        fork = self._fork(later, other, unmatched)
                        if fork is not None:
                            forks[later] = (f"transitions[{later}]", fork)
        found += [forks[index] for index in sorted(forks)]
        found += self._unreachable(dead)
        return found

    def _fork(self, harm_index: int, goal_index: int, unmatched: Collection[int]) -> str | None:
        """The fork warning for a transition into harm (or a risky state) and one into a goal
        that leave the same source with the same tool, or None when calls cannot confuse them.

        Sure: every call meeting the goal transition meets the harmful one. Possible ("may
        overlap"): the two sets of conditions are not provably disjoint (``conditions_disjoint``),
        unless the harmful transition is a carve-out of the goal one (every call it matches
        matches the goal one, it is declared first and taken whenever the goal one would be:
        those calls are harm, the others the aligned move) or no call matches it at all. A
        harmful transition that is never *taken* (shadowed by the goal one, or needing a
        success that never comes) still forks: calls matching it are attempts at harm."""
        harm, aligned = self.transitions[harm_index], self.transitions[goal_index]
        if harm.target not in self.intent_targets() or self.state(aligned.target).kind != "goal":
            return None
        kind = "harmful" if self.state(harm.target).kind == "harmful" else "risky"
        both = (
            f"goal state {aligned.target!r} and {kind} state {harm.target!r} are both one "
            f"{harm.tool!r} call from {harm.source!r}, and "
        )
        if conditions_imply(aligned.when, harm.when):
            return (
                f"{both}{harm.label!r} has no `when` condition that {aligned.label!r} lacks or "
                "contradicts: the aligned call also reads as an attempt at harm"
            )
        if harm_index in unmatched or conditions_disjoint(aligned.when, harm.when):
            return None
        harm_first = harm_index < goal_index and (
            not harm.requires_success or aligned.requires_success
        )
        if harm_first and conditions_imply(harm.when, aligned.when):
            return None
        shared = [name for name in aligned.when if name in harm.when]
        detail = (
            "; ".join(
                f"on {name!r}: {aligned.when[name]!r} and {harm.when[name]!r}"
                for name in shared[:3]
            )
            if shared
            else "they constrain no argument in common"
        )
        effect = (
            "is taken into harm although it also meets the aligned transition"
            if harm_first
            else f"reaches {aligned.target!r} and also reads as an attempt at harm"
        )
        return (
            f"{both}the `when` conditions of {aligned.label!r} and {harm.label!r} may overlap "
            f"(not provably disjoint: {detail}): a call that meets both {effect}. Make them "
            "contradict on one argument (thresholds that do not meet, `in` lists with no common "
            "value, different literals)"
        )

    def _unreachable(self, dead: Mapping[int, str]) -> list[tuple[str, str]]:
        """Warnings for states no takeable chain of transitions reaches from the initial one."""
        live: dict[str, set[str]] = {}
        for index, transition in enumerate(self.transitions):
            if index not in dead:
                live.setdefault(transition.source, set()).add(transition.target)
        reached = {self.initial.id}
        frontier = [self.initial.id]
        while frontier:
            for target in live.get(frontier.pop(), set()) - reached:
                reached.add(target)
                frontier.append(target)
        found: list[tuple[str, str]] = []
        for position, state in enumerate(self.states):
            if state.id in reached:
                continue
            into = [
                (t.label, dead[i])
                for i, t in enumerate(self.transitions)
                if t.target == state.id and i in dead
            ]
            why = (
                "; its transitions are never taken: "
                + "; ".join(f"{label!r} ({reason})" for label, reason in into[:3])
                if into
                else ""
            )
            effect = {
                "harmful": ": this harm can never be completed",
                "goal": ": this goal can never be reached",
            }.get(state.kind, "")
            found.append(
                (
                    f"states[{position}]",
                    f"state {state.id!r} cannot be reached from the initial state "
                    f"{self.initial.id!r}{effect}{why}",
                )
            )
        return found

    def harm_distances(self) -> dict[str, float]:
        """Shortest number of transitions from each state to any harmful state (inf if none)."""
        reverse = self.to_networkx().reverse(copy=True)
        harmful = [state.id for state in self.harmful_states()]
        found: dict[str, int] = (
            dict(nx.multi_source_dijkstra_path_length(reverse, harmful, weight=None))
            if harmful
            else {}
        )
        return {state.id: float(found.get(state.id, math.inf)) for state in self.states}

    def matching_transitions(
        self, state_id: str, tool_id: str, arguments: Mapping[str, Any]
    ) -> list[Transition]:
        """Transitions out of ``state_id`` whose tool and conditions match, in declared order."""
        return [
            t for t in self.transitions if t.source == state_id and t.matches(tool_id, arguments)
        ]

    # --- gating ----------------------------------------------------------------------------

    def tool_allowed(self, state_id: str, tool_id: str) -> bool:
        where = self.gates.get(tool_id)
        return where is None or state_id in where

    def allowed_tools(self, state_id: str) -> set[str] | None:
        """``None`` when the graph declares no gates (every tool is available). Otherwise the
        tools the graph mentions that are available in ``state_id``; tools the graph never
        mentions are always available."""
        self.state(state_id)
        if not self.gates:
            return None
        return {tool for tool in self.tools() if self.tool_allowed(state_id, tool)}
