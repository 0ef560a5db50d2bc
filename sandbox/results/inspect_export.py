"""A run directory as Inspect AI eval logs (``propensity export RUN --format inspect``).

Written through ``inspect_ai``'s own log API (``EvalLog``, ``EvalSample``, ``write_eval_log``),
never by hand, so ``inspect view`` and ``inspect_ai.log.read_eval_log`` read the files as any
Inspect log. ``inspect_ai`` is an optional extra: it is imported only when an export runs, and
its absence is an ``ExportError`` that says how to install it.

Shapes (docs/inspect.md has the full mapping table):

- one log per agent (``per="agent"``, default) or one for the run (``per="run"``);
- one sample per journalled episode: id = episode id, input = the task (first user message),
  messages = the conversation the agent saw (system, task, pressure and nudges, assistant turns
  with their tool calls, tool results with their errors), scores = one Inspect ``Score`` per
  recorded evaluator score, metadata = the episode's variant, status and what has no Inspect
  field (infrastructure errors, judges' verdicts, world transitions, offered tools);
- an errored episode, or one whose trajectory is missing, unreadable or without its end, is a
  sample with ``error`` set (never a clean sample); an episode that never started (``pending``,
  no trajectory) is skipped, and every skip is counted and named in the result and the logs'
  metadata.

Work is bounded: the journal and the scores are read once, each trajectory is read when its
sample is built and dropped after, and one log's samples are held at a time (write_eval_log
takes a whole log).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, ValidationError

from evaluators.risky_choice import episode_category
from sandbox.results.exports import ExportError
from sandbox.results.store import CorruptRecordError, Manifest, RunStore, missing_scores
from sandbox.runtime.config import agent_slug
from scenarios.records import (
    AgentTurnEvent,
    EpisodeEndedEvent,
    EpisodeStartedEvent,
    EpisodeStatus,
    ErrorEvent,
    JournalEntry,
    JudgeEvent,
    MessageEvent,
    PressureEvent,
    ProtocolEvent,
    Score,
    ToolCallEvent,
    ToolErrorKind,
    ToolResult,
    ToolResultEvent,
    Trajectory,
    WorldEvent,
)

if TYPE_CHECKING:
    from inspect_ai.log import EvalLog, EvalSample
    from inspect_ai.model import ChatMessage

InspectPer = Literal["agent", "run"]
InspectLogFormat = Literal["eval", "json"]
PER_CHOICES: tuple[InspectPer, ...] = ("agent", "run")
LOG_FORMATS: tuple[InspectLogFormat, ...] = ("eval", "json")
INSTALL_HINT = (
    "install the extra: scripts/bootstrap.sh --extra inspect / "
    "pip install 'propensity-sandbox[inspect]'"
)
# The name of the whole-run log's agent part (its samples keep their own agents).
ALL_AGENTS = "all-agents"
# An Inspect ToolCallError type for each of our tool error kinds.
TOOL_ERROR_TYPES: dict[ToolErrorKind, str] = {
    ToolErrorKind.UNKNOWN_TOOL: "unknown",
    ToolErrorKind.BAD_ARGUMENTS: "parsing",
    ToolErrorKind.CALL_LIMIT: "limit",
    ToolErrorKind.TOOL_ERROR: "unknown",
    ToolErrorKind.TIMEOUT: "timeout",
    ToolErrorKind.GATED: "permission",
}


class SkippedEpisode(BaseModel):
    """A journalled episode that is in no log, and why."""

    episode_id: str
    reason: str


class InspectLog(BaseModel):
    """One written log: its file, agent (None for a whole-run log) and sample counts."""

    path: Path
    agent: str | None
    status: str
    samples: int
    errored: int = Field(description="samples of episodes the run recorded as errored")
    incomplete: int = Field(
        description="samples flagged: trajectory missing, unreadable, cut or another's; "
        "done with its scores missing"
    )
    truncated_messages: int = 0


class InspectExport(BaseModel):
    """What ``export_inspect`` wrote and what it left out."""

    out_dir: Path
    logs: list[InspectLog] = Field(default_factory=list)
    skipped: list[SkippedEpisode] = Field(default_factory=list)

    @property
    def paths(self) -> list[Path]:
        return [log.path for log in self.logs]

    @property
    def samples(self) -> int:
        return sum(log.samples for log in self.logs)


def _inspect_modules() -> Any:
    """inspect_ai's log, model, scorer and tool modules, or an ExportError naming the extra."""
    try:
        import inspect_ai
        import inspect_ai.log
        import inspect_ai.model
        import inspect_ai.scorer
        import inspect_ai.tool
    except ImportError:
        raise ExportError(
            f"--format inspect needs inspect_ai, which is not installed ({INSTALL_HINT})"
        ) from None
    return inspect_ai


