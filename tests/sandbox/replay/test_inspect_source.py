"""Inspect AI eval logs as a replay source: real logs written by inspect_ai itself, offline."""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox import RunConfig, RunStore, start_run
from sandbox.agents import AgentSpec
from sandbox.cli import main
from sandbox.replay import rescore, verify
from sandbox.replay.sources import (
    ReplaySourceError,
    SourceFormat,
    branchable_inspect_record,
    detect_format,
    load_recorded,
    read_source,
)
from scenarios.records import (
    AgentTurnEvent,
    EpisodeStatus,
    ErrorEvent,
    MessageEvent,
    PressureEvent,
    ToolCallEvent,
    ToolErrorKind,
    ToolResultEvent,
)

pytest.importorskip("inspect_ai")

from inspect_ai import Task
from inspect_ai import eval as inspect_eval
from inspect_ai.dataset import Sample
from inspect_ai.log import (
    EvalConfig,
    EvalDataset,
    EvalError,
    EvalLog,
    EvalSample,
    EvalSpec,
    write_eval_log,
)
from inspect_ai.model import (
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageTool,
    ChatMessageUser,
    ContentImage,
    ContentReasoning,
    ContentText,
    ModelOutput,
    ModelUsage,
    get_model,
)
from inspect_ai.scorer import includes
from inspect_ai.solver import generate, system_message, use_tools
from inspect_ai.tool import ToolCall, ToolCallError, tool


@tool
def send_email() -> Any:
    async def execute(to: str, body: str) -> str:
        """Send an email.

        Args:
            to: recipient
            body: text
        """
        return f"sent to {to}"

    return execute


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Nothing here may reach a network: any connection but a local socket fails."""
    connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        if self.family == socket.AF_UNIX:
            return connect(self, address)
        raise OSError(f"network access in a test: {address!r}")

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setenv("INSPECT_DISPLAY", "none")
    yield


def _outputs() -> list[ModelOutput]:
    outputs = [
        ModelOutput.for_tool_call("mockllm/model", "send_email", {"to": "a@b.c", "body": "hi"}),
        ModelOutput.from_content("mockllm/model", "done"),
    ]
    for output in outputs:  # set, so mockllm does not count tokens (tiktoken would download)
        output.usage = ModelUsage(input_tokens=10, output_tokens=5, total_tokens=15)
    return outputs


@pytest.fixture(scope="module")
def eval_logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny Inspect task run by inspect_ai with its mock model, logged in both formats."""
    root = tmp_path_factory.mktemp("inspect-logs")
    task = Task(
        dataset=[Sample(id="s1", input="Email a@b.c", target="done")],
        solver=[system_message("You are helpful."), use_tools(send_email()), generate()],
        scorer=includes(),
        name="mail_task",
    )
    logs = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INSPECT_DISPLAY", "none")
        for fmt in ("eval", "json"):
            model = get_model("mockllm/model", custom_outputs=_outputs(), memoize=False)
            (log,) = inspect_eval(
                task, model=model, log_dir=str(root / fmt), log_format=fmt, display="none"
            )
            assert log.status == "success", log.error
            logs[fmt] = Path(log.location)
    return logs


def _write(path: Path, samples: list[EvalSample], *, epochs: int = 1, fmt: str = "eval") -> Path:
    ids = list(dict.fromkeys(s.id for s in samples))
    spec = EvalSpec(
        created="2025-01-01T00:00:00+00:00",
        task="edge_task",
        dataset=EvalDataset(samples=len(ids), sample_ids=ids),
        model="mockllm/model",
        config=EvalConfig(epochs=epochs),
    )
    log = EvalLog(status="success", eval=spec, samples=samples)
    write_eval_log(log, str(path), format=fmt)  # type: ignore[arg-type]
    return path


def _sample(sample_id: str, messages: list[Any], **fields: Any) -> EvalSample:
    return EvalSample(id=sample_id, epoch=1, input="go", target="", messages=messages, **fields)


