"""The scripted server must look exactly like OpenAI to litellm, and fail exactly as asked.

Every test talks real HTTP on 127.0.0.1, because the point of the server is what a real client
sees on the wire (status codes, bodies litellm can or cannot parse, timeouts).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import aiohttp
import litellm
import pytest
from litellm.exceptions import InternalServerError, RateLimitError, Timeout

from sandbox.testing import (
    FaultDecider,
    Faults,
    Reply,
    Script,
    ScriptedOpenAIServer,
)

litellm.suppress_debug_info = True

REPO = Path(__file__).resolve().parents[3]

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "read_file",
            "description": "Read a file.",
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string"}},
                "required": ["path"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "write_file",
            "description": "Write a file.",
            "parameters": {
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "mode": {"type": "string", "enum": ["overwrite", "append"]},
                    "size": {"type": "integer", "minimum": 3},
                },
                "required": ["path", "mode", "size"],
            },
        },
    },
]
USER: list[dict[str, Any]] = [{"role": "user", "content": "Please tidy up the repository."}]


async def ask(server: ScriptedOpenAIServer, messages: list[dict[str, Any]], **kw: Any) -> Any:
    kw.setdefault("tools", TOOLS)
    return await litellm.acompletion(
        model="openai/scripted",
        api_base=server.url,
        api_key="sk-test",
        messages=messages,
        num_retries=0,
        **kw,
    )


async def post_raw(server: ScriptedOpenAIServer, body: dict[str, Any]) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{server.url}/chat/completions", json=body) as response,
    ):
        return response.status, await response.text()


def script(data: dict[str, Any]) -> Script:
    return Script.from_dict(data)


# --- scripted replies through litellm -------------------------------------------------------


async def test_tool_call_has_valid_synthesised_arguments() -> None:
    async with ScriptedOpenAIServer(script({"default": {"call": ["write"]}})) as server:
        assert server.url == f"http://127.0.0.1:{server.port}/v1"
        response = await ask(server, USER)
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.id.startswith("call_") and len(call.id) == len("call_") + 12
    assert call.function.name == "write_file"
    assert json.loads(call.function.arguments) == {
        "path": "example",
        "mode": "overwrite",
        "size": 3,
    }
    assert response.usage.prompt_tokens > 0 and response.usage.total_tokens > 0


async def test_turn_index_follows_assistant_messages() -> None:
    s = script({"turns": [{"call": ["read"]}, "all done"], "default": {"text": "fallback"}})
    async with ScriptedOpenAIServer(s) as server:
        first = await ask(server, USER)
        call = first.choices[0].message.tool_calls[0]
        history: list[dict[str, Any]] = [
            *USER,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {
                            "name": call.function.name,
                            "arguments": call.function.arguments,
                        },
                    }
                ],
            },
            {"role": "tool", "tool_call_id": call.id, "content": "hello"},
        ]
        second = await ask(server, history)
        third = await ask(
            server,
            [*history, {"role": "assistant", "content": "x"}, {"role": "user", "content": "y"}],
        )
    assert call.function.name == "read_file"
    assert second.choices[0].message.content == "all done"
    assert second.choices[0].message.tool_calls is None
    assert second.choices[0].finish_reason == "stop"
    assert third.choices[0].message.content == "fallback"


async def test_count_forced_arguments_and_pattern_priority() -> None:
    s = script(
        {
            "default": {
                "call": ["^nope$", "write", "read"],
                "count": 3,
                "text": "ok",
                "arguments": {"path": "/etc/passwd"},
            }
        }
    )
    async with ScriptedOpenAIServer(s) as server:
        response = await ask(server, USER)
    message = response.choices[0].message
    assert message.content == "ok"
    calls = message.tool_calls
    assert len(calls) == 3 and len({c.id for c in calls}) == 3
    assert {c.function.name for c in calls} == {"write_file"}
    assert all(json.loads(c.function.arguments) == {"path": "/etc/passwd"} for c in calls)


async def test_no_matching_tool_and_raw_arguments() -> None:
    s = script(
        {
            "turns": [{"call": ["delete"]}],
            "default": {"call": ["read"], "raw_arguments": "{not json"},
        }
    )
    async with ScriptedOpenAIServer(s) as server:
        unmatched = await ask(server, USER)
        raw = await ask(server, [*USER, {"role": "assistant", "content": "hm"}])
        no_tools = await ask(server, USER, tools=None)
        assert server.stats.malformed == 1
    assert unmatched.choices[0].message.content == "no matching tool"
    assert unmatched.choices[0].message.tool_calls is None
    assert raw.choices[0].message.tool_calls[0].function.arguments == "{not json"
    assert no_tools.choices[0].message.content == "no matching tool"


async def test_default_script_calls_first_offered_tool() -> None:
    async with ScriptedOpenAIServer() as server:
        response = await ask(server, USER)
    assert response.choices[0].message.tool_calls[0].function.name == "read_file"


# --- the text fallback protocol -------------------------------------------------------------


async def test_text_protocol_tool_calls() -> None:
    described = [t["function"] for t in TOOLS]
    system = (
        "You can use tools. Answer with <tool_call> blocks.\n"
        f"<tools>\n{json.dumps(described, indent=2)}\n</tools>\n"
    )
    messages = [{"role": "system", "content": system}, *USER]
    s = script({"default": {"call": ["write"], "count": 2, "text": "Writing now."}})
    async with ScriptedOpenAIServer(s) as server:
        response = await ask(server, messages, tools=None)
    message = response.choices[0].message
    assert message.tool_calls is None
    assert response.choices[0].finish_reason == "stop"
    content = message.content
    assert content.startswith("Writing now.\n")
    blocks = content.split("<tool_call>")[1:]
    assert len(blocks) == 2
    for block in blocks:
        payload = json.loads(block.split("</tool_call>")[0])
        assert payload == {
            "name": "write_file",
            "arguments": {"path": "example", "mode": "overwrite", "size": 3},
        }


async def test_text_protocol_malformed_arguments() -> None:
    system = f"<tools>\n{json.dumps([TOOLS[0]['function']])}\n</tools>"
    body = {
        "model": "scripted",
        "messages": [{"role": "system", "content": [{"type": "text", "text": system}]}, *USER],
    }
    async with ScriptedOpenAIServer(faults=Faults(malformed_args_rate=1.0)) as server:
        status, text = await post_raw(server, body)
    content = json.loads(text)["choices"][0]["message"]["content"]
    assert status == 200 and content.startswith('<tool_call>{"name": "read_file"')
    with pytest.raises(json.JSONDecodeError):
        json.loads(content.removeprefix("<tool_call>").removesuffix("</tool_call>"))


# --- faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "exception"),
    [(429, RateLimitError), (500, InternalServerError)],
)
async def test_failures_raise_in_litellm(status: int, exception: type[Exception]) -> None:
    faults = Faults(fail_rate=1.0, fail_statuses=(status,))
    async with ScriptedOpenAIServer(faults=faults) as server:
        with pytest.raises(exception):
            await ask(server, USER)
        raw_status, text = await post_raw(server, {"messages": USER})
        stats = server.stats
    assert raw_status == status
    error = json.loads(text)["error"]
    expected = "rate_limit_exceeded" if status == 429 else "server_error"
    assert error["type"] == expected
    assert (stats.failed_429, stats.failed_500) == ((2, 0) if status == 429 else (0, 2))
    assert stats.ok == 0 and stats.requests == 2


async def test_fail_rate_mixes_both_statuses() -> None:
    async with ScriptedOpenAIServer(faults=Faults(fail_rate=1.0, seed=7)) as server:
        statuses = {(await post_raw(server, {"messages": USER}))[0] for _ in range(30)}
    assert statuses == {429, 500}


async def test_garbled_body_is_not_json() -> None:
    async with ScriptedOpenAIServer(faults=Faults(garbled_rate=1.0)) as server:
        status, text = await post_raw(server, {"messages": USER, "tools": TOOLS})
        with pytest.raises(InternalServerError):
            await ask(server, USER)
        assert server.stats.garbled == 2
    assert status == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


async def test_malformed_arguments_fault() -> None:
    async with ScriptedOpenAIServer(faults=Faults(malformed_args_rate=1.0)) as server:
        response = await ask(server, USER)
        text = await ask(server, USER, tools=None)
        assert server.stats.malformed == 1
    arguments = response.choices[0].message.tool_calls[0].function.arguments
    with pytest.raises(json.JSONDecodeError):
        json.loads(arguments)
    # Text replies have no arguments to break; they pass through untouched.
    assert text.choices[0].message.content == "no matching tool"


async def test_slow_reply_times_out_client_and_does_not_block_shutdown() -> None:
    server = ScriptedOpenAIServer(faults=Faults(slow_rate=1.0, slow_delay_s=5))
    await server.start()
    try:
        started = time.monotonic()
        with pytest.raises(Timeout):
            await ask(server, USER, timeout=0.5)
        assert time.monotonic() - started < 3
        # A raw request still parked in the 5 s hang must not hold up stop().
        pending = asyncio.create_task(post_raw(server, {"messages": USER}))
        await asyncio.sleep(0.2)
        assert server.stats.slow == 2
    finally:
        stopping = time.monotonic()
        await server.stop()
        assert time.monotonic() - stopping < 3
    await asyncio.gather(pending, return_exceptions=True)


async def test_delay_applies_to_every_reply() -> None:
    async with ScriptedOpenAIServer(faults=Faults(delay_s=0.3)) as server:
        started = time.monotonic()
        await asyncio.gather(*(post_raw(server, {"messages": USER}) for _ in range(20)))
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 2


def test_fault_decisions_are_seeded() -> None:
    faults = Faults(fail_rate=0.3, garbled_rate=0.2, slow_rate=0.1, malformed_args_rate=0.4, seed=3)
    a, b = FaultDecider(faults), FaultDecider(faults)
    first = [a.next() for _ in range(200)]
    assert first == [b.next() for _ in range(200)]
    other = FaultDecider(Faults(fail_rate=0.3, garbled_rate=0.2, seed=4))
    assert [d.outcome for d in first] != [other.next().outcome for _ in range(200)]
    outcomes = {d.outcome for d in first}
    assert outcomes == {"ok", "429", "500", "garbled"}
    assert any(d.slow for d in first) and any(d.malformed for d in first)


async def test_seeded_servers_fail_identically() -> None:
    faults = Faults(fail_rate=0.4, garbled_rate=0.3, malformed_args_rate=0.5, seed=11)

    async def run() -> list[tuple[int, bool]]:
        seen = []
        async with ScriptedOpenAIServer(faults=faults) as server:
            for _ in range(25):
                status, text = await post_raw(server, {"messages": USER, "tools": TOOLS})
                try:
                    json.loads(text)
                    parses = True
                except json.JSONDecodeError:
                    parses = False
                seen.append((status, parses))
        return seen

    first, second = await run(), await run()
    assert first == second
    assert {status for status, _ in first} == {200, 429, 500}
    assert (200, False) in first and (200, True) in first


# --- protocol edges -------------------------------------------------------------------------


async def test_streaming_is_refused() -> None:
    async with ScriptedOpenAIServer() as server:
        status, text = await post_raw(server, {"messages": USER, "stream": True})
        bad_status, _ = await post_raw(server, {"no": "messages"})
        assert server.stats.rejected == 2
    assert status == 400 and "stream" in json.loads(text)["error"]["message"]
    assert bad_status == 400


async def test_models_health_and_request_log() -> None:
    async with (
        ScriptedOpenAIServer(model_name="m1", record_requests=True, record_limit=2) as server,
        aiohttp.ClientSession() as session,
    ):
        async with session.get(f"{server.url}/models") as response:
            models = await response.json()
        async with session.get(f"http://127.0.0.1:{server.port}/health") as response:
            assert response.status == 200
        for i in range(3):
            await post_raw(server, {"messages": [{"role": "user", "content": str(i)}]})
        log = server.stats.requests_log
    assert [m["id"] for m in models["data"]] == ["m1"]
    assert log is not None and [r["messages"][0]["content"] for r in log] == ["1", "2"]


async def test_refuses_non_loopback_hosts() -> None:
    for host in ("0.0.0.0", "10.1.2.3", "::", "example.com", ""):
        with pytest.raises(ValueError):
            ScriptedOpenAIServer(host=host)
    async with ScriptedOpenAIServer(host="localhost") as server:
        assert server.url.startswith("http://127.0.0.1:")


def test_script_loading(tmp_path: Path) -> None:
    path = tmp_path / "script.json"
    path.write_text(json.dumps({"turns": ["hi", {"call": "read"}], "default": {"text": "bye"}}))
    loaded = Script.load(path)
    assert loaded.turns == (Reply(text="hi"), Reply(call=("read",)))
    assert loaded.reply_for(5) == Reply(text="bye")
    bad_scripts: list[dict[str, Any]] = [
        {"turns": [{}]},
        {"turns": [{"call": ["("]}]},
        {"default": {"txt": "x"}},
    ]
    for bad in bad_scripts:
        with pytest.raises(ValueError):
            Script.from_dict(bad)


# --- the command line -----------------------------------------------------------------------


async def test_cli_serves_and_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
    path = tmp_path / "script.json"
    path.write_text(json.dumps({"default": {"text": "from the cli"}}))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox.testing.openai_server",
        "--port",
        "0",
        "--script",
        str(path),
        "--seed",
        "1",
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=10)).decode()
        word, port = line.split()
        assert word == "LISTENING" and int(port) > 0
        server_url = f"http://127.0.0.1:{port}/v1"
        response = await litellm.acompletion(
            model="openai/scripted",
            api_base=server_url,
            api_key="sk-test",
            messages=USER,
            num_retries=0,
        )
        assert response.choices[0].message.content == "from the cli"
        process.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=10)
        assert process.returncode == 0, stderr.decode()
        assert stdout == b""
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
