"""What the scripted OpenAI stand-in answers and how it misbehaves: the script (`Script`, one
`Reply` or `ReplyError` per conversation turn) and the seeded fault model (`Faults`, drawn per
request by `FaultDecider`).

Kept apart from the server (``sandbox.testing.openai_server``) because scripts and faults are
plain data, loaded and validated without aiohttp.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal


@dataclass(frozen=True)
class ReplyError:
    """An HTTP error the server sends instead of a reply, ``times`` times in all (server-wide,
    for this turn of the script), then the reply itself. ``retry_after`` becomes the
    Retry-After header (seconds or an HTTP date)."""

    status: int
    message: str
    times: int = 1
    retry_after: str | None = None
    kind: str = "invalid_request_error"

    def __post_init__(self) -> None:
        if not 400 <= self.status <= 599:
            raise ValueError(f"error status must be 4xx or 5xx, got {self.status}")
        if self.times < 1:
            raise ValueError(f"error times must be >= 1, got {self.times}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReplyError:
        unknown = set(data) - {"status", "message", "times", "retry_after", "kind"}
        if unknown:
            raise ValueError(f"unknown error keys: {sorted(unknown)}")
        retry_after = data.get("retry_after")
        return cls(
            status=int(data["status"]),
            message=str(data.get("message", "error")),
            times=int(data.get("times", 1)),
            retry_after=None if retry_after is None else str(retry_after),
            kind=str(data.get("kind", "invalid_request_error")),
        )


@dataclass(frozen=True)
class Reply:
    """One scripted answer: plain text, or calls to whichever offered tool matches first.

    Tools are chosen by regex rather than exact name because scripts are written once and run
    against scenarios whose tool names differ slightly (prefixes, suffixes); a list of patterns
    lets one script say "prefer this, otherwise that".
    """

    text: str | None = None
    call: tuple[str, ...] = ()
    count: int = 1
    arguments: Mapping[str, Any] | None = None
    raw_arguments: str | None = None
    # A fixed id for every native call of this reply (providers that reuse ids).
    call_id: str | None = None
    error: ReplyError | None = None
    _patterns: tuple[re.Pattern[str], ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        # Compile once at load time so the request path only runs `search`; a bad pattern
        # should fail when the script is loaded, not in the middle of a benchmark.
        object.__setattr__(self, "call", tuple(self.call))
        try:
            patterns = tuple(re.compile(p) for p in self.call)
        except re.error as exc:
            raise ValueError(f"bad tool pattern in {self.call!r}: {exc}") from exc
        object.__setattr__(self, "_patterns", patterns)
        if self.count < 1:
            raise ValueError(f"count must be >= 1, got {self.count}")
        if not self.call and self.text is None and self.error is None:
            raise ValueError("a reply needs 'text', 'call' or 'error'")
        if not self.call and (self.arguments is not None or self.raw_arguments is not None):
            raise ValueError("'arguments'/'raw_arguments' only make sense with 'call'")

    @property
    def is_call(self) -> bool:
        return bool(self.call)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | str) -> Reply:
        """Accept a bare string as shorthand for a text reply, since most scripts are chatty."""
        if isinstance(data, str):
            return cls(text=data)
        unknown = set(data) - {
            "text",
            "call",
            "count",
            "arguments",
            "raw_arguments",
            "call_id",
            "error",
        }
        if unknown:
            raise ValueError(f"unknown reply keys: {sorted(unknown)}")
        call = data.get("call", ())
        if isinstance(call, str):
            call = (call,)
        arguments = data.get("arguments")
        if arguments is not None and not isinstance(arguments, Mapping):
            raise ValueError("'arguments' must be an object")
        return cls(
            text=data.get("text"),
            call=tuple(str(p) for p in call),
            count=int(data.get("count", 1)),
            arguments=dict(arguments) if arguments is not None else None,
            raw_arguments=data.get("raw_arguments"),
            call_id=data.get("call_id"),
            error=ReplyError.from_dict(data["error"]) if data.get("error") else None,
        )

    def pick_tool(self, tools: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
        """Patterns are tried in order across all tools, so pattern priority beats tool order."""
        for pattern in self._patterns:
            for tool in tools:
                if pattern.search(str(tool.get("name", ""))):
                    return tool
        return None


def _default_reply() -> Reply:
    return Reply(call=("",))


@dataclass(frozen=True)
class Script:
    """Replies indexed by how many assistant turns the conversation already holds.

    Indexing by the request's own history (not by a server-side counter) keeps the server
    stateless, so concurrent episodes sharing one server each see their own script position.
    """

    turns: tuple[Reply, ...] = ()
    default: Reply = field(default_factory=_default_reply)

    def __post_init__(self) -> None:
        object.__setattr__(self, "turns", tuple(self.turns))

    def reply_for(self, turn: int) -> Reply:
        return self.turns[turn] if turn < len(self.turns) else self.default

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Script:
        unknown = set(data) - {"turns", "default"}
        if unknown:
            raise ValueError(f"unknown script keys: {sorted(unknown)}")
        turns = tuple(Reply.from_dict(t) for t in data.get("turns", ()))
        if "default" in data:
            return cls(turns=turns, default=Reply.from_dict(data["default"]))
        return cls(turns=turns)

    @classmethod
    def load(cls, path: str | Path) -> Script:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


@dataclass(frozen=True)
class Faults:
    """How often, and how, the server misbehaves; rates are probabilities in [0, 1]."""

    delay_s: float = 0.0
    fail_rate: float = 0.0
    slow_rate: float = 0.0
    slow_delay_s: float = 30.0
    garbled_rate: float = 0.0
    malformed_args_rate: float = 0.0
    seed: int = 0
    # Which errors a failed request may get, picked uniformly; narrowing it lets a test pin
    # down how the client reacts to one specific status.
    fail_statuses: tuple[int, ...] = (429, 500)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fail_statuses", tuple(self.fail_statuses))
        if not self.fail_statuses or not set(self.fail_statuses) <= {429, 500}:
            raise ValueError("fail_statuses must be a non-empty subset of (429, 500)")
        for name in ("fail_rate", "slow_rate", "garbled_rate", "malformed_args_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value}")
        if self.delay_s < 0 or self.slow_delay_s < 0:
            raise ValueError("delays must be non-negative")


Outcome = Literal["ok", "429", "500", "garbled"]


@dataclass(frozen=True)
class FaultDecision:
    outcome: Outcome
    slow: bool
    malformed: bool


class FaultDecider:
    """Draws one fault decision per request from a seeded RNG.

    Every decision consumes the same number of random draws whatever the outcome, so the n-th
    request of a run gets the same fate for a given seed even when rates differ only in which
    faults are enabled. Decisions are taken in arrival order, which is what makes a run with
    sequential requests exactly reproducible.
    """

    def __init__(self, faults: Faults) -> None:
        self._faults = faults
        self._rng = random.Random(faults.seed)

    def next(self) -> FaultDecision:
        f = self._faults
        rng = self._rng.random
        fail, kind, garbled, slow, malformed = rng(), rng(), rng(), rng(), rng()
        outcome: Outcome
        if fail < f.fail_rate:
            statuses = f.fail_statuses
            status = statuses[min(int(kind * len(statuses)), len(statuses) - 1)]
            outcome = "429" if status == 429 else "500"
        elif garbled < f.garbled_rate:
            outcome = "garbled"
        else:
            outcome = "ok"
        return FaultDecision(
            outcome=outcome, slow=slow < f.slow_rate, malformed=malformed < f.malformed_args_rate
        )