# -- detection and conversion -----------------------------------------------------------------


def test_both_log_formats_are_detected_and_read_alike(eval_logs: dict[str, Path]) -> None:
    records = {}
    for fmt, path in eval_logs.items():
        assert detect_format(path) is SourceFormat.INSPECT
        (records[fmt],) = load_recorded(path)
    # Two evals of one task (here one per format) never share an episode id.
    assert records["eval"].episode_id != records["json"].episode_id
    record = records["eval"]
    assert record.episode_id.startswith("mail-task-mockllm-model-s1-e1-")
    assert record.source_format is SourceFormat.INSPECT and record.kind == "open"
    events = record.trajectory.events
    messages = [e.message for e in events if isinstance(e, MessageEvent)]
    assert [m.role for m in messages] == ["system", "user", "assistant", "tool", "assistant"]
    (call,) = [e.call for e in events if isinstance(e, ToolCallEvent)]
    assert call.name == "send_email" and call.arguments == {"to": "a@b.c", "body": "hi"}
    assert messages[2].tool_calls[0].id == call.id == call.provider_id
    (result,) = [e.result for e in events if isinstance(e, ToolResultEvent)]
    assert result.ok and result.output == "sent to a@b.c" and result.call_id == call.id
    assert sum(isinstance(e, AgentTurnEvent) for e in events) == 2
    started = record.trajectory.started
    assert started is not None and started.agent == "mockllm/model"
    assert started.tools[0]["function"]["name"] == "send_email"  # from the model events
    assert record.status is EpisodeStatus.DONE
    # The recording's verdicts are kept as its own, never taken for ours.
    assert record.meta["inspect_scores"]["scores"]["includes"]["value"] == "C"
    assert record.labels is None
    assert "not one of our scenarios" in record.meta["problem"]


def test_our_json_and_other_formats_are_not_taken_for_inspect_logs(tmp_path: Path) -> None:
    manifest_like = tmp_path / "manifest.json"
    manifest_like.write_text(json.dumps({"format_version": 1, "run_id": "x"}, indent=2))
    almost = tmp_path / "almost.json"
    almost.write_text(json.dumps({"version": 2, "status": "success", "eval": {"no": "task"}}))
    for path in (manifest_like, almost):
        with pytest.raises(ReplaySourceError):
            detect_format(path)
    dump = tmp_path / "dump.jsonl"
    dump.write_text(json.dumps({"input": "x", "intermediate_steps": []}) + "\n")
    assert detect_format(dump) is SourceFormat.TOOLEMU


def test_a_directory_of_logs_is_read_and_strays_are_said(
    eval_logs: dict[str, Path], tmp_path: Path
) -> None:
    for path in eval_logs.values():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    (tmp_path / "notes.json").write_text("{}")
    # One eval given twice (a copy) is one episode recorded twice: refused, naming both.
    (tmp_path / "copy.eval").write_bytes(eval_logs["eval"].read_bytes())
    with pytest.raises(ReplaySourceError, match=r"mail-task-.* is recorded twice: at "):
        read_source(tmp_path)
    (tmp_path / "copy.eval").unlink()
    _simple_log(tmp_path / "other.json", fmt="json")
    loaded = read_source(tmp_path)
    assert len(loaded.records) == 3
    assert any("notes.json: skipped" in p for p in loaded.problems)


def test_a_sample_error_is_an_errored_episode_never_behaviour(tmp_path: Path) -> None:
    sample = _sample(
        "crashed",
        [ChatMessageUser(content="go")],
        error=EvalError(message="RateLimitError: 429", traceback="", traceback_ansi=""),
    )
    (record,) = load_recorded(_write(tmp_path / "err.eval", [sample]))
    assert record.status is EpisodeStatus.ERRORED
    (error,) = [e for e in record.trajectory.events if isinstance(e, ErrorEvent)]
    assert "429" in error.message
    assert rescore(record) == []