def inspect_available() -> bool:
    """Whether ``--format inspect`` can work here (inspect_ai is an optional extra)."""
    try:
        _inspect_modules()
    except ExportError:
        return False
    return True


# -- small helpers ---------------------------------------------------------------------------


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:22]


def _name_part(text: str) -> str:
    """A file-name part with no '_' (Inspect splits log names on it) and safe characters."""
    return agent_slug(text).replace("_", "-")


def log_file_name(manifest: Manifest, agent: str | None, fmt: InspectLogFormat) -> str:
    """``<start time>_<pack>_<run id>-<agent>_<id>.<fmt>``: deterministic, safe, and in
    Inspect's own naming pattern (a .json log is listed only when its name starts with the
    time); ``<id>`` is a hash of run id, config hash and agent label, so two labels that share
    a slug still get two files."""
    when = datetime.fromtimestamp(manifest.started_at, UTC).strftime("%Y-%m-%dT%H-%M-%S+00-00")
    label = agent if agent is not None else ALL_AGENTS
    task_id = _digest(manifest.run_id, manifest.config_hash, label)
    return (
        f"{when}_{_name_part(manifest.pack)}_{_name_part(manifest.run_id)}-{_name_part(label)}"
        f"_{task_id}.{fmt}"
    )


def _cut(text: str, max_chars: int) -> tuple[str, bool]:
    if max_chars and len(text) > max_chars:
        return text[:max_chars], True
    return text, False


def _peek_started(path: Path) -> EpisodeStartedEvent | None:
    """The trajectory's first event when it is the start (one line read), else None."""
    try:
        with path.open("rb") as handle:
            line = handle.readline()
        return EpisodeStartedEvent.model_validate_json(line)
    except (OSError, ValidationError):
        return None


def _agent_from_id(episode_id: str, labels: list[str]) -> str | None:
    """The agent whose slug is a dotted part of the id (for episodes with no trajectory)."""
    dotted = f".{episode_id}."
    found = [label for label in labels if f".{agent_slug(label)}." in dotted]
    if len(found) == 1:
        return found[0]
    return labels[0] if len(labels) == 1 else None


# -- one episode as a sample -----------------------------------------------------------------


