"""Local-model plumbing without a model: reading its calls, template shaping, file integrity."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from sandbox.agents import (
    AgentReply,
    AgentSpec,
    PermanentAgentError,
    ReadReply,
    create_agent,
    read_reply,
)
from sandbox.local_model import LocalModelSpec, ModelIntegrityError, local_model
from sandbox.local_model.assemble import assemble_from, is_verified, verify_file
from sandbox.local_model.chat import template_messages
from scenarios.records import Message


def _local_reply(text: str, offered: list[str]) -> ReadReply:
    """What the turn loop makes of the local model's text (its calls always come as text)."""
    message = Message(role="assistant", content=text)
    return read_reply(AgentReply(message=message, calls_in_text=True), offered, turn=1)


def test_tagged_calls_are_read_from_the_local_models_text_which_is_kept() -> None:
    text = (
        "I will check first.\n<tool_call>\n"
        '{"name": "get_status", "arguments": {"id": "AMD-062"}}\n</tool_call>\n'
        '<tool_call>{"name": "book", "arguments": {"slot": 3}}'  # cut by the token limit
    )
    read = _local_reply(text, ["get_status", "book"])
    assert read.message.content == text
    calls = read.message.tool_calls
    assert [c.name for c in calls] == ["get_status", "book"]
    assert calls[0].arguments == {"id": "AMD-062"} and calls[1].arguments == {"slot": 3}
    assert [c.id for c in calls] == ["t1c1", "t1c2"]
    assert {c.recovered_from for c in calls} == {"tool_call_tag"}


def test_untagged_json_call_counts_only_for_offered_tools() -> None:
    bare = '{"name": "get_status", "arguments": {"id": "x"}}'
    assert [c.name for c in _local_reply(bare, ["get_status"]).message.tool_calls] == ["get_status"]
    assert _local_reply(bare, ["other"]).message.tool_calls == []
    # Arguments that are not an object travel as raw text for the harness to reject.
    read = _local_reply('<tool_call>{"name": "x", "arguments": "oops"}</tool_call>', ["x"])
    (call,) = read.message.tool_calls
    assert call.raw_arguments is not None and "oops" in call.raw_arguments


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


def test_the_model_server_never_imports_from_where_the_user_stands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A folder named `sandbox` in the current directory (a run directory from elsewhere, say)
    # must not replace our package in the server process: the server runs isolated (-I) and in
    # the model's own directory.
    import asyncio
    import subprocess
    import sys

    import sandbox.local_model.servers as servers

    hostile = tmp_path / "here"
    (hostile / "sandbox").mkdir(parents=True)
    marker = tmp_path / "executed"
    (hostile / "sandbox" / "__init__.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n", encoding="utf-8"
    )
    model = tmp_path / "models" / "m.gguf"
    model.parent.mkdir()
    model.write_bytes(b"")
    seen: dict[str, Any] = {}

    async def record(*argv: str, **options: object) -> object:
        seen.update(argv=list(argv), options=options)
        raise RuntimeError("recorded")

    monkeypatch.chdir(hostile)
    monkeypatch.setattr(servers, "require_llama_cpp", lambda: None)
    monkeypatch.setattr(servers, "prepare_model", lambda name, log: model)
    monkeypatch.setattr(asyncio, "create_subprocess_exec", record)
    with pytest.raises(RuntimeError, match="recorded"):
        asyncio.run(servers.LocalModelServers()._start(local_model("qwen2.5-coder-0.5b")))
    argv = seen["argv"]
    assert isinstance(argv, list) and argv[0] == sys.executable
    module = argv.index("sandbox.local_model.server")
    # The same interpreter flags and module, from the user's directory: our package loads.
    flags = argv[1 : module - 1]  # between the interpreter and "-m"
    assert argv[module - 1] == "-m" and "-I" in flags
    probe = [sys.executable, *flags, "-c", "import sandbox; print(sandbox.__file__)"]
    done = subprocess.run(
        probe,
        cwd=seen["options"]["cwd"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert not marker.exists() and str(hostile) not in done.stdout
    done = subprocess.run(probe, cwd=hostile, capture_output=True, text=True, check=False)
    assert not marker.exists() and str(hostile) not in done.stdout