def test_a_call_inspect_could_not_parse_is_flagged_not_dropped(tmp_path: Path) -> None:
    bad = ToolCall(id="c1", function="delete_db", arguments={}, parse_error="bad JSON: {x")
    messages = [
        ChatMessageUser(content="go"),
        ChatMessageAssistant(content="", tool_calls=[bad]),
        ChatMessageTool(
            content="",
            tool_call_id="c1",
            function="delete_db",
            error=ToolCallError(type="parsing", message="bad JSON: {x"),
        ),
    ]
    (record,) = load_recorded(_write(tmp_path / "parse.json", [_sample("p", messages)], fmt="json"))
    events = record.trajectory.events
    (call,) = [e.call for e in events if isinstance(e, ToolCallEvent)]
    assert call.name == "delete_db" and call.raw_arguments == "bad JSON: {x"
    (turn,) = [e for e in events if isinstance(e, AgentTurnEvent)]
    assert turn.unparsed_calls[0].names == ["delete_db"]
    assert "parse_error" in turn.unparsed_calls[0].reason
    (result,) = [e.result for e in events if isinstance(e, ToolResultEvent)]
    assert not result.ok and result.error_kind is ToolErrorKind.BAD_ARGUMENTS
    assert result.data["inspect_error"] == {"type": "parsing", "message": "bad JSON: {x"}


def test_epochs_make_distinct_episodes(tmp_path: Path) -> None:
    samples = [
        EvalSample(
            id=7, epoch=epoch, input="go", target="", messages=[ChatMessageUser(content="go")]
        )
        for epoch in (1, 2)
    ]
    records = load_recorded(_write(tmp_path / "epochs.eval", samples, epochs=2))
    assert len({r.episode_id for r in records}) == 2
    assert [r.trajectory.started.repeat for r in records if r.trajectory.started] == [0, 1]
    again = load_recorded(tmp_path / "epochs.eval")
    assert [r.episode_id for r in again] == [r.episode_id for r in records]  # deterministic


def test_content_we_cannot_map_is_kept_and_flagged(tmp_path: Path) -> None:
    messages = [
        ChatMessageSystem(content="sys"),
        ChatMessageUser(
            content=[ContentText(text="look:"), ContentImage(image="data:image/png;base64,AA==")]
        ),
        ChatMessageAssistant(
            content=[ContentReasoning(reasoning="thinking..."), ContentText(text="ok")]
        ),
    ]
    loaded = read_source(_write(tmp_path / "content.eval", [_sample("c", messages)]))
    (record,) = loaded.records
    texts = [e.message for e in record.trajectory.events if isinstance(e, MessageEvent)]
    assert texts[1].content == "look:" and texts[1].meta["inspect_content"][0]["type"] == "image"
    assert texts[2].content == "ok" and "thinking" in json.dumps(texts[2].meta["inspect_content"])
    assert [u["types"] for u in record.meta["unmapped"]] == [["image"], ["reasoning"]]
    assert any("cannot map (image: 1, reasoning: 1)" in p for p in loaded.problems)


def test_without_inspect_ai_the_error_says_to_install_the_extra(
    eval_logs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "inspect_ai.log", None)
    assert detect_format(eval_logs["json"]) is SourceFormat.INSPECT  # detection needs none
    with pytest.raises(ReplaySourceError, match=r"--extra inspect.*propensity-sandbox\[inspect\]"):
        load_recorded(eval_logs["eval"])


def test_an_unreadable_log_names_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.eval"
    broken.write_bytes(b"not a zip")
    with pytest.raises(ReplaySourceError, match=r"broken\.eval: not a readable Inspect log"):
        load_recorded(broken)


# -- rescore, verify, branch ------------------------------------------------------------------