class _Metrics:
    """Mean and count of numeric values per evaluator, over done, complete episodes."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.unscored: dict[str, int] = {}

    def add(self, scores: Iterable[Score]) -> None:
        for score in scores:
            if score.value is None:
                self.unscored[score.evaluator] = self.unscored.get(score.evaluator, 0) + 1
                self.counts.setdefault(score.evaluator, 0)
                self.sums.setdefault(score.evaluator, 0.0)
                continue
            self.sums[score.evaluator] = self.sums.get(score.evaluator, 0.0) + float(score.value)
            self.counts[score.evaluator] = self.counts.get(score.evaluator, 0) + 1


def _score(ia: Any, score: Score) -> Any:
    """Our score as an Inspect Score: value (the label when we recorded none), answer = label,
    metadata = details (plus ``value_recorded: false`` for a score without a value)."""
    details = dict(score.details)
    explanation = details.get("explanation") or details.get("reason")
    if score.value is None:
        value: Any = score.label if score.label is not None else "none"
        details["value_recorded"] = False
    else:
        value = score.value
    return ia.scorer.Score(
        value=value,
        answer=score.label,
        explanation=explanation if isinstance(explanation, str) else None,
        metadata=details,
    )


class _Conversation:
    """Builds an episode's Inspect messages from its events, in order."""

    def __init__(self, ia: Any, episode_id: str, max_chars: int) -> None:
        self.ia = ia
        self.episode_id = episode_id
        self.max_chars = max_chars
        self.messages: list[ChatMessage] = []
        self.truncated = 0
        self.first_user: str | None = None
        self.pending_turn: AgentTurnEvent | None = None
        self.results: dict[str, list[ToolResultEvent]] = {}
        self.worlds: dict[str, list[dict[str, Any]]] = {}
        self.last_assistant: Any = None
        self.tool_messages: dict[str, list[Any]] = {}

    def _text(self, text: str | None, meta: dict[str, Any]) -> str:
        content, cut = _cut(text or "", self.max_chars)
        if cut:
            self.truncated += 1
            meta["truncated"] = True
            meta["chars"] = len(text or "")
        return content

    def message(self, event: MessageEvent) -> None:
        ia, message = self.ia.model, event.message
        meta: dict[str, Any] = {**message.meta, "turn": event.turn, "seq": event.seq}
        content = self._text(message.content, meta)
        ident = f"{self.episode_id}:{event.seq}"
        if message.role == "system":
            self.messages.append(ia.ChatMessageSystem(id=ident, content=content, metadata=meta))
        elif message.role == "user":
            if "pressure" in message.meta:
                meta["origin"] = "pressure"
            elif message.meta.get("nudge"):
                meta["origin"] = "nudge"
            elif self.first_user is None:
                meta["origin"] = "task"
            else:
                meta["origin"] = "harness"
            if self.first_user is None:
                self.first_user = content
            self.messages.append(ia.ChatMessageUser(id=ident, content=content, metadata=meta))
        elif message.role == "assistant":
            self._assistant(event, meta, content, ident)
        else:
            self._tool(event, meta, content, ident)

    def _assistant(
        self, event: MessageEvent, meta: dict[str, Any], content: str, ident: str
    ) -> None:
        turn, self.pending_turn = self.pending_turn, None
        if turn is not None:
            meta["agent_turn"] = turn.model_dump(mode="json", exclude={"type", "t", "seq"})
        calls = []
        call_meta: dict[str, dict[str, Any]] = {}
        for call in event.message.tool_calls:
            parse_error = None
            if call.raw_arguments is not None:
                parse_error = f"arguments are not a JSON object: {call.raw_arguments}"
            calls.append(
                self.ia.tool.ToolCall(
                    id=call.id,
                    function=call.name,
                    arguments=dict(call.arguments),
                    parse_error=parse_error,
                )
            )
            call_meta[call.id] = call.model_dump(
                mode="json", exclude={"id", "name", "arguments"}, exclude_none=True
            )
        meta["calls"] = call_meta
        model = turn.model if turn is not None else None
        self.last_assistant = self.ia.model.ChatMessageAssistant(
            id=ident, content=content, tool_calls=calls or None, model=model, metadata=meta
        )
        self.messages.append(self.last_assistant)

    def call(self, event: ToolCallEvent) -> None:
        """The pressure level a call was made under, on its assistant message."""
        if self.last_assistant is not None:
            calls = self.last_assistant.metadata.setdefault("calls", {})
            calls.setdefault(event.call.id, {})["level"] = event.level

    def _tool(self, event: MessageEvent, meta: dict[str, Any], content: str, ident: str) -> None:
        message = event.message
        call_id = message.tool_call_id or ""
        queue = self.results.get(call_id)
        result: ToolResult | None = None
        if queue:
            result_event = queue.pop(0)
            result = result_event.result
            meta["level"] = result_event.level
            meta.update(result.model_dump(mode="json", exclude={"output", "call_id", "name"}))
        else:
            meta["result_recorded"] = False
        error = None
        if result is not None and not result.ok:
            kind = (
                TOOL_ERROR_TYPES.get(result.error_kind, "unknown")
                if result.error_kind
                else "unknown"
            )
            text, _ = _cut(result.output, self.max_chars)
            error = self.ia.tool.ToolCallError(type=kind, message=text)
        tool = self.ia.model.ChatMessageTool(
            id=ident,
            content=content,
            tool_call_id=message.tool_call_id,
            function=message.name or (result.name if result is not None else None),
            error=error,
            metadata=meta,
        )
        self.tool_messages.setdefault(call_id, []).append(tool)
        self.messages.append(tool)

    def finish(self) -> None:
        """Attach world transitions to their tool messages."""
        for call_id, steps in self.worlds.items():
            for tool in self.tool_messages.get(call_id, [])[:1]:
                tool.metadata["world"] = steps[0] if len(steps) == 1 else steps


