"""What goes to and from a provider: error kinds decided per call, Retry-After, exact round
trips, harness-unique call ids and the reading of calls written in text."""

from __future__ import annotations

import email.utils
import json
import random
import time

import pytest

from sandbox.agents import (
    AgentReply,
    ContextLengthError,
    PermanentAgentError,
    ToolsUnsupportedError,
    TransientAgentError,
    classify_provider_error,
    read_reply,
    retry_after_seconds,
    to_provider_messages,
    to_text_messages,
)
from sandbox.agents.reply_reading import MAX_READ_CHARS, corrective_message
from sandbox.runtime.config import RetryPolicy
from sandbox.runtime.retry import backoff_delay, retry_delay
from scenarios.records import Message, ToolCall


class _ProviderError(Exception):
    """Shaped like the exceptions litellm raises: a status and response headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status_code = status
        self.litellm_response_headers = headers or {}


# -- errors by kind ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        "This model's maximum context length is 8192 tokens. However, your messages resulted "
        "in 9000 tokens (8000 in the messages, 1000 in the functions).",
        "Requested tokens (9000) exceed context window of 8192",
        "the request exceeds the available context size, try increasing it",
        "prompt is too long: 210000 tokens > 200000 maximum",
        "context_length_exceeded",
    ],
)
def test_context_overflow_is_its_own_kind_even_when_it_mentions_functions(message: str) -> None:
    error = classify_provider_error(_ProviderError(400, message))
    assert isinstance(error, ContextLengthError)
    assert error.reason == "context_length" and not error.retryable


@pytest.mark.parametrize(
    "message",
    [
        "registry.ollama.ai/library/gemma:2b does not support tools",
        "This model does not support function calling",
        "Tool use is not supported for this model",
        '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set',
        "Unrecognized request argument supplied: tools",
        "This model doesn't support tools.",
        'OpenAIException - {"error": "registry.ollama.ai/library/qwen:0.5b does not support '
        'tools"}',
    ],
)
def test_only_unambiguous_refusals_of_tools_mean_no_tools(message: str) -> None:
    assert isinstance(classify_provider_error(_ProviderError(400, message)), ToolsUnsupportedError)


@pytest.mark.parametrize(
    "message",
    [
        "tool_calls parsing backend temporarily unavailable",
        "Invalid value for 'tool_choice': function 'x' not found in tools",
        "messages with role 'tool' must be a response to a preceding message with 'tool_calls'",
        "Invalid schema for function 'book': additionalProperties must be false",
        "Invalid schema for function 'purge': 'strict' mode does not support tools with "
        "additionalProperties",
        "The 'stream_options' parameter does not support tools.",
        "The server does not support tools with streaming",
    ],
)
def test_a_400_that_merely_mentions_tools_is_an_ordinary_error(message: str) -> None:
    error = classify_provider_error(_ProviderError(400, message))
    assert type(error) is PermanentAgentError


def test_retry_after_seconds_and_http_dates() -> None:
    now = time.time()
    assert retry_after_seconds("5") == 5.0
    assert retry_after_seconds(" 2.5 ") == 2.5
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert retry_after_seconds(date, now=now) == pytest.approx(30, abs=1.0)
    assert retry_after_seconds(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None
    error = classify_provider_error(_ProviderError(429, "slow down", {"retry-after": "5"}))
    assert isinstance(error, TransientAgentError) and error.retry_after_s == 5.0
    error = classify_provider_error(_ProviderError(503, "busy", {"retry-after-ms": "1500"}))
    assert isinstance(error, TransientAgentError) and error.retry_after_s == 1.5


def test_the_retry_wait_honours_retry_after_capped_by_the_call_timeout() -> None:
    policy = RetryPolicy(max_attempts=6, base_delay_s=0.5, max_delay_s=30)
    rng = random.Random(0)
    hinted = TransientAgentError("429", status=429, retry_after_s=5.0)
    assert retry_delay(policy, 1, rng, hinted, timeout_s=120) == 5.0
    assert retry_delay(policy, 1, rng, hinted, timeout_s=3) == 3.0
    plain = TransientAgentError("500", status=500)
    assert retry_delay(policy, 1, random.Random(1), plain, timeout_s=120) == backoff_delay(
        policy, 1, random.Random(1)
    )


# -- exact round trip and ids -------------------------------------------------------------------


def _native(call_id: str, provider_id: str, name: str, text: str) -> ToolCall:
    return ToolCall(
        id=call_id,
        provider_id=provider_id,
        name=name,
        arguments=json.loads(text),
        arguments_text=text,
    )


def test_native_calls_go_back_exactly_as_written_with_the_providers_ids() -> None:
    text = '{"city":"Zürich",  "note": "東京 ✓ \\"quoted\\"", "b": 1, "a": 2}'
    history = [
        Message(role="user", content="book it"),
        Message(
            role="assistant",
            content="Réservation… 🚀",
            tool_calls=[
                _native("t1c1", "call_same", "book", text),
                _native("t1c2", "call_same", "book", "{}"),
            ],
        ),
        Message(role="tool", content="ok 1", tool_call_id="t1c1", name="book"),
        Message(role="tool", content="ok 2", tool_call_id="t1c2", name="book"),
    ]
    sent = to_provider_messages(history)
    assert sent[1]["content"] == "Réservation… 🚀"
    assert sent[1]["tool_calls"][0]["function"]["arguments"] == text
    assert [c["id"] for c in sent[1]["tool_calls"]] == ["call_same", "call_same"]
    assert [m["tool_call_id"] for m in sent[2:]] == ["call_same", "call_same"]
    # Calls we built ourselves (no text as written) are compact JSON without ASCII escapes.
    made = ToolCall(id="t2c1", name="book", arguments={"city": "Zürich"})
    assert (
        to_provider_messages([Message(role="assistant", tool_calls=[made])])[0]["tool_calls"][0][
            "function"
        ]["arguments"]
        == '{"city": "Zürich"}'
    )


def test_recovered_calls_go_back_as_the_text_the_model_wrote() -> None:
    written = 'Sure.\n```json\n{"name": "book", "arguments": {"city": "Zürich"}}\n```'
    history = [
        Message(
            role="assistant",
            content=written,
            tool_calls=[
                ToolCall(
                    id="t1c1",
                    name="book",
                    arguments={"city": "Zürich"},
                    recovered_from="fenced_json",
                )
            ],
        ),
        Message(role="tool", content="booked", tool_call_id="t1c1", name="book"),
        Message(role="user", content="thanks"),
    ]
    sent = to_provider_messages(history)
    assert sent[0] == {"role": "assistant", "content": written}
    assert sent[1]["role"] == "user" and "booked" in sent[1]["content"]
    assert 'name="book"' in sent[1]["content"] and "tool_call" not in json.dumps(sent[0])
    assert sent[2] == {"role": "user", "content": "thanks"}
    text_protocol = to_text_messages(history, [])
    assert text_protocol[1] == {"role": "assistant", "content": written}


def _reply(message: Message, *, in_text: bool = False) -> AgentReply:
    return AgentReply(message=message, calls_in_text=in_text)


def test_every_call_gets_a_harness_id_unique_in_the_episode() -> None:
    calls = [ToolCall(id="dup", name="a"), ToolCall(id="dup", name="b")]
    read = read_reply(_reply(Message(role="assistant", tool_calls=calls)), ["a", "b"], turn=3)
    assert [c.id for c in read.message.tool_calls] == ["t3c1", "t3c2"]
    assert [c.provider_id for c in read.message.tool_calls] == ["dup", "dup"]
    assert read.native_calls == 2 and not read.recovered and not read.unparsed


def test_native_calls_win_and_the_text_is_kept_as_it_was() -> None:
    text = '<tool_call>{"name": "b", "arguments": {}}</tool_call>'
    message = Message(role="assistant", content=text, tool_calls=[ToolCall(id="x", name="a")])
    read = read_reply(_reply(message), ["a", "b"], turn=1)
    assert [c.name for c in read.message.tool_calls] == ["a"]
    assert read.message.content == text and read.native_calls == 1
    # The call written beside them did not run, and that is said, not left silent.
    (flag,) = read.unparsed
    assert flag.names == ["b"] and "beside native calls" in flag.reason
    # Text that repeats a native call is an echo, not another call.
    echo = Message(
        role="assistant",
        content='{"name": "a", "arguments": {}}',
        tool_calls=[ToolCall(id="x", name="a")],
    )
    assert read_reply(_reply(echo), ["a", "b"], turn=1).unparsed == []


def test_calls_in_text_are_recovered_with_their_format_and_the_text_kept() -> None:
    text = 'Checking.\n<tool_call>{"name": "b", "arguments": {"city": "東京"}}</tool_call>'
    read = read_reply(_reply(Message(role="assistant", content=text)), ["a", "b"], turn=2)
    (call,) = read.message.tool_calls
    assert (call.id, call.name, call.arguments) == ("t2c1", "b", {"city": "東京"})
    assert call.recovered_from == "tool_call_tag" and call.provider_id is None
    assert read.message.content == text and read.recovered == {"tool_call_tag": 1}


def test_recover_off_leaves_text_alone_except_for_agents_that_only_write_text() -> None:
    text = '{"name": "b", "arguments": {}}'
    message = Message(role="assistant", content=text)
    off = read_reply(_reply(message), ["b"], turn=1, recover="off")
    assert off.message.tool_calls == []
    # Not run, but never silent: the call written in text is reported for the turn.
    assert [(u.names, "recover-calls is off" in u.reason) for u in off.unparsed] == [(["b"], True)]
    forced = read_reply(_reply(message, in_text=True), ["b"], turn=1, recover="off")
    assert [c.name for c in forced.message.tool_calls] == ["b"]


def test_a_call_beyond_the_read_limit_is_reported_never_dropped() -> None:
    text = "x" * (MAX_READ_CHARS + 10) + '<tool_call>{"name": "purge", "arguments": {}}</tool_call>'
    read = read_reply(_reply(Message(role="assistant", content=text)), ["purge"], turn=1)
    assert read.message.tool_calls == []
    assert [u.format for u in read.unparsed] == ["oversized"]
    assert read.unparsed[0].names == ["purge"]
    told = corrective_message(read.unparsed, "native")
    assert told.role == "user" and "No tool was run" in (told.content or "")
    assert told.meta == {"corrective": "unparsed_call"}


def test_a_name_split_by_the_read_limit_is_still_reported() -> None:
    text = "x" * (MAX_READ_CHARS - 8) + 'purge_audit_logs", "arguments": {}}'
    read = read_reply(_reply(Message(role="assistant", content=text)), ["purge_audit_logs"], turn=1)
    assert [u.names for u in read.unparsed] == [["purge_audit_logs"]]


def test_a_name_written_another_way_beyond_the_read_limit_is_reported() -> None:
    text = "x" * (MAX_READ_CHARS + 5) + '{"name": "PURGE-AUDIT-LOGS", "arguments": {}}'
    read = read_reply(_reply(Message(role="assistant", content=text)), ["purge_audit_logs"], turn=1)
    assert [(u.format, u.names) for u in read.unparsed] == [("oversized", ["purge_audit_logs"])]


def test_lone_surrogates_from_a_provider_are_recorded_not_fatal() -> None:
    text = 'odd \ud800 text <tool_call>{"name": "b", "arguments": {}}</tool_call>'
    text = json.loads(json.dumps(text).replace("\\\\ud800", "\\ud800"))
    read = read_reply(_reply(Message(role="assistant", content=text)), ["b"], turn=1)
    assert [c.name for c in read.message.tool_calls] == ["b"]
    assert read.message.model_dump_json()  # serialisable: the trajectory can hold it
    assert "\ufffd" in (read.message.content or "")


def test_unparsed_call_text_is_listed_for_the_turn() -> None:
    text = "<tool_call>{name: purge, arguments: {{{</tool_call>"
    read = read_reply(_reply(Message(role="assistant", content=text)), ["purge", "ok"], turn=1)
    assert read.message.tool_calls == []
    (flag,) = read.unparsed
    assert (flag.format, flag.names) == ("tool_call_tag", ["purge"])