def test_rescore_through_the_cli_judges_inspect_logs(
    eval_logs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "scores.jsonl"
    code = main(
        ["replay", "rescore", str(eval_logs["eval"]), str(eval_logs["json"]), "--out", str(out)]
    )
    assert code == 0
    assert "2 inspect" in capsys.readouterr().out
    evaluators = {json.loads(line)["evaluator"] for line in out.read_text().splitlines()}
    assert {"safety_judge", "helpfulness_judge", "tool_call_protocol"} <= evaluators


async def test_verify_replays_recorded_calls_and_says_what_it_cannot(
    eval_logs: dict[str, Path],
) -> None:
    (record,) = load_recorded(eval_logs["eval"])
    report = await verify(record, "recorded")
    assert report.ran == 1 and report.differences == 0
    sandbox = await verify(record, "sandbox")
    assert sandbox.ran == 0 and sandbox.not_run == 1
    assert "no scenario tool set" in str(sandbox.calls[0].reason)


def test_branch_refuses_a_log_whose_tools_we_do_not_know(eval_logs: dict[str, Path]) -> None:
    with pytest.raises(ReplaySourceError, match=r"\.eval:s1: cannot branch.*send_email"):
        branchable_inspect_record(eval_logs["eval"], "s1")


async def _exported_starter_log(tmp_path: Path) -> tuple[Path, Path, str]:
    """A starter episode recorded by our run (always-safe, time pressure), exported to Inspect."""
    from sandbox.results.inspect_export import export_inspect

    config = RunConfig(
        suite="starter",
        agents=[AgentSpec(spec="always-safe")],
        scenario_ids=["bio-ibc-amendment"],
        categories=["time"],
        include_baseline=False,
        namings=["harmful"],  # type: ignore[list-item]
        max_turns=6,
    )
    result = await start_run(config, tmp_path / "recorded")
    (episode_id,) = RunStore(result.run_dir).latest_states()
    (log,) = export_inspect(result.run_dir, tmp_path / "inspect").paths
    return result.run_dir, log, episode_id


async def test_our_exported_log_rescores_as_the_run_and_branches(tmp_path: Path) -> None:
    run_dir, log, episode_id = await _exported_starter_log(tmp_path)
    (ours,) = load_recorded(run_dir)
    (imported,) = load_recorded(log)
    assert imported.episode_id == episode_id and imported.kind == "propensity"
    assert imported.scenario is not None and imported.scenario.id == "bio-ibc-amendment"
    assert any(isinstance(e, PressureEvent) for e in imported.trajectory.events)

    def scores(record: Any) -> list[tuple[str, Any, Any]]:
        return [(s.evaluator, s.value, s.label) for s in rescore(record)]

    assert scores(imported) == scores(ours)
    assert (await verify(imported, "recorded")).differences == 0
    # Its scenario recovered, every recorded call re-runs against our own tool backends.
    against_sandbox = await verify(imported, "sandbox")
    assert against_sandbox.not_run == 0 and against_sandbox.differences == 0
    assert against_sandbox.ran == len(against_sandbox.calls) > 0

    code = main(
        [
            "replay",
            "branch",
            str(log),
            "--episode",
            episode_id,
            "--at",
            "2",
            "--agent",
            "always-risky",
            "--out",
            str(tmp_path / "branched"),
        ]
    )
    assert code == 0
    store = RunStore(tmp_path / "branched")
    (branched_id,) = store.latest_states()
    started = store.read_trajectory(branched_id).started
    assert started is not None and started.branched_from is not None
    assert started.branched_from["source_run"] == str(log.resolve())
    assert started.branched_from["divergences"] == []
    risky = [s for s in store.read_scores() if s.evaluator == "risky_tool_choice"]
    assert risky and risky[0].value == 1.0


# -- a sample that errored before its tool result (a newcomer's report) -----------------------


@tool
def flaky_email() -> Any:
    async def execute(to: str, body: str) -> str:
        """Send an email.

        Args:
            to: recipient
            body: text
        """
        if to == "boom":
            raise RuntimeError("smtp down")
        return f"sent to {to}"

    return execute


@pytest.fixture(scope="module")
def errored_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two samples run by inspect_ai; the tool of one raises, so that sample errors before any
    tool result is recorded (fail_on_error=False keeps the log a success)."""
    root = tmp_path_factory.mktemp("inspect-errored")
    outputs = [
        ModelOutput.for_tool_call("mockllm/model", "flaky_email", {"to": to, "body": "hi"})
        if k % 2 == 0
        else ModelOutput.from_content("mockllm/model", "done")
        for k, to in enumerate(["a@b.c", "", "boom", ""])
    ]
    for output in outputs:
        output.usage = ModelUsage(input_tokens=10, output_tokens=5, total_tokens=15)
    task = Task(
        dataset=[
            Sample(id="s1", input="Email a@b.c", target="done"),
            Sample(id="s2", input="Email boom", target="done"),
        ],
        solver=[system_message("You are helpful."), use_tools(flaky_email()), generate()],
        scorer=includes(),
        name="mail_task",
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INSPECT_DISPLAY", "none")
        model = get_model("mockllm/model", custom_outputs=outputs, memoize=False)
        (log,) = inspect_eval(
            task,
            model=model,
            log_dir=str(root),
            display="none",
            max_samples=1,
            fail_on_error=False,
        )
    assert log.status == "success" and log.samples is not None
    assert sum(s.error is not None for s in log.samples) == 1
    return Path(log.location)


async def test_a_call_the_errored_sample_never_answered_is_not_checked(errored_log: Path) -> None:
    records = load_recorded(errored_log)
    (errored,) = [r for r in records if r.status is EpisodeStatus.ERRORED]
    report = await verify(errored, "recorded")
    (call,) = report.calls
    assert call.status == "not_checked" and call.equal is None and call.replayed is None
    assert "errored before this call's result was recorded" in str(call.reason)
    assert "arguments differ" not in str(call.reason)
    assert report.differences == 0 and report.not_checked == 1 and report.ok


def test_the_cli_says_what_was_not_checked_and_not_run_and_why(
    errored_log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "v.jsonl"
    assert main(["replay", "verify", str(errored_log), "--out", str(out_file)]) == 0
    out = capsys.readouterr().out
    assert "differs" not in out and "0 difference(s)" in out
    assert "1 not checked" in out and "not checked (1): no recorded observation" in out
    # Against the sandbox, the reason for the calls not run is in the summary itself.
    assert main(["replay", "verify", str(errored_log), "--against", "sandbox"]) == 0
    out = capsys.readouterr().out
    assert "2 not run" in out and "not run (2): no scenario tool set" in out


def test_rescore_counts_the_errored_sample_and_says_the_judge_is_a_heuristic(
    errored_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", "rescore", str(errored_log), "--agreement"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # the table title and caption wrap
    assert "re-scored 2 episode(s)" in out
    assert "1 scored, 1 errored (not scored: infrastructure)" in out
    assert "rule judge: heuristic, not validated" in out
    assert "note: 1 of 1 rule-judged episode(s) come from a source that declares no risk" in out
    assert "not one of our scenarios" in out
    # No recorded label to compare with: said plainly, and no empty matrix.
    assert "no recorded safety/helpfulness labels to compare with" in out
    assert "| ours \\ recorded |" not in out


def test_rescored_safety_of_a_source_without_risks_is_marked(errored_log: Path) -> None:
    (done,) = [r for r in load_recorded(errored_log) if r.status is EpisodeStatus.DONE]
    (safety,) = [s for s in rescore(done) if s.evaluator == "safety_judge"]
    assert safety.details["no_declared_risks"] is True


# -- logs read from disk are bounded and validated like user input ----------------------------


def _simple_log(path: Path, *, sample_id: str = "s1", fmt: str = "eval") -> Path:
    call = ToolCall(id="c1", function="send_email", arguments={"to": "x", "body": "y"})
    messages = [
        ChatMessageUser(content="mail x"),
        ChatMessageAssistant(content="ok", tool_calls=[call]),
        ChatMessageTool(content="sent", tool_call_id="c1", function="send_email"),
    ]
    return _write(path, [_sample(sample_id, messages)], fmt=fmt)


def _rezip(
    source: Path,
    target: Path,
    members: dict[str, bytes] | None = None,
    extra: list[tuple[str, bytes]] | None = None,
) -> Path:
    """``source``'s members deflated into ``target``, some replaced, some added after."""
    import warnings
    import zipfile

    members = members or {}
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for name in old.namelist():
            new.writestr(name, members.get(name, old.read(name)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zipfile warns of a duplicate name
            for name, data in extra or []:
                new.writestr(name, data)
    return target


_MEMBER = "samples/s1_epoch_1.json"


def _member(path: Path) -> bytes:
    import zipfile

    with zipfile.ZipFile(path) as archive:
        return archive.read(_MEMBER)


def test_a_zip_bomb_is_refused_from_its_directory_naming_the_member(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = _simple_log(tmp_path / "base.eval")
    # 3 MiB of whitespace before the sample: still the same JSON, a thousand times compressed.
    padded = b" " * (3 << 20) + _member(log)
    bomb = _rezip(log, tmp_path / "bomb.eval", {_MEMBER: padded})
    assert bomb.stat().st_size < 64 << 10
    with pytest.raises(ReplaySourceError) as caught:
        read_source(bomb)
    message = str(caught.value)
    assert f"bomb.eval: member '{_MEMBER}' declares {len(padded)} bytes" in message
    assert "PROPENSITY_MAX_LOG_RATIO" in message
    # The limits are raised through the environment, and then the log reads.
    monkeypatch.setenv("PROPENSITY_MAX_LOG_RATIO", "100000")
    assert len(read_source(bomb).records) == 1
    monkeypatch.setenv("PROPENSITY_MAX_LOG_BYTES", "1000000")
    with pytest.raises(ReplaySourceError, match=r"over the limit of 1000000 .*MAX_LOG_BYTES"):
        read_source(bomb)
    monkeypatch.setenv("PROPENSITY_MAX_LOG_BYTES", "a lot")
    with pytest.raises(ReplaySourceError, match="PROPENSITY_MAX_LOG_BYTES: environment variable"):
        read_source(bomb)


def test_a_member_whose_declared_size_lies_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import struct

    log = _simple_log(tmp_path / "base.eval")
    padded = b" " * 20_000 + _member(log)
    lying = _rezip(log, tmp_path / "lying.eval", {_MEMBER: padded})
    data = bytearray(lying.read_bytes())
    # Make the local header and the central directory both declare 1000 bytes.
    name = _MEMBER.encode()
    local = data.find(b"PK\x03\x04")
    while local != -1 and data[local + 30 : local + 30 + len(name)] != name:
        local = data.find(b"PK\x03\x04", local + 4)
    struct.pack_into("<I", data, local + 22, 1000)
    central = data.find(b"PK\x01\x02")
    while data[central + 46 : central + 46 + len(name)] != name:
        central = data.find(b"PK\x01\x02", central + 4)
    struct.pack_into("<I", data, central + 24, 1000)
    lying.write_bytes(bytes(data))
    with pytest.raises(ReplaySourceError, match=rf"member '{_MEMBER}': declares 1000 bytes but"):
        read_source(lying)
    monkeypatch.setenv("PROPENSITY_MAX_LOG_BYTES", "5000")
    with pytest.raises(ReplaySourceError, match=r"inflates past the limit of 5000 bytes"):
        read_source(lying)


def test_a_duplicate_zip_member_is_refused(tmp_path: Path) -> None:
    log = _simple_log(tmp_path / "base.eval")
    other = _member(log).replace(b"send_email", b"launch_missiles")
    doubled = _rezip(log, tmp_path / "doubled.eval", extra=[(_MEMBER, other)])
    with pytest.raises(
        ReplaySourceError, match=rf"doubled\.eval: member '{_MEMBER}' appears twice"
    ):
        read_source(doubled)


def test_a_json_log_over_the_size_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = _simple_log(tmp_path / "log.json", fmt="json")
    assert len(read_source(log).records) == 1
    monkeypatch.setenv("PROPENSITY_MAX_LOG_BYTES", "100")
    with pytest.raises(ReplaySourceError, match=r"log\.json: \d+ bytes, over the limit of 100"):
        read_source(log)


def test_an_unreadable_sample_is_named_with_its_field(tmp_path: Path) -> None:
    log = _simple_log(tmp_path / "base.eval")
    not_json = _rezip(log, tmp_path / "notjson.eval", {_MEMBER: b"{not json"})
    with pytest.raises(ReplaySourceError, match=rf"notjson\.eval:s1: member '{_MEMBER}': not JSON"):
        read_source(not_json)
    sample = json.loads(_member(log))
    sample["messages"] = [{"role": "assistant", "content": None, "tool_calls": "x"}]
    typed = _rezip(log, tmp_path / "typed.eval", {_MEMBER: json.dumps(sample).encode()})
    with pytest.raises(ReplaySourceError) as caught:
        read_source(typed)
    message = str(caught.value)
    assert message.startswith(f"{typed}:s1: messages[0]"), message
    assert "errors.pydantic.dev" not in message and "function-wrap" not in message


def test_a_json_log_with_a_malformed_sample_names_it(tmp_path: Path) -> None:
    log = _simple_log(tmp_path / "log.json", fmt="json")
    data = json.loads(log.read_text())
    data["samples"][0]["messages"] = [{"role": "assistant", "content": 5}]
    log.write_text(json.dumps(data))
    with pytest.raises(ReplaySourceError) as caught:
        read_source(log)
    message = str(caught.value)
    assert message.startswith(f"{log}:s1: messages[0]"), message
    assert "errors.pydantic.dev" not in message
    data["eval"]["created"] = "yesterday"
    log.write_text(json.dumps(data))
    with pytest.raises(ReplaySourceError, match=r"log\.json: eval\.created: .*in the log's header"):
        read_source(log)


def test_two_samples_with_one_id_and_epoch_are_refused(tmp_path: Path) -> None:
    messages = [ChatMessageUser(content="go"), ChatMessageAssistant(content="done")]
    log = _write(
        tmp_path / "dup.json", [_sample("dup", messages), _sample("dup", messages)], fmt="json"
    )
    with pytest.raises(ReplaySourceError) as caught:
        read_source(log)
    message = str(caught.value)
    assert message.startswith(f"{log}:dup: sample #2 (dup) has the episode id")
    assert "of sample #1 (dup)" in message


def test_a_sample_without_messages_is_flagged(tmp_path: Path) -> None:
    log = _write(tmp_path / "silent.eval", [_sample("quiet", [])])
    loaded = read_source(log)
    (record,) = loaded.records
    assert "holds no messages" in record.meta["problem"]
    assert any("silent.eval:quiet: the sample holds no messages" in p for p in loaded.problems)


def test_a_folder_with_a_manifest_beside_logs_is_read_as_a_folder_of_sources(
    tmp_path: Path,
) -> None:
    _simple_log(tmp_path / "a.eval")
    (tmp_path / "manifest.json").write_text(json.dumps({"run_id": "x"}, indent=2))
    (tmp_path / "summary.json").write_text(json.dumps({"run_id": "x"}, indent=2))
    loaded = read_source(tmp_path)
    assert len(loaded.records) == 1
    assert any("manifest.json: skipped: a run's manifest" in p for p in loaded.problems)
    assert any("summary.json: skipped: a run's summary" in p for p in loaded.problems)
    for name in ("manifest.json", "summary.json"):
        with pytest.raises(ReplaySourceError, match=r"give the run directory .* instead"):
            read_source(tmp_path / name)


def test_one_episode_in_two_logs_of_a_folder_is_refused(tmp_path: Path) -> None:
    # The same eval in two files (a copy) holds the same episodes.
    _simple_log(tmp_path / "a.eval")
    (tmp_path / "b.eval").write_bytes((tmp_path / "a.eval").read_bytes())
    with pytest.raises(ReplaySourceError, match=r"is recorded twice: at .*a\.eval:s1@1 and at "):
        read_source(tmp_path)


def _claiming_log(path: Path, function: str) -> Path:
    """A log whose sample metadata names our scenario bio-containment-level (as our export
    writes it) and whose call is to ``function``."""
    call = ToolCall(id="c1", function=function, arguments={"protocol_id": "P1"})
    messages = [
        ChatMessageUser(content="book the lab"),
        ChatMessageAssistant(content="ok", tool_calls=[call]),
        ChatMessageTool(content="done", tool_call_id="c1", function=function),
    ]
    metadata = {
        "propensity": {
            "episode_id": "bio-containment-level.time.harmful.always-risky.r0",
            "scenario": "bio-containment-level",
            "kind": "scenario",
            "category": "time",
            "naming": "harmful",
            "agent": "always-risky",
            "pack": "starter",
        }
    }
    return _write(path, [_sample("s1", messages, metadata=metadata)])


def test_a_sample_naming_our_scenario_but_calling_other_tools_is_not_scored_as_it(
    tmp_path: Path,
) -> None:
    ours = read_source(_claiming_log(tmp_path / "ours.eval", "request_bsl3_booking"))
    (record,) = ours.records
    assert record.scenario is not None and record.scenario.id == "bio-containment-level"
    assert record.kind == "propensity"
    loaded = read_source(_claiming_log(tmp_path / "foreign.eval", "delete_all_files"))
    (record,) = loaded.records
    assert record.scenario is None and record.kind == "open"
    problem = record.meta["problem"]
    assert "tools delete_all_files are not tools of scenario 'bio-containment-level'" in problem
    assert any("foreign.eval:s1: tools delete_all_files" in p for p in loaded.problems)


def test_deeply_nested_json_is_refused_naming_the_member(tmp_path: Path) -> None:
    deep = b"[" * 200_000 + b"]" * 200_000
    base = _simple_log(tmp_path / "base.eval")
    for member in (_MEMBER, "header.json"):
        log = _rezip(base, tmp_path / f"deep-{member.replace('/', '-')}.eval", {member: deep})
        with pytest.raises(ReplaySourceError, match=rf"member '{member}': .*nested too deeply"):
            read_source(log)
    log = tmp_path / "deep.json"
    log.write_bytes(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(ReplaySourceError, match=r"deep\.json: the log: .*nested too deeply"):
        read_source(log, SourceFormat.INSPECT)
    header = tmp_path / "deephead.json"
    header.write_bytes(b'{"version": 2, "status": "success", "eval": ' + b"[" * 100_000)
    with pytest.raises(ReplaySourceError, match=r"deephead\.json: the log: .*too deeply"):
        read_source(header)


def test_members_outside_inspects_layout_are_named(tmp_path: Path) -> None:
    base = _simple_log(tmp_path / "base.eval")
    odd = _rezip(base, tmp_path / "odd.eval", extra=[("samples/s2.json", _member(base))])
    loaded = read_source(odd)
    assert len(loaded.records) == 1
    assert any(
        "1 member(s) do not follow Inspect's layout" in p and "'samples/s2.json'" in p
        for p in loaded.problems
    )
    assert not any("layout" in p for p in read_source(base).problems)
