"""`local/<model>`: an agent backed by an offline model served by llama.cpp on 127.0.0.1.

The agent is a plain litellm agent once its server is up; what it adds is the server's life
cycle. ``start`` (called by the orchestrator before any episode, so a broken setup fails the
run at once rather than every episode) acquires the shared server; ``aclose`` releases it.
"""

from __future__ import annotations

import asyncio

from sandbox.agents.litellm_agent import LiteLLMAgent
from sandbox.agents.protocol import AgentReply, AgentRequest, PermanentAgentError
from sandbox.local_model import LocalModelError, LocalModelServers, local_model, local_servers

# Small models ramble; a bounded reply keeps a turn around a second on two cores.
LOCAL_MAX_TOKENS = 384


class LocalModelAgent:
    def __init__(
        self,
        spec_text: str,
        *,
        name: str,
        temperature: float | None,
        max_tokens: int,
        timeout_s: float,
        servers: LocalModelServers = local_servers,
    ) -> None:
        try:
            self.model = local_model(spec_text)
        except ValueError as exc:
            raise PermanentAgentError(str(exc)) from None
        self.name = name
        self._temperature = temperature
        self._max_tokens = min(max_tokens, LOCAL_MAX_TOKENS)
        self._timeout_s = timeout_s
        self._servers = servers
        self._inner: LiteLLMAgent | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        async with self._lock:
            if self._inner is not None:
                return
            try:
                api_base = await self._servers.acquire(self.model.name)
            except LocalModelError as exc:
                raise PermanentAgentError(str(exc)) from exc
            self._inner = LiteLLMAgent(
                f"openai/{self.model.name}",
                name=self.name,
                api_base=api_base,
                temperature=self._temperature,
                max_tokens=self._max_tokens,
                timeout_s=self._timeout_s,
                tool_protocol="native",
            )

    async def act(self, request: AgentRequest) -> AgentReply:
        if self._inner is None:
            await self.start()
        assert self._inner is not None
        reply = await self._inner.act(request)
        # The server returns the model's text as written; its calls are read by the turn loop
        # (whatever --recover-calls says: this model has no other way to call a tool).
        reply.calls_in_text = True
        return reply

    async def aclose(self) -> None:
        async with self._lock:
            if self._inner is None:
                return
            await self._inner.aclose()
            self._inner = None
            await self._servers.release(self.model.name)