def _conversation(
    ia: Any, trajectory: Trajectory, max_chars: int
) -> tuple[_Conversation, dict[str, Any]]:
    """The messages, and the sample metadata drawn from events that are not messages."""
    talk = _Conversation(ia, trajectory.episode_id, max_chars)
    extra: dict[str, Any] = {}
    for event in trajectory.events:
        if isinstance(event, MessageEvent):
            talk.message(event)
        elif isinstance(event, AgentTurnEvent):
            talk.pending_turn = event
        elif isinstance(event, ToolCallEvent):
            talk.call(event)
        elif isinstance(event, ToolResultEvent):
            talk.results.setdefault(event.result.call_id, []).append(event)
        elif isinstance(event, WorldEvent):
            step = event.model_dump(mode="json", exclude={"type", "t", "seq", "call_id"})
            talk.worlds.setdefault(event.call_id, []).append(step)
        elif isinstance(event, PressureEvent):
            extra.setdefault("pressure", []).append(
                event.model_dump(mode="json", exclude={"type", "t", "text"})
            )
        elif isinstance(event, ErrorEvent):
            extra.setdefault("errors", []).append(event.model_dump(mode="json", exclude={"type"}))
        elif isinstance(event, JudgeEvent):
            extra.setdefault("judges", []).append(event.model_dump(mode="json", exclude={"type"}))
        elif isinstance(event, ProtocolEvent):
            extra.setdefault("protocol_switches", []).append(
                event.model_dump(mode="json", exclude={"type"})
            )
        elif not isinstance(event, EpisodeStartedEvent | EpisodeEndedEvent):
            extra.setdefault("unmapped_events", []).append(event.model_dump(mode="json"))
    talk.finish()
    unused = [e.result.call_id for queue in talk.results.values() for e in queue]
    if unused:  # a result never shown to the agent as a message
        extra["results_without_message"] = unused
    return talk, extra


def _sample_error(
    ia: Any,
    entry: JournalEntry,
    ended: EpisodeEndedEvent | None,
    metadata: dict[str, Any],
    errored: bool,
    flags: list[str],
) -> Any:
    """The EvalError of an errored or incomplete episode: the journal's error (or the flags) as
    message, the recorded error events (with their tracebacks) as traceback."""
    traceback = "\n\n".join(e["message"] for e in metadata.get("errors", []) if isinstance(e, dict))
    reason = entry.error or entry.reason or (ended.reason if ended else None) or "errored"
    problems = [f for f in flags if not f.startswith("no user message")]
    if not errored:
        text = f"incomplete episode: {'; '.join(problems)}"
    elif problems:
        text = f"{reason} (incomplete episode: {'; '.join(problems)})"
    else:
        text = reason
    return ia.log.EvalError(message=text, traceback=traceback, traceback_ansi=traceback)


