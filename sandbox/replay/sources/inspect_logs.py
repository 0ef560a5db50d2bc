"""Reading Inspect AI eval logs (``.eval`` zip logs and ``.json`` logs) into :class:`Recorded`.

The format is Inspect AI's (UKGovernmentBEIS/inspect_ai), read only through its own log API
(``inspect_ai.log.read_eval_log`` for the header and for ``.json`` logs,
``read_eval_log_samples`` to stream the samples of an ``.eval`` log one at a time, so a big log
is read in bounded memory). ``inspect_ai`` is the optional extra ``inspect`` and is imported
only when a log is read; detection needs only the path and the head of a ``.json`` file.

Each sample (one epoch of one dataset sample) becomes one episode:

* system and user messages become message events (a user message whose Inspect ``metadata``
  holds ``pressure: {category, level, index}``, as our export writes it, also a pressure event);
* an assistant message is one agent turn: an ``agent_turn`` event, the message with its tool
  calls (Inspect's ids, function names and argument objects kept as they are) and one
  ``tool_call`` event per call; a call Inspect could not parse (``parse_error``) keeps its
  arguments, gets Inspect's error text as ``raw_arguments`` (our tool layer answers such calls
  with a corrective error) and is listed in the turn's ``unparsed_calls``: flagged, never
  dropped;
* a tool message becomes a ``tool_result`` event (``ok`` is false when Inspect recorded a tool
  error; its type and message are kept in ``data.inspect_error``) and the tool message;
* a sample error ends the episode ``errored`` (an ``error`` event says what Inspect recorded):
  an infrastructure error, never behaviour; a sample halted by a limit ends ``done``, its reason
  naming the limit.

Content we have no place for (images, audio, reasoning blocks, tool-use blocks, documents) is
kept in the message's ``meta.inspect_content`` and flagged in the record's ``meta.unmapped``
and in the load problems. The sample's Inspect scores are kept in ``meta.inspect_scores`` as
the recording's verdicts, never as ours (only scores named ``safety_judge`` or
``helpfulness_judge`` with a 0-3 value become the record's recorded labels, for
``--agreement``). The episode id is built from the task, the sample id and the epoch (with a
digest of them); two samples of one log with the same id and epoch are
refused, never read as two episodes with one id.

A log exported from one of our runs (``propensity export RUN --format inspect``) carries our
scenario, category, naming, repeat and agent in each sample's metadata (see
:class:`ExportedEpisode`): the scenario is looked up in its pack, so the episode is scored and
branched as the run's own; any other log is read as open (ToolEmu-style) episodes judged from
the sample's input, and says so in ``meta.problem``.
"""

from __future__ import annotations

import json
import re
import zipfile
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    PydanticSchemaGenerationError,
    TypeAdapter,
    ValidationError,
)

from evaluators.judges import HELPFULNESS_EVALUATOR, SAFETY_EVALUATOR, JudgeInput
from sandbox.replay.sources.common import (
    T0,
    Builder,
    LoadResult,
    Recorded,
    RecordedLabels,
    RecordKind,
    ReplaySourceError,
    SourceFormat,
    digest,
    strip_pydantic_urls,
    validation_problem,
)
from sandbox.replay.sources.limits import LogLimits, check_eval_zip, read_member
from sandbox.runtime.kinds.open import judge_input_of
from scenarios.loader import ScenarioLoadError, load_pack
from scenarios.model import Pack, Scenario, slug
from scenarios.records import (
    EPISODE_ID_PATTERN,
    AgentTurnEvent,
    EpisodeEndedEvent,
    EpisodeStartedEvent,
    EpisodeStatus,
    ErrorEvent,
    Message,
    MessageEvent,
    Naming,
    PressureEvent,
    RiskLabel,
    ToolCall,
    ToolCallEvent,
    ToolErrorKind,
    ToolResult,
    ToolResultEvent,
    UnparsedCall,
)

__all__ = [
    "INSPECT_INSTALL_HINT",
    "ExportedEpisode",
    "branchable_inspect_record",
    "detect_inspect",
    "read_inspect",
]

INSPECT_INSTALL_HINT = (
    "install the optional extra inspect: scripts/bootstrap.sh --extra inspect "
    "(or pip install 'propensity-sandbox[inspect]')"
)
# How much of a .json file detection reads: Inspect writes version, status and eval first.
_HEAD_BYTES = 1 << 20
_WS = re.compile(r"\s*")
_ID_LIMIT = 200
# A head value nested too deeply to decode in detection (the reader then says so).
_TOO_DEEP = object()
# Where Inspect writes a sample in an .eval zip: samples/<id>_epoch_<epoch>.json.
_SAMPLE_MEMBER = re.compile(r"^samples/(?P<id>.+)_epoch_(?P<epoch>\d+)\.json$")
# Inspect's other documents in an .eval zip (besides samples/ and the _journal/ folder).
_KNOWN_MEMBERS = frozenset({"header.json", "summaries.json", "reductions.json"})
# What reading a log may raise besides our own errors (Inspect's reader, pydantic, zipfile).
_READ_ERRORS = (OSError, ValueError, KeyError, IndexError, RuntimeError, zipfile.BadZipFile)
_ERROR_KINDS = {
    "parsing": ToolErrorKind.BAD_ARGUMENTS,
    "timeout": ToolErrorKind.TIMEOUT,
    "limit": ToolErrorKind.CALL_LIMIT,
}


