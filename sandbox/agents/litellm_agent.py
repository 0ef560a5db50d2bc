"""Any model litellm can reach (hosted APIs, OpenAI-compatible servers) as an agent.

Native function calling is used when the provider supports it; every tool call in a response is
returned (not just the first); arguments that do not parse are kept raw so the tool layer can
answer with a corrective error. Models without tool calling fall back to a text protocol,
detected automatically on the provider's first refusal of `tools`.
"""

from __future__ import annotations

import json
import os
from typing import Any, Literal

from sandbox.agents.protocol import (
    AgentReply,
    AgentRequest,
    PermanentAgentError,
    TransientAgentError,
)
from sandbox.agents.text_protocol import parse_text_calls, to_text_messages
from sandbox.llm import litellm
from scenarios.records import Message, ToolCall, Usage

ToolProtocol = Literal["auto", "native", "text"]
_RETRYABLE_STATUS = frozenset({408, 409, 425, 429})
_TOOLS_UNSUPPORTED_HINTS = ("tool", "function")


def to_provider_messages(messages: list[Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for message in messages:
        item: dict[str, Any] = {"role": message.role, "content": message.content}
        if message.tool_calls:
            item["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {
                        "name": call.name,
                        "arguments": call.raw_arguments
                        if call.raw_arguments is not None
                        else json.dumps(call.arguments),
                    },
                }
                for call in message.tool_calls
            ]
        if message.role == "tool":
            item["tool_call_id"] = message.tool_call_id
            item["content"] = message.content or ""
        out.append(item)
    return out


def _parse_arguments(call_id: str, name: str, text: str | None) -> ToolCall:
    if not text:
        return ToolCall(id=call_id, name=name, arguments={})
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return ToolCall(id=call_id, name=name, raw_arguments=text)
    if not isinstance(value, dict):
        return ToolCall(id=call_id, name=name, raw_arguments=text)
    return ToolCall(id=call_id, name=name, arguments=value)


def classify_provider_error(exc: BaseException) -> TransientAgentError | PermanentAgentError:
    """Decide retry-or-not from the HTTP status where there is one, else from the error type."""
    status = getattr(exc, "status_code", None)
    lib = litellm()
    message = f"{type(exc).__name__}: {exc}"[:2000]
    if isinstance(exc, lib.Timeout | lib.APIConnectionError | TimeoutError):
        return TransientAgentError(message, status=status)
    if isinstance(status, int):
        if status in _RETRYABLE_STATUS or status >= 500:
            return TransientAgentError(message, status=status)
        return PermanentAgentError(message, status=status)
    if isinstance(exc, lib.BadRequestError | lib.AuthenticationError | lib.NotFoundError):
        return PermanentAgentError(message, status=status)
    # Garbled bodies and other unclassified provider faults are worth another try.
    return TransientAgentError(message, status=status)


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

    async def act(self, request: AgentRequest) -> AgentReply:
        if self.tool_protocol != "text" and request.tools:
            try:
                return await self._native(request)
            except PermanentAgentError as error:
                if self.tool_protocol == "auto" and _refuses_tools(error):
                    self.tool_protocol = "text"
                else:
                    raise
        return await self._text(request)

    async def _complete(self, **kwargs: Any) -> Any:
        lib = litellm()
        try:
            return await lib.acompletion(model=self.model, **self._kwargs, **kwargs)
        except Exception as exc:
            raise classify_provider_error(exc) from exc

    async def _native(self, request: AgentRequest) -> AgentReply:
        response = await self._complete(
            messages=to_provider_messages(request.messages), tools=request.tools
        )
        choice = _first_choice(response)
        calls = [
            _parse_arguments(call.id, call.function.name or "", call.function.arguments)
            for call in (choice.tool_calls or [])
        ]
        message = Message(role="assistant", content=choice.content, tool_calls=calls)
        return AgentReply(message=message, usage=_usage(response), model=_model(response))

    async def _text(self, request: AgentRequest) -> AgentReply:
        response = await self._complete(messages=to_text_messages(request.messages, request.tools))
        choice = _first_choice(response)
        prose, calls = parse_text_calls(choice.content)
        message = Message(role="assistant", content=prose, tool_calls=calls)
        return AgentReply(
            message=message, usage=_usage(response), model=_model(response), protocol="text"
        )

    async def aclose(self) -> None:
        return None


def _refuses_tools(error: PermanentAgentError) -> bool:
    text = str(error).lower()
    return error.status in (400, 422, None) and any(h in text for h in _TOOLS_UNSUPPORTED_HINTS)


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