def _sample(
    ia: Any,
    episode_id: str,
    entry: JournalEntry,
    trajectory: Trajectory | None,
    problem: str | None,
    scores: list[Score],
    model: str,
    pack: str,
    max_chars: int,
) -> tuple[EvalSample, bool, bool, int]:
    """One episode as an EvalSample; returns (sample, errored, incomplete, truncated messages).

    ``problem`` says why the trajectory could not be read (None: it could, or there is none).
    """
    metadata: dict[str, Any] = {
        "episode_id": episode_id,
        "pack": pack,
        "status": entry.status.value,
        "end_reason": entry.reason,
        "error": entry.error,
        "attempt": entry.attempt,
        "llm_calls": entry.llm_calls,
    }
    flags: list[str] = []
    messages: list[Any] = []
    talk: _Conversation | None = None
    started = ended = None
    if trajectory is not None:
        talk, extra = _conversation(ia, trajectory, max_chars)
        messages = talk.messages
        started, ended = trajectory.started, trajectory.ended
        if started is not None:
            metadata.update(
                scenario=started.scenario_id,
                domain=started.domain,
                category=episode_category(trajectory),
                naming=started.naming.value,
                agent=started.agent,
                repeat=started.repeat,
                seed=started.seed,
                kind=started.kind,
                injection=started.injection,
                branched_from=started.branched_from,
                tools=started.tools,
            )
        if ended is not None:
            metadata.update(
                end_reason=ended.reason, turns=ended.turns, final_level=ended.final_level
            )
        metadata.update(extra)
    if problem is not None:
        flags.append(problem)
    elif trajectory is None:
        flags.append("no trajectory was recorded")
    elif ended is None:
        flags.append(f"the trajectory has no end event (journal status {entry.status.value})")
    elif entry.status is not EpisodeStatus.DONE and entry.status is not EpisodeStatus.ERRORED:
        flags.append(f"the journal says the episode is {entry.status.value}")
    missing = (
        missing_scores(entry, {s.evaluator for s in scores})
        if entry.status is EpisodeStatus.DONE
        else None
    )
    if missing is not None and not scores:
        flags.append(
            "no scores: the journal says done but scores.jsonl holds none for this episode "
            "(in no metric; propensity run --resume RUN_DIR runs it again)"
        )
    elif missing:
        flags.append(
            f"scores missing: the journal says {', '.join(missing)} scored this episode but "
            "scores.jsonl holds no such line (in no metric; propensity run --resume RUN_DIR "
            "runs it again)"
        )
    if talk is not None and talk.first_user is None:
        flags.append("no user message: the sample's input is empty")
    errored = entry.status is EpisodeStatus.ERRORED or (
        ended is not None and ended.status is EpisodeStatus.ERRORED
    )
    incomplete = any(not f.startswith("no user message") for f in flags)
    metadata["flags"] = flags
    metadata["incomplete"] = incomplete
    truncated = talk.truncated if talk is not None else 0
    metadata["truncated_messages"] = truncated
    error = (
        _sample_error(ia, entry, ended, metadata, errored, flags) if errored or incomplete else None
    )
    usage = {}
    if entry.usage is not None:
        usage[model] = ia.model.ModelUsage(
            input_tokens=entry.usage.prompt_tokens,
            output_tokens=entry.usage.completion_tokens,
            total_tokens=entry.usage.total_tokens,
            total_cost=entry.usage.cost_usd,
        )
    last = next(
        (m for m in reversed(messages) if isinstance(m, ia.model.ChatMessageAssistant)), None
    )
    output = ia.model.ModelOutput(model=model)
    if last is not None:
        stop = "tool_calls" if last.tool_calls else "stop"
        output = ia.model.ModelOutput(
            model=last.model or model,
            choices=[ia.model.ChatCompletionChoice(message=last, stop_reason=stop)],
        )
    first_t = trajectory.events[0].t if trajectory is not None and trajectory.events else None
    last_t = trajectory.events[-1].t if trajectory is not None and trajectory.events else None
    sample = ia.log.EvalSample(
        id=episode_id,
        epoch=1,
        input=(talk.first_user or "") if talk is not None else "",
        target="",
        messages=messages,
        output=output,
        scores={s.evaluator: _score(ia, s) for s in scores} or None,
        metadata=metadata,
        model_usage=usage,
        started_at=_iso(first_t),
        completed_at=_iso(last_t),
        total_time=round(last_t - first_t, 6) if first_t is not None and last_t else None,
        error=error,
    )
    return sample, errored, incomplete, truncated


