"""Any model litellm can reach (hosted APIs, OpenAI-compatible servers) as an agent.

Native function calling is used unless the run or the episode asks for the text protocol;
every tool call in a response is returned (not just the first), with the provider's id and its
argument text exactly as written (sent back verbatim on later turns). Calls the model wrote
in its text instead of natively are read by the turn loop (``sandbox.agents.call_reader``).
A provider's unambiguous refusal of ``tools`` raises ``ToolsUnsupportedError`` so the turn loop
can switch that one episode to the text protocol and record it; nothing here changes state
shared between episodes.
"""

from __future__ import annotations

import json
import os
from typing import Any, Literal

from sandbox.agents.protocol import (
    AgentReply,
    AgentRequest,
    PermanentAgentError,
    ToolsUnsupportedError,
    TransientAgentError,
)
from sandbox.agents.provider_errors import classify_provider_error
from sandbox.agents.text_protocol import to_text_messages
from sandbox.llm import ensure_pool, litellm
from scenarios.records import Message, ToolCall, Usage

ToolProtocol = Literal["auto", "native", "text"]

__all__ = ["LiteLLMAgent", "ToolProtocol", "classify_provider_error", "to_provider_messages"]


def _arguments_text(call: ToolCall) -> str:
    """The call's arguments as the model wrote them, or as compact JSON when we made it."""
    if call.arguments_text is not None:
        return call.arguments_text
    if call.raw_arguments is not None:
        return call.raw_arguments
    return json.dumps(call.arguments, ensure_ascii=False)


def recovered_results_block(results: list[Message]) -> str:
    """Results of calls the model wrote in text, answered in text (a provider would reject
    ``tool`` messages for calls it never returned natively)."""
    return "\n".join(
        f'<tool_response name="{m.name}" id="{m.tool_call_id}">\n{m.content or ""}\n'
        "</tool_response>"
        for m in results
    )


def to_provider_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """The conversation as OpenAI chat messages, exactly as the model produced its side.

    Assistant text goes back verbatim; native calls go back with the provider's own id and
    their argument text as written. Calls recovered from text are not re-sent as structured
    calls (the text already holds them); their results go back as one user message of
    ``<tool_response>`` blocks.
    """
    out: list[dict[str, Any]] = []
    calls: dict[str, ToolCall] = {}
    pending_text_results: list[Message] = []

    def flush() -> None:
        if pending_text_results:
            out.append({"role": "user", "content": recovered_results_block(pending_text_results)})
            pending_text_results.clear()

    for message in messages:
        if message.role == "tool":
            call = calls.get(message.tool_call_id or "")
            if call is not None and call.recovered_from is not None:
                pending_text_results.append(message)
                continue
            flush()
            provider_id = (call.provider_id or call.id) if call else message.tool_call_id
            out.append(
                {"role": "tool", "tool_call_id": provider_id, "content": message.content or ""}
            )
            continue
        flush()
        item: dict[str, Any] = {"role": message.role, "content": message.content}
        native = [c for c in message.tool_calls if c.recovered_from is None]
        for call in message.tool_calls:
            calls[call.id] = call
        if native:
            item["tool_calls"] = [
                {
                    "id": call.provider_id or call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": _arguments_text(call)},
                }
                for call in native
            ]
        out.append(item)
    flush()
    return out


def _native_call(call_id: str, name: str, text: str | None) -> ToolCall:
    base: dict[str, Any] = {"id": call_id, "provider_id": call_id, "name": name}
    if text is None:
        return ToolCall(**base)
    if not text.strip():
        return ToolCall(**base, arguments_text=text)
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return ToolCall(**base, raw_arguments=text, arguments_text=text)
    if not isinstance(value, dict):
        return ToolCall(**base, raw_arguments=text, arguments_text=text)
    return ToolCall(**base, arguments=value, arguments_text=text)


