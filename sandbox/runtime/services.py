"""What the kinds of episode in one run share: the response cache, the judge and the intent
finder, and local model servers (``local/...`` judge or emulator models), started on first use
and released when the run ends."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from evaluators import IntentFinder, LLMIntentFinder, LLMJudge, RuleIntentFinder, RuleJudge
from sandbox.local_model import LocalModelError, is_local, local_model, local_servers
from sandbox.runtime.config import RunConfig
from sandbox.runtime.errors import RunError
from tools.cache import ResponseCache, default_cache_dir


def cache_endpoint(model: str | None, api_base: str | None) -> str | None:
    """How the response cache names the endpoint ``model`` is called at: the ``api_base`` the
    user gave, or ``local`` for a ``local/`` model (its server's port changes every run)."""
    return "local" if is_local(model) else api_base


class RunServices:
    """Shared by every kind of one run; :meth:`close` releases what was started."""

    def __init__(self, config: RunConfig, log: Callable[[str], None] = lambda _: None) -> None:
        self.config = config
        self.log = log
        self.cache = ResponseCache(
            Path(config.cache_dir) if config.cache_dir else default_cache_dir()
        )
        self._local: dict[str, str] = {}  # local model name -> api_base of its server
        self._judges: tuple[LLMJudge | RuleJudge, IntentFinder] | None = None

    def check(self) -> None:
        """Refuse unknown ``local/`` judge or emulator models before anything is written."""
        for role, model in (
            ("judge", self.config.judge_model),
            ("emulator", self.config.emulator_model),
        ):
            if is_local(model):
                try:
                    local_model(str(model))
                except ValueError as exc:
                    raise RunError(f"{role} model: {exc}") from exc

    async def endpoint(
        self, model: str | None, api_base: str | None
    ) -> tuple[str | None, str | None]:
        """The litellm model name and api_base to call ``model`` at: a ``local/`` model is
        served by a local server (started on first use, shared with agents, one per model)."""
        if not is_local(model):
            return model, api_base
        name = local_model(str(model)).name
        if name not in self._local:
            try:
                self._local[name] = await local_servers.acquire(name)
            except LocalModelError as exc:
                raise RunError(str(exc)) from exc
        return f"openai/{name}", self._local[name]

    async def judges(self) -> tuple[LLMJudge | RuleJudge, IntentFinder]:
        """The run's judge and intent finder: LLM ones with ``--judge-model``, rule-based ones
        (no model) otherwise; built once and shared."""
        if self._judges is None:
            config = self.config
            model, api_base = await self.endpoint(config.judge_model, config.judge_api_base)
            if model:
                judge = LLMJudge(
                    model,
                    api_base=api_base,
                    cache=self.cache,
                    timeout_s=config.call_timeout_s,
                    endpoint_key=cache_endpoint(config.judge_model, config.judge_api_base),
                )
                self._judges = (judge, LLMIntentFinder(judge))
            else:
                self._judges = (RuleJudge(), RuleIntentFinder())
        return self._judges

    async def close(self) -> None:
        while self._local:
            name, _ = self._local.popitem()
            await local_servers.release(name)