# -- the log ---------------------------------------------------------------------------------


def _results(ia: Any, metrics: _Metrics, samples: int, completed: int) -> Any:
    scores = []
    for name in sorted(metrics.counts):
        count = metrics.counts[name]
        values = {"count": ia.log.EvalMetric(name="count", value=count)}
        if count:
            mean = metrics.sums[name] / count
            values = {"mean": ia.log.EvalMetric(name="mean", value=mean), **values}
        scores.append(
            ia.log.EvalScore(
                name=name,
                scorer=name,
                scored_samples=count,
                unscored_samples=metrics.unscored.get(name, 0),
                metrics=values,
                metadata={
                    "computed_by": "propensity export",
                    "over": "numeric values of done, complete episodes (errored ones excluded)",
                },
            )
        )
    return ia.log.EvalResults(total_samples=samples, completed_samples=completed, scores=scores)


def _revision(ia: Any, git_revision: str | None) -> Any:
    if not git_revision:
        return None
    commit = git_revision.removesuffix("-dirty")
    return ia.log.EvalRevision(
        type="git", origin="", commit=commit, dirty=git_revision.endswith("-dirty")
    )


def _spec(
    ia: Any,
    manifest: Manifest,
    agent: str | None,
    sample_ids: list[str],
    export_meta: dict[str, Any],
) -> Any:
    config = manifest.config
    specs = [a for a in config.agents if a.label == agent]
    spec = specs[0] if specs else None
    labels = [a.label for a in config.agents]
    model = agent if agent is not None else ", ".join(labels)
    generate = ia.model.GenerateConfig(
        temperature=spec.temperature if spec else None,
        max_tokens=spec.max_tokens if spec else None,
    )
    label = agent if agent is not None else ALL_AGENTS
    return ia.log.EvalSpec(
        eval_id=_digest("eval", manifest.run_id, manifest.config_hash, label),
        run_id=manifest.run_id,
        created=_iso(manifest.started_at),
        task=manifest.pack,
        task_id=_digest(manifest.run_id, manifest.config_hash, label),
        task_args={
            "run_id": manifest.run_id,
            "config_hash": manifest.config_hash,
            "suite": config.suite,
            "agent": agent,
            "categories": config.categories,
            "include_baseline": config.include_baseline,
            "namings": [n.value for n in config.namings],
            "repeats": config.repeats,
        },
        solver="propensity-sandbox",
        tags=["propensity-sandbox"],
        dataset=ia.log.EvalDataset(
            name=manifest.pack,
            location=manifest.pack_path,
            samples=len(sample_ids),
            sample_ids=sample_ids,
        ),
        model=model,
        model_generate_config=generate,
        model_base_url=spec.api_base if spec else None,
        model_args={"tool_protocol": spec.tool_protocol} if spec else {"agents": labels},
        config=ia.log.EvalConfig(
            epochs=1,
            turn_limit=config.max_turns,
            time_limit=int(config.episode_timeout_s),
            max_samples=config.concurrency,
        ),
        revision=_revision(ia, manifest.git_revision),
        packages=dict(manifest.packages),
        metadata={
            "propensity": {
                **manifest.model_dump(mode="json"),
                "suite": config.suite,
                "agent": agent,
                "export": export_meta,
            }
        },
    )


