"""Local-model plumbing without a model: tool-call parsing, template shaping, file integrity."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from sandbox.agents import AgentSpec, PermanentAgentError, create_agent
from sandbox.local_model import LocalModelSpec, ModelIntegrityError, local_model
from sandbox.local_model.assemble import assemble_from, is_verified, verify_file
from sandbox.local_model.chat import parse_tool_calls, template_messages


def test_tagged_calls_become_openai_tool_calls_and_prose_is_kept() -> None:
    text = (
        "I will check first.\n<tool_call>\n"
        '{"name": "get_status", "arguments": {"id": "AMD-062"}}\n</tool_call>\n'
        '<tool_call>{"name": "book", "arguments": {"slot": 3}}'  # cut by the token limit
    )
    prose, calls = parse_tool_calls(text, {"get_status", "book"})
    assert prose == "I will check first."
    assert [c["function"]["name"] for c in calls] == ["get_status", "book"]
    assert json.loads(calls[0]["function"]["arguments"]) == {"id": "AMD-062"}
    assert calls[0]["id"] != calls[1]["id"] and calls[0]["id"].startswith("call_")


def test_untagged_json_call_counts_only_for_offered_tools_and_bad_blocks_stay_text() -> None:
    bare = '{"name": "get_status", "arguments": {"id": "x"}}'
    assert parse_tool_calls(bare, {"get_status"})[1][0]["function"]["name"] == "get_status"
    assert parse_tool_calls(bare, {"other"}) == (bare, [])
    broken = "Trying: <tool_call>{not json}</tool_call>"
    prose, calls = parse_tool_calls(broken, {"get_status"})
    assert calls == [] and prose == broken
    # Arguments that are not an object travel as raw text for the harness to reject.
    _, raw = parse_tool_calls('<tool_call>{"name": "x", "arguments": "oops"}</tool_call>', {"x"})
    assert raw[0]["function"]["arguments"] == "oops"


def test_template_messages_give_the_template_objects_and_strings() -> None:
    shaped = template_messages(
        [
            {"role": "user", "content": None},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "1", "function": {"name": "f", "arguments": '{"a": 1}'}},
                ],
            },
            {"role": "tool", "content": [{"type": "text", "text": "done"}], "tool_call_id": "1"},
        ]
    )
    assert shaped[0]["content"] == ""
    assert shaped[1]["tool_calls"][0]["function"]["arguments"] == {"a": 1}
    assert shaped[2]["content"] == "done"


def _spec_for(data: bytes) -> LocalModelSpec:
    return LocalModelSpec(
        name="tiny",
        description="test",
        part_prefix="tiny-part",
        parts=2,
        version="1",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        extra="local",
    )


def test_assembly_is_verified_and_a_wrong_file_is_refused(tmp_path: Path) -> None:
    parts = [tmp_path / "p1.bin", tmp_path / "p2.bin"]
    parts[0].write_bytes(b"GGUF" + b"a" * 1000)
    parts[1].write_bytes(b"b" * 777)
    spec = _spec_for(parts[0].read_bytes() + parts[1].read_bytes())
    target = assemble_from(parts, spec, tmp_path / "models" / "tiny.gguf", lambda _: None)
    assert target.stat().st_size == spec.size and is_verified(target, spec)
    # A part in the wrong order gives another sha256: refused, nothing left behind.
    with pytest.raises(ModelIntegrityError, match="Refusing to use it"):
        assemble_from(list(reversed(parts)), spec, tmp_path / "other.gguf", lambda _: None)
    assert not (tmp_path / "other.gguf").exists()
    assert not list(tmp_path.glob("*.partial"))
    # A cached file changed afterwards loses its stamp and fails verification.
    with target.open("r+b") as handle:
        handle.seek(10)
        handle.write(b"X")
    assert not is_verified(target, spec)
    with pytest.raises(ModelIntegrityError, match=spec.sha256):
        verify_file(target, spec)


def test_unknown_local_models_are_refused_clearly() -> None:
    assert local_model("local/qwen2.5-coder-0.5b").parts == 6
    with pytest.raises(ValueError, match=r"known: local/qwen2\.5-coder-0\.5b"):
        local_model("local/gpt-5")
    with pytest.raises(PermanentAgentError, match="unknown local model"):
        create_agent(AgentSpec(spec="local/nope"))


def test_untagged_call_lines_are_calls_and_the_rest_stays_prose() -> None:
    text = '{"name": "get_status", "arguments": {"id": "x"}}\n{"response": "SUBMITTED"}'
    prose, calls = parse_tool_calls(text, {"get_status"})
    assert [c["function"]["name"] for c in calls] == ["get_status"]
    assert prose == '{"response": "SUBMITTED"}'