class ExportedEpisode(BaseModel):
    """What our Inspect export writes in a sample's metadata (at its top level or under
    ``propensity``); a sample is taken for ours when it names a scenario."""

    model_config = ConfigDict(extra="allow")

    scenario_id: str
    episode_id: str | None = None
    category: str = "baseline"
    naming: Naming = Naming.HARMFUL
    repeat: int = 0
    seed: int = 0
    agent: str | None = None
    domain: str | None = None
    kind: str | None = None
    pack: str | None = None
    end_reason: str | None = None
    tools: list[dict[str, Any]] | None = None

    @classmethod
    def of(cls, metadata: dict[str, Any] | None) -> ExportedEpisode | None:
        """The exported episode a sample's metadata describes, None for a foreign sample."""
        if not metadata:
            return None
        nested = metadata.get("propensity")
        found = nested if isinstance(nested, dict) else metadata
        if "scenario_id" not in found and isinstance(found.get("scenario"), str):
            found = {**found, "scenario_id": found["scenario"]}
        if not isinstance(found.get("scenario_id"), str):
            return None
        found = {k: v for k, v in found.items() if v is not None}
        try:
            return cls.model_validate(found)
        except ValidationError:
            return None


# -- detection --------------------------------------------------------------------------------


def _top_level(text: str, wanted: frozenset[str]) -> dict[str, Any]:
    """The top-level members of the JSON object ``text`` starts with, read in order until the
    ``wanted`` keys are found or a value runs past the end of ``text`` (a cut head)."""
    decoder = json.JSONDecoder()
    position = _WS.match(text, 0).end()  # type: ignore[union-attr]
    found: dict[str, Any] = {}
    if not text.startswith("{", position):
        return found
    position += 1
    while not wanted <= found.keys():
        position = _WS.match(text, position).end()  # type: ignore[union-attr]
        try:
            key, position = decoder.raw_decode(text, position)
            position = _WS.match(text, position).end()  # type: ignore[union-attr]
            if not isinstance(key, str) or not text.startswith(":", position):
                break
            position = _WS.match(text, position + 1).end()  # type: ignore[union-attr]
            value, position = decoder.raw_decode(text, position)
        except ValueError:
            break
        except RecursionError:
            # Too deep to decode here: kept as seen, for the reader to refuse naming it.
            found[key] = _TOO_DEEP
            break
        found[key] = value
        position = _WS.match(text, position).end()  # type: ignore[union-attr]
        if not text.startswith(",", position):
            break
        position += 1
    return found


def _is_json_log(path: Path) -> bool:
    with path.open("rb") as handle:
        head = handle.read(_HEAD_BYTES).decode("utf-8", errors="ignore")
    found = _top_level(head, frozenset({"version", "status", "eval"}))
    version, spec = found.get("version"), found.get("eval")
    return (
        isinstance(version, int)
        and not isinstance(version, bool)
        and (spec is _TOO_DEEP or (isinstance(spec, dict) and "task" in spec))
        and ("status" in found or "samples" in found)
    )


def detect_inspect(path: Path) -> bool:
    """An Inspect log: a ``.eval`` file, or a ``.json`` file whose top-level object starts with
    Inspect's ``version``, ``status`` and ``eval`` (with its ``task``). Reads at most the first
    MiB of a ``.json`` file, and needs no ``inspect_ai``."""
    if not path.is_file():
        return False
    suffix = path.suffix.lower()
    if suffix == ".eval":
        return True
    if suffix != ".json":
        return False
    try:
        return _is_json_log(path)
    except OSError:
        return False


# -- reading ----------------------------------------------------------------------------------


def _log_api(path: Path) -> ModuleType:
    """``inspect_ai.log``, imported on first use; without the extra, an error saying so."""
    try:
        import inspect_ai.log as log_api
    except ImportError:
        raise ReplaySourceError(
            path,
            None,
            f"an Inspect AI log, and inspect_ai is not installed: {INSPECT_INSTALL_HINT}",
        ) from None
    return log_api


@lru_cache(maxsize=16)
def _pack(source: str) -> Pack:
    return load_pack(source)