def _write_log(ia: Any, log: EvalLog, path: Path, fmt: InspectLogFormat) -> None:
    """Write through a temporary file, so a log in the out dir is always whole."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        ia.log.write_eval_log(log, str(tmp), format=fmt)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def export_inspect(
    run_dir: Path | str,
    out_dir: Path | str | None = None,
    *,
    per: InspectPer = "agent",
    log_format: InspectLogFormat = "eval",
    max_chars: int = 0,
) -> InspectExport:
    """Write RUN_DIR as Inspect eval logs (default into RUN_DIR/exports/inspect).

    ``per``: one log per agent of the manifest, or one for the run; ``log_format``: Inspect's
    ``eval`` (zip, default) or ``json``; ``max_chars``: cut message texts and tool outputs
    longer than this, flagged in the message metadata (0, the default, keeps them whole).
    Raises ExportError when inspect_ai is missing (before anything is written), RUN_DIR is not
    a readable run directory, or an option is invalid; OSError when a file cannot be written.
    """
    if per not in PER_CHOICES:
        raise ExportError(f"unknown --inspect-per {per!r} (choose from {', '.join(PER_CHOICES)})")
    if log_format not in LOG_FORMATS:
        raise ExportError(
            f"unknown --inspect-format {log_format!r} (choose from {', '.join(LOG_FORMATS)})"
        )
    if max_chars < 0:
        raise ExportError("--max-chars must be 0 or more")
    ia = _inspect_modules()
    store = RunStore(run_dir)
    if not store.exists():
        raise ExportError(f"{run_dir} is not a run directory (no manifest.json)")
    try:
        manifest = store.read_manifest()
        states = store.latest_states()
        scores: dict[str, list[Score]] = {}
        for score in store.read_scores():
            scores.setdefault(score.episode_id, []).append(score)
    except CorruptRecordError as exc:
        raise ExportError(f"cannot read the run directory: {exc}") from None
    labels = [a.label for a in manifest.config.agents]
    result = InspectExport(
        out_dir=Path(out_dir) if out_dir else Path(run_dir) / "exports" / "inspect"
    )

    groups: dict[str | None, list[str]] = {}
    for episode_id, entry in sorted(states.items()):
        path = store.trajectory_path(episode_id)
        if not path.exists() and entry.status is EpisodeStatus.PENDING:
            result.skipped.append(SkippedEpisode(episode_id=episode_id, reason="never started"))
            continue
        if per == "run":
            groups.setdefault(None, []).append(episode_id)
            continue
        started = _peek_started(path)
        # A trajectory recording another episode (a file copied over this one's) says nothing
        # of this episode's agent: the id does; its sample is flagged when it is read.
        agent = (
            started.agent
            if started is not None and started.episode_id == episode_id
            else _agent_from_id(episode_id, labels)
        )
        if agent is None:
            result.skipped.append(
                SkippedEpisode(
                    episode_id=episode_id,
                    reason="agent unknown (no readable trajectory); --inspect-per run keeps it",
                )
            )
            continue
        groups.setdefault(agent, []).append(episode_id)
    order = {label: i for i, label in enumerate(labels)}
    agents = sorted(groups, key=lambda a: (order.get(a or "", len(order)), a or ""))

    result.out_dir.mkdir(parents=True, exist_ok=True)
    for agent in agents:
        result.logs.append(
            _export_group(
                ia,
                store,
                manifest,
                agent,
                groups[agent],
                states,
                scores,
                result,
                log_format,
                max_chars,
                per,
            )
        )
    return result


def _export_group(
    ia: Any,
    store: RunStore,
    manifest: Manifest,
    agent: str | None,
    episode_ids: list[str],
    states: dict[str, JournalEntry],
    scores: dict[str, list[Score]],
    result: InspectExport,
    log_format: InspectLogFormat,
    max_chars: int,
    per: InspectPer,
) -> InspectLog:
    samples = []
    metrics = _Metrics()
    errored = incomplete = truncated = completed = 0
    for episode_id in episode_ids:
        entry = states[episode_id]
        trajectory: Trajectory | None = None
        problem = None
        try:
            if store.trajectory_path(episode_id).exists():
                trajectory = store.read_trajectory(episode_id)
        except (OSError, CorruptRecordError) as exc:
            problem = f"the trajectory could not be read: {exc}"
        model = agent or (trajectory.started.agent if trajectory and trajectory.started else "")
        sample, was_errored, was_incomplete, cut = _sample(
            ia,
            episode_id,
            entry,
            trajectory,
            problem,
            scores.get(episode_id, []),
            model or "unknown",
            manifest.pack,
            max_chars,
        )
        del trajectory
        # Unique to this run's episode, the same in every export of it.
        sample.uuid = _digest("sample", manifest.run_id, manifest.config_hash, episode_id)
        samples.append(sample)
        errored += was_errored
        incomplete += was_incomplete
        truncated += cut
        if not was_errored and not was_incomplete:
            completed += 1
            metrics.add(scores.get(episode_id, []))
    export_meta = {
        "per": per,
        "max_chars": max_chars,
        "samples": len(samples),
        "errored": errored,
        "incomplete": incomplete,
        "truncated_messages": truncated,
        "skipped": [s.model_dump() for s in result.skipped],
    }
    finished = manifest.finished_at is not None
    if errored or incomplete:
        status = "error"
    elif finished and not result.skipped:
        status = "success"
    else:
        status = "started"
    log_error = None
    if status == "error":
        log_error = ia.log.EvalError(
            message=f"{errored} errored and {incomplete} incomplete of {len(samples)} episodes "
            "(see the samples with an error)",
            traceback="",
            traceback_ansi="",
        )
    model_usage: dict[str, Any] = {}
    for sample in samples:
        for name, usage in sample.model_usage.items():
            model_usage[name] = model_usage[name] + usage if name in model_usage else usage
    log = ia.log.EvalLog(
        status=status,
        eval=_spec(ia, manifest, agent, [str(s.id) for s in samples], export_meta),
        plan=ia.log.EvalPlan(
            name="propensity-sandbox",
            steps=[
                ia.log.EvalPlanStep(solver="propensity-sandbox episode", params={"agent": agent})
            ],
        ),
        results=_results(ia, metrics, len(samples), completed),
        stats=ia.log.EvalStats(
            started_at=_iso(manifest.started_at) or "",
            completed_at=_iso(manifest.finished_at) or "",
            model_usage=model_usage,
        ),
        error=log_error,
        samples=samples,
    )
    path = result.out_dir / log_file_name(manifest, agent, log_format)
    _write_log(ia, log, path, log_format)
    return InspectLog(
        path=path,
        agent=agent,
        status=status,
        samples=len(samples),
        errored=errored,
        incomplete=incomplete,
        truncated_messages=truncated,
    )


def summary_lines(export: InspectExport, limit: int = 5) -> list[str]:
    """What the CLI prints: one line per log, the skipped episodes by reason (with examples)."""
    lines = []
    for log in export.logs:
        lines.append(
            f"wrote {log.path} ({log.samples} samples: {log.errored} errored, "
            f"{log.incomplete} incomplete (flagged); status {log.status})"
        )
    lines.append(
        f"{export.samples} samples in {len(export.logs)} log(s); "
        f"{len(export.skipped)} episode(s) skipped"
    )
    by_reason: dict[str, list[str]] = {}
    for skipped in export.skipped:
        by_reason.setdefault(skipped.reason, []).append(skipped.episode_id)
    for reason, ids in sorted(by_reason.items()):
        examples = ", ".join(ids[:limit]) + (", ..." if len(ids) > limit else "")
        lines.append(f"skipped {len(ids)}: {reason} (e.g. {examples})")
    return lines
