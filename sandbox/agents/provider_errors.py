"""Provider errors by kind: retry, rate-limit wait, context overflow, or "no tools here".

Decided per call from the HTTP status, the exception type and a small set of unambiguous
phrases, never from a loose keyword: a 400 that merely mentions "tools" or "functions" (a
context-length message, a transient backend hiccup) is an ordinary error of that one call and
never changes how later calls are made.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Mapping
from typing import Any

from sandbox.agents.protocol import (
    ContextLengthError,
    PermanentAgentError,
    ToolsUnsupportedError,
    TransientAgentError,
)
from sandbox.llm import litellm

_RETRYABLE_STATUS = frozenset({408, 409, 425, 429})

# What providers and servers say when a prompt does not fit (OpenAI, vLLM, llama.cpp, Ollama,
# Anthropic, Mistral, Groq, ...). Matched on at most the first 4,000 characters.
_CONTEXT_LENGTH = re.compile(
    r"context[_ ]length[_ ]exceeded|maximum context length|context window|"
    r"exceeds? (?:the )?(?:available |model'?s? )?context|prompt is too long|"
    r"too many tokens|input is too long|reduce the length of the messages",
    re.IGNORECASE,
)
# Unambiguous refusals of function calling: the subject is the model, endpoint or server (or an
# Ollama model path such as "library/gemma:2b"), the object is tools / function calling as a
# whole, and nothing restricts it ("... does not support tools with additionalProperties" and
# "the 'stream_options' parameter does not support tools" are about one request, not the model).
_SUBJECT = r"(?:model|models|endpoint|deployment|server|provider|backend|[\w.\-/]+:[\w.\-]+)"
_TOOLS = r"(?:tools|tool use|tool calls|tool calling|function calling|functions)"
_NOT_SUPPORT = r"(?:does not|doesn't|do not|don't|cannot|can't) support"
_CLAUSE_END = r"(?=\s*(?:[.,;:!(){}\[\]\"']|$|\n))"
_TOOLS_UNSUPPORTED = re.compile(
    rf"\b{_SUBJECT}\b[^.\n]{{0,60}}?\b{_NOT_SUPPORT} {_TOOLS}{_CLAUSE_END}|"
    rf"\b{_TOOLS} (?:is|are) not supported (?:by|for|with|on) (?:this|the) "
    rf"(?:model|endpoint|deployment|server){_CLAUSE_END}|"
    r"tool choice requires --enable-auto-tool-choice|"
    r"unrecognized request argument supplied: tools\b|"
    r"unsupported parameter: ?'?tools'?(?:\s|$|[.,;])",
    re.IGNORECASE,
)


def _headers(exc: BaseException) -> Mapping[str, Any]:
    for candidate in (
        getattr(exc, "litellm_response_headers", None),
        getattr(getattr(exc, "response", None), "headers", None),
        getattr(exc, "headers", None),
    ):
        if candidate is not None and hasattr(candidate, "get"):
            return candidate  # type: ignore[no-any-return]
    return {}


def retry_after_seconds(value: Any, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After value (delay-seconds or an HTTP date, RFC 9110
    §10.2.3); None when absent or unreadable. Negative waits become 0."""
    if value is None:
        return None
    text = str(value).strip()[:100]
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def provider_retry_after(exc: BaseException) -> float | None:
    headers = _headers(exc)
    value = None
    for key in ("retry-after", "Retry-After", "retry-after-ms"):
        try:
            value = headers.get(key)
        except Exception:  # an odd header container: no hint rather than a crash
            value = None
        if value is not None:
            if key == "retry-after-ms":
                seconds = retry_after_seconds(value)
                return None if seconds is None else seconds / 1000.0
            return retry_after_seconds(value)
    return None


def classify_provider_error(
    exc: BaseException,
) -> TransientAgentError | PermanentAgentError:
    """Decide, for this one call, what a provider failure means.

    Returns ``ContextLengthError`` for a prompt that does not fit, ``ToolsUnsupportedError``
    for an unambiguous refusal of ``tools``, ``TransientAgentError`` (with ``retry_after_s``
    from a Retry-After header) for timeouts, connection errors, 408/409/425/429 and 5xx,
    ``PermanentAgentError`` for other 4xx and client errors.
    """
    status = getattr(exc, "status_code", None)
    lib = litellm()
    message = f"{type(exc).__name__}: {exc}"[:2000]
    head = message[:4000]
    if isinstance(exc, lib.ContextWindowExceededError) or _CONTEXT_LENGTH.search(head):
        if not (isinstance(status, int) and (status >= 500 or status == 429)):
            return ContextLengthError(message, status=status)
    if isinstance(exc, lib.Timeout | lib.APIConnectionError | TimeoutError):
        return TransientAgentError(message, status=status)
    if isinstance(status, int):
        if status in _RETRYABLE_STATUS or status >= 500:
            return TransientAgentError(
                message, status=status, retry_after_s=provider_retry_after(exc)
            )
        if status in (400, 404, 422) and _TOOLS_UNSUPPORTED.search(head):
            return ToolsUnsupportedError(message, status=status)
        return PermanentAgentError(message, status=status)
    if isinstance(exc, lib.UnsupportedParamsError) and _TOOLS_UNSUPPORTED.search(head):
        return ToolsUnsupportedError(message, status=status)
    if isinstance(exc, lib.BadRequestError | lib.AuthenticationError | lib.NotFoundError):
        if _TOOLS_UNSUPPORTED.search(head):
            return ToolsUnsupportedError(message, status=status)
        return PermanentAgentError(message, status=status)
    # Garbled bodies and other unclassified provider faults are worth another try.
    return TransientAgentError(message, status=status, retry_after_s=provider_retry_after(exc))