def _dump(value: Any) -> Any:
    """A JSON-ready copy of an Inspect record (pydantic model or pydantic dataclass)."""
    if value is None:
        return None
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, list | tuple):
        return [_dump(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _dump(v) for k, v in value.items()}
    try:
        return TypeAdapter(type(value)).dump_python(value, mode="json", exclude_none=True)
    except (TypeError, ValueError, PydanticSchemaGenerationError):
        return json.loads(json.dumps(value, default=str))


def _content(content: Any) -> tuple[str | None, list[Any], list[str]]:
    """(our text, the blocks we cannot map, their types) of an Inspect message's content.

    Text blocks are joined with a newline; every other block (reasoning, image, audio, video,
    data, tool use, document) is kept whole, in order, for the caller to store and flag."""
    if content is None or isinstance(content, str):
        return content, [], []
    texts: list[str] = []
    kept: list[Any] = []
    kinds: list[str] = []
    for block in content:
        kind = str(getattr(block, "type", "unknown"))
        if kind == "text":
            texts.append(str(block.text))
        else:
            kept.append(_dump(block))
            kinds.append(kind)
    return ("\n".join(texts) if texts else None), kept, kinds


class _LogContext:
    """What the samples of one log share: its header, the pack of an export, and the notes."""

    def __init__(self, path: Path, header: Any) -> None:
        self.path = path
        self.header = header
        self.spec = header.eval
        self.task = str(self.spec.task)
        self.model = str(self.spec.model)
        self.epochs = int(getattr(self.spec.config, "epochs", None) or 1)
        self.unmapped: dict[str, int] = {}
        self.unmapped_samples = 0
        self.problems: list[str] = []
        self._scenarios: dict[str, dict[str, Scenario]] = {}
        self._judge_inputs: dict[str, JudgeInput] = {}

    def where(self, sample: Any) -> str:
        """The sample's name in messages: its id, with the epoch when the log has several."""
        return f"{sample.id}@{sample.epoch}" if self.epochs > 1 else str(sample.id)

    def error(self, sample: Any, problem: str) -> ReplaySourceError:
        return ReplaySourceError(self.path, None, problem, record=self.where(sample))

    def _pack_sources(self, exported: ExportedEpisode) -> list[str]:
        metadata = self.spec.metadata or {}
        nested = metadata.get("propensity")
        nested = nested if isinstance(nested, dict) else {}
        found: list[Any] = []
        for holder in (nested, metadata):  # where the run found its pack, as --resume does
            found += [holder.get(k) for k in ("pack_path", "suite", "pack")]
        found += [exported.pack, self.task]
        return list(dict.fromkeys(str(s) for s in found if isinstance(s, str) and s))

    def run_config(self) -> dict[str, Any] | None:
        """Our run's configuration, where the export kept it (``propensity.config`` or
        ``config`` of the eval's metadata); a branch continues under it."""
        metadata = self.spec.metadata or {}
        nested = metadata.get("propensity")
        for holder in (nested if isinstance(nested, dict) else {}, metadata):
            config = holder.get("config")
            if isinstance(config, dict) and "suite" in config:
                return config
        return None

    def scenario(self, exported: ExportedEpisode) -> tuple[Scenario | None, str | None]:
        """The exported episode's scenario and the pack source it was found in, or None and
        why not."""
        tried: list[str] = []
        for source in self._pack_sources(exported):
            if source not in self._scenarios:
                try:
                    self._scenarios[source] = {s.id: s for s in _pack(source).scenarios}
                except (ScenarioLoadError, OSError, ValueError):
                    self._scenarios[source] = {}
            scenario = self._scenarios[source].get(exported.scenario_id)
            if scenario is not None:
                return scenario, source
            tried.append(source)
        return None, (
            f"scenario {exported.scenario_id!r} of our export is in no pack found "
            f"(tried {', '.join(tried) or 'none'}): read as a foreign Inspect sample"
        )

    def judge_input(self, scenario: Scenario) -> JudgeInput:
        if scenario.id not in self._judge_inputs:
            self._judge_inputs[scenario.id] = judge_input_of(scenario)
        return self._judge_inputs[scenario.id]

    def flag_unmapped(self, kinds: list[str]) -> None:
        if kinds:
            self.unmapped_samples += 1
        for kind in kinds:
            self.unmapped[kind] = self.unmapped.get(kind, 0) + 1

    def notes(self) -> list[str]:
        notes = list(self.problems)
        if self.unmapped:
            counts = ", ".join(f"{k}: {n}" for k, n in sorted(self.unmapped.items()))
            notes.append(
                f"{self.path}: {self.unmapped_samples} sample(s) have message content we cannot "
                f"map ({counts}): kept in the messages' meta.inspect_content and listed in the "
                "records' meta.unmapped"
            )
        return notes


def _tools_offered(sample: Any, scenario: Scenario | None, naming: Naming) -> list[dict[str, Any]]:
    """The tools the model was offered, as our started event records them: from the sample's
    model events (Inspect logs no tool list elsewhere), with our risk labels for an export."""
    risks: dict[str, RiskLabel] = {}
    if scenario is not None:
        risks = {spec.exposed_name(naming): spec.risk for spec in scenario.tools}
    tools: dict[str, dict[str, Any]] = {}
    for event in getattr(sample, "events", None) or []:
        if getattr(event, "event", None) != "model":
            continue
        for info in getattr(event, "tools", None) or []:
            function = {
                "name": str(info.name),
                "description": str(info.description or ""),
                "parameters": _dump(info.parameters),
            }
            entry: dict[str, Any] = {"type": "function", "function": function}
            if info.name in risks:
                entry["x-risk"] = risks[info.name].value
            tools[str(info.name)] = entry
    return list(tools.values())


def _episode_id(context: _LogContext, sample: Any, exported: ExportedEpisode | None) -> str:
    """Ours when the export kept a valid one; else task, model, sample id and epoch, with a
    digest of the exact values and of the eval's own id (``eval.eval_id``, else its run id), so
    ids that slug alike stay distinct and two evals of one task (two models, two runs) never
    share an episode; the same eval given twice (its .eval and .json copies) is refused,
    naming both."""
    if exported is not None and exported.episode_id:
        if re.match(EPISODE_ID_PATTERN, exported.episode_id):
            return exported.episode_id
    eval_id = str(getattr(context.spec, "eval_id", "") or getattr(context.spec, "run_id", ""))
    hashed = digest(context.task, eval_id, repr(sample.id), str(sample.epoch))
    base = slug(f"{context.task}-{context.model}-{sample.id}") or "sample"
    tail = f"-e{sample.epoch}-{hashed}"
    return f"{base[: _ID_LIMIT - len(tail)]}{tail}"


class _Conversion:
    """One sample's messages walked into our events (see the module docstring)."""

    def __init__(
        self,
        context: _LogContext,
        sample: Any,
        episode_id: str,
        scenario: Scenario | None,
        naming: Naming,
        exported: ExportedEpisode | None,
    ) -> None:
        self.context = context
        self.sample = sample
        # Our export's message metadata (the agent turn, the calls' and results' own fields)
        # is read back only for samples it wrote.
        self.ours = exported is not None
        self.build = Builder(episode_id)
        self.turn = 0
        self.level = 0
        self.final_level = 0
        self.calls: dict[str, ToolCall] = {}
        self.unmapped: list[dict[str, Any]] = []
        self.tool_ids: dict[str, tuple[str, RiskLabel]] = {}
        if scenario is not None:
            self.tool_ids = {
                spec.exposed_name(naming): (spec.name, spec.risk) for spec in scenario.tools
            }

    def _meta(self, message: Any, index: int) -> dict[str, Any]:
        """Where the message came from, and the content blocks we cannot map."""
        text, kept, kinds = _content(message.content)
        inspect_meta = {
            k: v
            for k, v in (
                ("id", message.id),
                ("source", message.source),
                ("metadata", _dump(message.metadata)),
            )
            if v is not None
        }
        meta: dict[str, Any] = {"source": "inspect", "index": index}
        if inspect_meta:
            meta["inspect"] = inspect_meta
        if kept:
            meta["inspect_content"] = kept
            self.unmapped.append({"message": index, "role": message.role, "types": kinds})
            self.context.flag_unmapped(kinds)
        meta["_text"] = text
        return meta

    def message(self, message: Any, index: int) -> None:
        field = f"messages[{index}]"
        meta = self._meta(message, index)
        text = meta.pop("_text")
        role = message.role
        if role in ("system", "user"):
            if role == "user":
                self._pressure(message, text, meta)
            self.build.add(
                MessageEvent(
                    t=T0, turn=self.turn, message=Message(role=role, content=text, meta=meta)
                )
            )
        elif role == "assistant":
            self._assistant(message, index, text, meta)
        elif role == "tool":
            self._tool(message, field, text, meta)
        else:
            raise self.context.error(self.sample, f"{field}.role: unknown role {role!r}")

    def _pressure(self, message: Any, text: str | None, meta: dict[str, Any]) -> None:
        """Our export marks pressure messages in the message metadata, as our runs do."""
        pressure = (message.metadata or {}).get("pressure")
        if not isinstance(pressure, dict):
            return
        try:
            category = str(pressure["category"])
            level, index = int(pressure["level"]), int(pressure.get("index", 0))
        except (KeyError, TypeError, ValueError):
            return
        meta["pressure"] = pressure
        self.level = self.final_level = level
        self.build.add(
            PressureEvent(
                t=T0, turn=self.turn, category=category, level=level, index=index, text=text or ""
            )
        )

    def _exported(self, message: Any, key: str) -> Any:
        """A field our export wrote in the message's metadata (None for other logs)."""
        return (message.metadata or {}).get(key) if self.ours else None

    def _assistant(self, message: Any, index: int, text: str | None, meta: dict[str, Any]) -> None:
        self.turn += 1
        calls: list[ToolCall] = []
        levels: dict[str, int] = {}
        unparsed: list[UnparsedCall] = []
        sources: dict[str, Any] = {}
        own_calls = self._exported(message, "calls")
        own_calls = own_calls if isinstance(own_calls, dict) else {}
        for number, raw in enumerate(message.tool_calls or []):
            field = f"messages[{index}].tool_calls[{number}]"
            if not isinstance(raw.arguments, dict):
                raise self.context.error(self.sample, f"{field}.arguments: not an object")
            call_id = str(raw.id or f"call-{index}-{number}")
            own = own_calls.get(raw.id)
            own = own if isinstance(own, dict) else {}
            call = ToolCall(
                id=call_id,
                name=str(raw.function),
                arguments=dict(raw.arguments),
                provider_id=own.get("provider_id", raw.id or None),
                arguments_text=own.get("arguments_text"),
                recovered_from=own.get("recovered_from"),
            )
            if isinstance(own.get("level"), int):
                levels[call_id] = own["level"]
            if raw.parse_error is not None and isinstance(own.get("raw_arguments"), str):
                # Our export: the text the agent wrote, as the run recorded it (its agent turn
                # already says how the call was read).
                call.raw_arguments = own["raw_arguments"]
            elif raw.parse_error is not None:
                call.raw_arguments = str(raw.parse_error)
                unparsed.append(
                    UnparsedCall(
                        format="inspect",
                        names=[call.name],
                        excerpt=str(raw.parse_error)[:300],
                        reason=f"{field}.parse_error: Inspect could not parse the call's arguments",
                    )
                )
            else:
                sources[call_id] = call.arguments
            calls.append(call)
        meta["inspect_tool_calls"] = _dump(message.tool_calls or [])
        if sources:
            meta["source_arguments"] = sources
        model = getattr(message, "model", None) or self.context.model
        turn = AgentTurnEvent(
            t=T0, turn=self.turn, model=str(model), native_calls=len(calls), unparsed_calls=unparsed
        )
        recorded_turn = self._exported(message, "agent_turn")
        if isinstance(recorded_turn, dict):
            try:
                turn = AgentTurnEvent.model_validate({**recorded_turn, "t": T0, "turn": self.turn})
            except ValidationError:
                meta["problem"] = "the exported agent_turn metadata is not an agent turn"
        self.build.add(turn)
        self.build.add(
            MessageEvent(
                t=T0,
                turn=self.turn,
                message=Message(role="assistant", content=text, tool_calls=calls, meta=meta),
            )
        )
        for call in calls:
            self.calls[call.id] = call
            level = levels.get(call.id, self.level)
            self.build.add(ToolCallEvent(t=T0, turn=self.turn, level=level, call=call))

    def _tool(self, message: Any, field: str, text: str | None, meta: dict[str, Any]) -> None:
        call_id = str(message.tool_call_id or "")
        call = self.calls.get(call_id)
        name = str(message.function or (call.name if call else ""))
        error = message.error
        output = text if text else (str(error.message) if error is not None else "")
        data: dict[str, Any] = {}
        if error is not None:
            data["inspect_error"] = {"type": error.type, "message": error.message}
        if call is None:
            note = f"{field}.tool_call_id: {call_id!r} answers no call of an earlier message"
            data["problem"] = note
            self.context.problems.append(
                f"{self.context.path}:{self.context.where(self.sample)}: {note}"
            )
        tool_id, risk = self.tool_ids.get(name, (None, None))
        fields: dict[str, Any] = {
            "ok": error is None,
            "error_kind": None
            if error is None
            else _ERROR_KINDS.get(error.type, ToolErrorKind.TOOL_ERROR),
            "risk": risk,
            "tool_id": tool_id,
        }
        level = self.level
        if self.ours:  # the result's own fields, as our run recorded them
            own = message.metadata or {}
            fields.update({k: own[k] for k in ("ok", "error_kind", "risk", "tool_id") if k in own})
            if isinstance(own.get("data"), dict):
                data = {**own["data"], **data}
            level = own["level"] if isinstance(own.get("level"), int) else level
        try:
            result = ToolResult(call_id=call_id, name=name, output=output, data=data, **fields)
        except ValidationError as exc:
            raise self.context.error(
                self.sample, f"{field}.metadata: not our tool result ({exc.errors()[0]['msg']})"
            ) from None
        self.build.add(ToolResultEvent(t=T0, turn=self.turn, level=level, result=result))
        self.build.add(
            MessageEvent(
                t=T0,
                turn=self.turn,
                message=Message(
                    role="tool", content=output, tool_call_id=call_id, name=name, meta=meta
                ),
            )
        )

    def end(self, exported: ExportedEpisode | None) -> None:
        sample = self.sample
        recorded_reason = exported.end_reason if exported is not None else None
        if sample.error is not None:
            message = str(sample.error.message)
            self.build.add(
                ErrorEvent(t=T0, turn=self.turn, kind="inspect_sample_error", message=message)
            )
            status, reason = EpisodeStatus.ERRORED, f"inspect_sample_error: {message[:200]}"
        elif sample.limit is not None:
            status, reason = EpisodeStatus.DONE, f"inspect_{sample.limit.type}_limit"
        else:
            status, reason = EpisodeStatus.DONE, recorded_reason or "recorded"
        self.build.add(
            EpisodeEndedEvent(
                t=T0,
                turn=self.turn,
                status=status,
                reason=reason,
                turns=self.turn,
                final_level=self.final_level,
            )
        )


def _labels(scores: dict[str, Any]) -> RecordedLabels | None:
    """Scores the recording named after our judges, on their 0-3 scale, as recorded labels."""

    def _value(name: str) -> int | None:
        score = scores.get(name)
        value = getattr(score, "value", None)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 3:
            return value
        if isinstance(value, float) and value.is_integer() and 0 <= value <= 3:
            return int(value)
        return None

    safety, helpfulness = _value(SAFETY_EVALUATOR), _value(HELPFULNESS_EVALUATOR)
    if safety is None and helpfulness is None:
        return None
    return RecordedLabels(safety=safety, helpfulness=helpfulness, origin="inspect sample scores")


def _input_text(sample: Any) -> str:
    """The sample's task as a judge reads it: its input text, or its first user message."""
    if isinstance(sample.input, str):
        return sample.input
    for message in sample.input or sample.messages or []:
        if message.role == "user":
            return _content(message.content)[0] or ""
    return ""


def _sample_meta(context: _LogContext, sample: Any) -> dict[str, Any]:
    spec = context.spec
    values = {
        "task": context.task,
        "task_id": spec.task_id,
        "eval_id": spec.eval_id,
        "run_id": spec.run_id,
        "model": context.model,
        "created": spec.created,
        "log_status": context.header.status,
        "sample_id": sample.id,
        "epoch": sample.epoch,
        "uuid": sample.uuid,
        "target": sample.target,
        "metadata": _dump(sample.metadata) or None,
        "model_usage": _dump(sample.model_usage) or None,
        "total_time": sample.total_time,
        "working_time": sample.working_time,
        "limit": _dump(sample.limit),
        "error": _dump(sample.error),
        "error_retries": _dump(sample.error_retries),
    }
    return {k: v for k, v in values.items() if v is not None}


def _foreign_tools(sample: Any, scenario: Scenario, naming: Naming) -> list[str]:
    """The tools the sample's messages call (or answer for) that are not tools of
    ``scenario`` under ``naming`` (by their exposed names), sorted."""
    known = {spec.exposed_name(naming) for spec in scenario.tools}
    called: set[str] = set()
    for message in sample.messages or []:
        for raw in getattr(message, "tool_calls", None) or []:
            called.add(str(raw.function))
        if getattr(message, "role", None) == "tool" and getattr(message, "function", None):
            called.add(str(message.function))
    return sorted(called - known)


def _record(context: _LogContext, sample: Any) -> Recorded:
    exported = ExportedEpisode.of(sample.metadata)
    scenario: Scenario | None = None
    problem: str | None = None
    pack: str | None = None
    if exported is not None:
        scenario, found = context.scenario(exported)
        pack, problem = (found, None) if scenario is not None else (None, found)
    naming = exported.naming if exported is not None else Naming.HARMFUL
    if exported is not None and scenario is not None:
        foreign = _foreign_tools(sample, scenario, naming)
        if foreign:
            # The metadata names our scenario, the calls are not its tools: never scored as it.
            problem = (
                f"tools {', '.join(foreign)} are not tools of scenario {scenario.id!r} "
                f"(naming {naming.value}): the sample is not our export of it; read as a "
                "foreign Inspect sample"
            )
            context.problems.append(f"{context.path}:{context.where(sample)}: {problem}")
            scenario, pack = None, None
    episode_id = _episode_id(context, sample, exported)
    started = EpisodeStartedEvent(
        t=T0,
        episode_id=episode_id,
        scenario_id=exported.scenario_id
        if exported is not None
        else f"inspect-{slug(context.task) or 'task'}",
        domain=(exported.domain if exported is not None else None)
        or (scenario.domain if scenario is not None else "inspect"),
        agent=(exported.agent if exported is not None else None) or context.model,
        category=exported.category if exported is not None else "baseline",
        naming=naming,
        repeat=exported.repeat if exported is not None else sample.epoch - 1,
        seed=exported.seed if exported is not None else 0,
        kind=exported.kind if exported is not None else None,
        tools=exported.tools
        if exported is not None and exported.tools is not None
        else _tools_offered(sample, scenario, naming),
    )
    convert = _Conversion(context, sample, episode_id, scenario, naming, exported)
    convert.build.add(started)
    messages = list(sample.messages or [])
    silent: str | None = None
    if not messages:
        silent = "the sample holds no messages: no agent turn was recorded, only its input is read"
        context.problems.append(f"{context.path}:{context.where(sample)}: {silent}")
    if not messages and isinstance(sample.input, str):
        # A sample that failed before its first message still shows what it was asked.
        convert.build.add(MessageEvent(t=T0, message=Message(role="user", content=sample.input)))
    elif not messages:
        messages = list(sample.input)
    for index, message in enumerate(messages):
        convert.message(message, index)
    convert.end(exported)
    kind: RecordKind = "unknown"
    judge_input: JudgeInput | None = None
    meta: dict[str, Any] = {"inspect": _sample_meta(context, sample)}
    if scenario is not None:
        kind = scenario.kind
        if scenario.kind == "open":
            judge_input = context.judge_input(scenario)
        meta["exported"] = exported.model_dump(mode="json") if exported is not None else None
        meta["pack"] = pack
        config = context.run_config()
        if config is not None:
            meta["run_config"] = config
    else:
        # Not one of our scenarios: judged as an open episode from what the sample says.
        kind = "open"
        target = sample.target if isinstance(sample.target, list) else [sample.target]
        judge_input = JudgeInput(
            task=_input_text(sample),
            expected_achievements=[str(t) for t in target if t],
        )
        problem = problem or (
            "not one of our scenarios: judged as an open episode from the sample's input "
            "(the target as its expected achievement; no underspecifications, risky outcomes "
            "or risky actions are known)"
        )
    problem = "; ".join(p for p in (problem, silent) if p)
    if problem:
        meta["problem"] = problem
    if sample.scores:
        meta["inspect_scores"] = {
            "note": "the recording's own verdicts (Inspect scorers), not ours",
            "scores": _dump(sample.scores),
        }
    if convert.unmapped:
        meta["unmapped"] = convert.unmapped
    return Recorded(
        source_format=SourceFormat.INSPECT,
        source_file=str(context.path),
        kind=kind,
        trajectory=convert.build.trajectory,
        scenario=scenario,
        judge_input=judge_input,
        labels=_labels(sample.scores or {}),
        meta=meta,
    )


def _samples(log_api: ModuleType, path: Path, header: Any) -> Any:
    """The samples of a log, one at a time where the log format allows it: an ``.eval`` log
    that lists its sample ids is streamed; a ``.json`` log is read whole (one JSON document)."""
    streamable = path.suffix.lower() == ".eval" and header.eval.dataset.sample_ids is not None
    if streamable:
        yield from log_api.read_eval_log_samples(
            str(path), all_samples_required=False, resolve_attachments=True
        )
        return
    log = log_api.read_eval_log(str(path), resolve_attachments=True)
    yield from log.samples or []


def _unrecognised_members(infos: list[zipfile.ZipInfo]) -> list[str]:
    """The members of an ``.eval`` zip that are neither a sample
    (``samples/<id>_epoch_<n>.json``) nor one of Inspect's other documents (the header,
    summaries, reductions, journal), in zip order."""
    strays: list[str] = []
    for info in infos:
        name = info.filename
        if info.is_dir() or name in _KNOWN_MEMBERS or name.startswith("_journal/"):
            continue
        if _SAMPLE_MEMBER.match(name) is None:
            strays.append(name)
    return strays


def _member_sample(name: str) -> str | None:
    """The sample an ``.eval`` member holds, by its name (``ID`` or ``ID@EPOCH``)."""
    found = _SAMPLE_MEMBER.match(name)
    if found is None:
        return None
    return found["id"] if found["epoch"] == "1" else f"{found['id']}@{found['epoch']}"


def _data_sample(value: dict[str, Any], fallback: str) -> str:
    """The sample a JSON object describes (``ID`` or ``ID@EPOCH``), else ``fallback``."""
    sample_id, epoch = value.get("id"), value.get("epoch")
    if not isinstance(sample_id, str | int) or isinstance(sample_id, bool):
        return fallback
    return str(sample_id) if epoch in (None, 1) else f"{sample_id}@{epoch}"


def _check_json(
    path: Path, value: Any, model: Any, where: str, record: str | None
) -> ReplaySourceError | None:
    """Why ``value`` (one JSON document of the log, at ``where``) is not a ``model``."""
    if not isinstance(value, dict):
        return ReplaySourceError(path, None, f"{where}: not a JSON object", record=record)
    try:
        model.model_validate(value)
    except ValidationError as exc:
        return ReplaySourceError(
            path, None, f"{validation_problem(exc)} (in {where})", record=record
        )
    return None


def _parse(path: Path, data: bytes, where: str, record: str | None) -> Any:
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise ReplaySourceError(
            path,
            None,
            f"{where}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})",
            record=record,
        ) from None
    except UnicodeDecodeError:
        raise ReplaySourceError(path, None, f"{where}: not UTF-8 text", record=record) from None
    except RecursionError:
        raise ReplaySourceError(
            path, None, f"{where}: JSON nested too deeply to be read", record=record
        ) from None


def _diagnose(
    log_api: ModuleType, path: Path, limits: LogLimits, infos: list[zipfile.ZipInfo] | None
) -> ReplaySourceError | None:
    """Which document of a log Inspect could not read, and which field of it: the header or a
    sample (named by its id, from the zip member's name or the sample's own fields); None when
    each parses and validates on its own (the caller then says what Inspect said)."""
    try:
        if infos is not None:  # an .eval zip, its members already checked to be within limits
            with path.open("rb") as handle:
                for info in infos:
                    name = info.filename
                    record = _member_sample(name)
                    if name != "header.json" and record is None:
                        continue
                    where = f"member {name!r}"
                    value = _parse(path, read_member(path, handle, info, limits), where, record)
                    if record is None:
                        found = _check_json(path, value, log_api.EvalLog, where, None)
                    else:
                        record = _data_sample(value, record) if isinstance(value, dict) else record
                        found = _check_json(path, value, log_api.EvalSample, where, record)
                    if found is not None:
                        return found
            return None
        value = _parse(path, path.read_bytes(), "the log", None)
        if not isinstance(value, dict):
            return ReplaySourceError(path, None, "the log: not a JSON object")
        header = {k: v for k, v in value.items() if k != "samples"}
        found = _check_json(path, header, log_api.EvalLog, "the log's header", None)
        if found is not None:
            return found
        samples = value.get("samples")
        if samples is not None and not isinstance(samples, list):
            return ReplaySourceError(path, None, "samples: not a list")
        for index, sample in enumerate(samples or []):
            where = f"samples[{index}]"
            record = _data_sample(sample, where) if isinstance(sample, dict) else where
            found = _check_json(path, sample, log_api.EvalSample, where, record)
            if found is not None:
                return found
    except ReplaySourceError as exc:
        return exc
    return None


def _unreadable(
    log_api: ModuleType,
    path: Path,
    limits: LogLimits,
    infos: list[zipfile.ZipInfo] | None,
    what: str,
    exc: BaseException,
) -> ReplaySourceError:
    """The error for a log Inspect could not read: the document and field at fault where we
    can find them, else what Inspect said (without pydantic's links)."""
    found = _diagnose(log_api, path, limits, infos)
    if found is not None:
        return found
    said = strip_pydantic_urls(str(exc))
    return ReplaySourceError(path, None, f"{what}: {type(exc).__name__}: {said[:300]}")


def read_inspect(path: Path) -> LoadResult:
    """Every sample of an Inspect log as a :class:`Recorded` (see the module docstring).

    The log is first checked to be within the size limits (:mod:`.limits`: an ``.eval``
    zip's members, a ``.json`` log's size). Raises :class:`ReplaySourceError` naming the file
    (and the sample and field, for a sample that cannot be read or converted) when
    ``inspect_ai`` is missing, the log is over a limit or cannot be read, or two samples would
    be the same episode.
    """
    log_api = _log_api(path)
    limits = LogLimits.from_env()
    infos: list[zipfile.ZipInfo] | None = None
    if path.suffix.lower() == ".eval":
        infos = check_eval_zip(path, limits)
    else:
        try:
            limits.check_file(path)
            data = path.read_bytes()
        except OSError as exc:
            raise ReplaySourceError(path, None, f"cannot be read: {exc}") from None
        # Parsed once ourselves first: on JSON nested too deeply Inspect's reader exhausts
        # memory rather than fail; this says so, naming the file.
        _parse(path, data, "the log", None)
        del data
    try:
        header = log_api.read_eval_log(str(path), header_only=True)
    except (*_READ_ERRORS, ValidationError) as exc:
        raise _unreadable(log_api, path, limits, infos, "not a readable Inspect log", exc) from None
    context = _LogContext(path, header)
    result = LoadResult()
    strays = _unrecognised_members(infos or [])
    if strays:
        shown = ", ".join(repr(name) for name in strays[:5])
        more = f" and {len(strays) - 5} more" if len(strays) > 5 else ""
        result.problems.append(
            f"{path}: {len(strays)} member(s) do not follow Inspect's layout (samples are "
            f"samples/<id>_epoch_<n>.json): {shown}{more}; not read, so any sample they hold "
            "is not observed"
        )
    if header.status != "success":
        result.problems.append(
            f"{path}: the log's status is {header.status!r}: only the samples it holds are read"
            + (f" ({header.error.message[:200]})" if header.error is not None else "")
        )
    samples = _samples(log_api, path, header)
    seen: dict[str, str] = {}
    while True:
        try:
            sample = next(samples)
        except StopIteration:
            break
        except (*_READ_ERRORS, ValidationError) as exc:
            raise _unreadable(
                log_api, path, limits, infos, "a sample cannot be read", exc
            ) from None
        try:
            record = _record(context, sample)
        except ValidationError as exc:
            raise context.error(sample, f"cannot be converted: {validation_problem(exc)}") from None
        here = f"sample #{len(result.records) + 1} ({context.where(sample)})"
        if record.episode_id in seen:
            raise context.error(
                sample,
                f"{here} has the episode id {record.episode_id!r} of {seen[record.episode_id]} "
                "in this log (the same sample id and epoch, or the same exported episode): one "
                "episode would be scored twice; refused",
            )
        seen[record.episode_id] = here
        result.records.append(record)
    if not result.records:
        result.problems.append(f"{path}: the log holds no samples")
    result.problems.extend(context.notes())
    return result


# -- branching --------------------------------------------------------------------------------


def branchable_inspect_record(path: Path, episode: str) -> Recorded:
    """The episode of an Inspect log to branch, checked to be one our tools can continue.

    ``episode`` is the record's episode id or the sample id (``ID@EPOCH`` for one epoch of a
    multi-epoch log). Raises :class:`ReplaySourceError` when no sample matches, and when the
    episode's tools are not known to us (not one of our exported scenarios, or calls to tools
    its scenario does not define), naming the unknown tools.
    """
    records = read_inspect(path).records
    matches = [
        r
        for r in records
        if episode
        in (
            r.episode_id,
            str(r.meta["inspect"].get("sample_id")),
            f"{r.meta['inspect'].get('sample_id')}@{r.meta['inspect'].get('epoch')}",
        )
    ]
    if not matches:
        examples = ", ".join(r.episode_id for r in records[:5])
        raise ReplaySourceError(path, None, f"no episode {episode!r} (for example: {examples})")
    if len(matches) > 1:
        ids = ", ".join(r.episode_id for r in matches[:5])
        raise ReplaySourceError(
            path, None, f"{episode!r} names {len(matches)} episodes ({ids}): give one of their ids"
        )
    record = matches[0]
    where = f"{record.meta['inspect'].get('sample_id')}"
    called = sorted(
        {e.call.name for e in record.trajectory.events if isinstance(e, ToolCallEvent)}
        | {
            str(t.get("function", {}).get("name"))
            for t in (record.trajectory.started.tools if record.trajectory.started else [])
        }
    )
    scenario = record.scenario
    if scenario is None:
        raise ReplaySourceError(
            path,
            None,
            "cannot branch: its tools are not known to us "
            f"({', '.join(called) or 'no tools'}); only samples exported from our runs "
            "(propensity export RUN --format inspect) whose scenario is in an installed pack "
            "can be branched"
            + (f" ({record.meta['problem']})" if "problem" in record.meta else ""),
            record=where,
        )
    if scenario.kind != "propensity":
        raise ReplaySourceError(
            path,
            None,
            f"cannot branch: scenario {scenario.id!r} is {scenario.kind!r}; branching applies to "
            "propensity scenarios",
            record=where,
        )
    naming = record.trajectory.started.naming if record.trajectory.started else Naming.HARMFUL
    known = {spec.exposed_name(naming) for spec in scenario.tools}
    unknown = [name for name in called if name not in known]
    if unknown:
        raise ReplaySourceError(
            path,
            None,
            f"cannot branch: tools {', '.join(unknown)} are not tools of scenario "
            f"{scenario.id!r} (naming {naming.value}): the recording cannot be continued with "
            "our tools",
            record=where,
        )
    return record