class LiteLLMAgent:
    def __init__(
        self,
        model: str,
        *,
        name: str | None = None,
        api_base: str | None = None,
        api_key_env: str | None = None,
        temperature: float | None = 0.0,
        max_tokens: int = 1024,
        timeout_s: float = 120.0,
        tool_protocol: ToolProtocol = "auto",
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.name = name or model
        # Fixed for the agent's life; a per-episode switch travels in AgentRequest.protocol.
        self.tool_protocol: ToolProtocol = tool_protocol
        self._kwargs: dict[str, Any] = {
            "max_tokens": max_tokens,
            "timeout": timeout_s,
            "num_retries": 0,  # the runtime retries with backoff and records each attempt
            **(extra or {}),
        }
        if temperature is not None:
            self._kwargs["temperature"] = temperature
        if api_base:
            self._kwargs["api_base"] = api_base
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise PermanentAgentError(f"environment variable {api_key_env} is not set")
            self._kwargs["api_key"] = key
        elif api_base:
            # OpenAI-compatible local servers usually ignore the key, but the client wants one.
            self._kwargs["api_key"] = os.environ.get("OPENAI_API_KEY") or "not-needed"

    async def start(self) -> None:
        """Import litellm and lift its connection cap below the run's concurrency (see
        ``sandbox.llm``) before the first episode, where the episodes run: a Ray driver, which
        builds its agents only to check them, never pays for the import. (On the event
        loop's thread, before any episode runs: nothing waits on the loop yet.)"""
        ensure_pool()

    async def act(self, request: AgentRequest) -> AgentReply:
        if self.tool_protocol == "text" or request.protocol == "text":
            return await self._text(request)
        try:
            return await self._native(request)
        except ToolsUnsupportedError:
            if self.tool_protocol == "auto":
                raise
            # --tool-protocol native was asked for explicitly: an ordinary permanent error.
            raise PermanentAgentError(
                "the provider does not accept tools and --tool-protocol native was given"
            ) from None

    async def _complete(self, **kwargs: Any) -> Any:
        ensure_pool()  # an agent used without start() (a replay branch, a test)
        lib = litellm()
        try:
            return await lib.acompletion(model=self.model, **self._kwargs, **kwargs)
        except Exception as exc:
            raise classify_provider_error(exc) from exc

    async def _native(self, request: AgentRequest) -> AgentReply:
        tools = {"tools": request.tools} if request.tools else {}
        response = await self._complete(messages=to_provider_messages(request.messages), **tools)
        choice = _first_choice(response)
        calls = [
            _native_call(call.id or "", call.function.name or "", call.function.arguments)
            for call in (choice.tool_calls or [])
        ]
        message = Message(role="assistant", content=choice.content, tool_calls=calls)
        return AgentReply(message=message, usage=_usage(response), model=_model(response))

    async def _text(self, request: AgentRequest) -> AgentReply:
        response = await self._complete(messages=to_text_messages(request.messages, request.tools))
        choice = _first_choice(response)
        # The reply's text is kept exactly; the turn loop reads the calls written in it.
        message = Message(role="assistant", content=choice.content)
        return AgentReply(
            message=message,
            usage=_usage(response),
            model=_model(response),
            protocol="text",
            calls_in_text=True,
        )

    async def aclose(self) -> None:
        return None


def _first_choice(response: Any) -> Any:
    try:
        return response.choices[0].message
    except (AttributeError, IndexError) as exc:
        raise TransientAgentError(f"provider returned no choices: {exc}") from exc


def _model(response: Any) -> str | None:
    value = getattr(response, "model", None)
    return value if isinstance(value, str) else None


def _usage(response: Any) -> Usage | None:
    usage = getattr(response, "usage", None)
    if usage is None:
        return None
    hidden = getattr(response, "_hidden_params", None) or {}
    cost = hidden.get("response_cost") if isinstance(hidden, dict) else None
    return Usage(
        prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
        completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
        total_tokens=getattr(usage, "total_tokens", 0) or 0,
        cost_usd=float(cost) if isinstance(cost, int | float) else None,
    )
