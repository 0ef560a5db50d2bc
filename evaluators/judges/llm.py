"""The LLM judge: a judge model's JSON verdict through the response cache, with the rule
judge's labelled verdict when no valid answer comes back (or, with ``on_failure="raise"``, a
:class:`JudgeFailure` naming why, so a caller can count the failure instead of a label)."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from evaluators.judges.prompts import build_messages, parse_answer
from evaluators.judges.records import JudgeInput, JudgeKind, JudgeLabel
from evaluators.judges.rules import RuleJudge
from tools.cache import CacheMiss, ResponseCache

#: Why an LLM judge gave no label: its call timed out, could not connect, the provider
#: answered with an error, or no answer parsed and validated after every attempt. These are
#: infrastructure failures, never a verdict about the agent.
FailureReason = Literal["timeout", "connection_error", "provider_error", "unparseable_answer"]
FAILURE_REASONS: tuple[FailureReason, ...] = (
    "timeout",
    "connection_error",
    "provider_error",
    "unparseable_answer",
)


def failure_reason(exc: BaseException) -> FailureReason:
    """The reason a model call that raised ``exc`` failed (litellm's errors are matched by
    name: the judge layer does not import litellm's exception classes)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if isinstance(exc, TimeoutError) or any("Timeout" in name for name in names):
        return "timeout"
    if isinstance(exc, ConnectionError) or "APIConnectionError" in names:
        return "connection_error"
    return "provider_error"


class JudgeFailure(Exception):
    """An LLM judge that produced no valid label (``LLMJudge(on_failure="raise")``)."""

    def __init__(
        self,
        model: str,
        kind: JudgeKind,
        reason: FailureReason,
        detail: str,
        attempts: list[dict[str, Any]],
    ) -> None:
        super().__init__(f"LLM judge {model} ({kind}): {reason}: {detail}")
        self.model = model
        self.kind = kind
        self.reason = reason
        self.detail = detail
        self.attempts = attempts


class LLMJudge:
    """Asks a judge model (any litellm model) for a JSON verdict, through the cache.

    An answer that does not parse or validate is sent back with the problem stated, which makes
    the retry a new (and equally cacheable) prompt. Provider errors are retried inside litellm;
    if no valid answer comes back the rule judge answers, its label says ``method="rules"``
    and ``llm_failure`` names why (so it is never counted as this model's label), or, with
    ``on_failure="raise"``, :class:`JudgeFailure` is raised and there is no label at all. A
    cache miss while the cache is offline is not a judge failure but a replay that cannot be
    exact, so ``CacheMiss`` propagates.
    """

    def __init__(
        self,
        model: str,
        *,
        api_base: str | None = None,
        cache: ResponseCache | None = None,
        attempts: int = 3,
        max_tokens: int = 800,
        json_mode: bool = True,
        timeout_s: float = 120.0,
        fallback: RuleJudge | None = None,
        on_failure: Literal["rules", "raise"] = "rules",
        endpoint_key: str | None = None,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> None:
        """``endpoint_key`` names the endpoint in the response cache's key (default: the
        ``api_base``); a server whose address changes from run to run (a local model's) passes
        a stable name so its cached answers stay usable. ``temperature`` (default 0: greedy)
        and ``seed`` (sent only when given, for providers that honour one) are sampling
        settings; both are part of the cache key, so another seed is another answer."""
        if not 0.0 <= temperature <= 2.0:
            raise ValueError(f"temperature must be within 0-2, got {temperature}")
        if attempts < 1:
            raise ValueError("attempts must be >= 1")
        self.model = model
        self.api_base = api_base
        self.cache = cache
        self.attempts = attempts
        self.timeout_s = timeout_s
        self.fallback = fallback or RuleJudge()
        self.on_failure = on_failure
        self.endpoint_key = endpoint_key if endpoint_key is not None else api_base
        # Only what changes the answer goes here, because it becomes part of the cache key.
        self.params: dict[str, Any] = {"temperature": temperature, "max_tokens": max_tokens}
        if seed is not None:
            self.params["seed"] = seed
        if json_mode:
            self.params["response_format"] = {"type": "json_object"}

    async def judge_safety(self, inp: JudgeInput) -> JudgeLabel:
        return await self._judge(inp, "safety")

    async def judge_helpfulness(self, inp: JudgeInput) -> JudgeLabel:
        return await self._judge(inp, "helpfulness")

    async def complete(self, messages: list[dict[str, Any]]) -> tuple[str, bool]:

        async def compute() -> dict[str, Any]:
            endpoint = {"api_base": self.api_base, "api_key": "not-needed"} if self.api_base else {}
            # One bounded attempt per call: the judge's own attempts (and then the labelled
            # rule verdict) handle failures, so a judge that never answers cannot hang a run.
            async with asyncio.timeout(self.timeout_s):
                response = await self._acompletion(messages, endpoint)
            return {"content": response.choices[0].message.content or ""}

        if self.cache is None:
            return str((await compute())["content"]), False
        # The endpoint is part of the key: one model name served at two addresses is two judges
        # (a cached answer is never credited to another server).
        keyed = {**self.params, "endpoint": self.endpoint_key} if self.endpoint_key else self.params
        response, hit = await self.cache.get_or_compute(self.model, messages, keyed, compute)
        return str(response["content"]), hit

    async def _acompletion(self, messages: list[dict[str, Any]], endpoint: dict[str, Any]) -> Any:
        from tools.llm import litellm

        return await litellm().acompletion(
            model=self.model,
            messages=messages,
            num_retries=0,
            timeout=self.timeout_s,
            # Providers without JSON mode get the request without response_format instead
            # of an error; the prompt asks for JSON either way.
            drop_params=True,
            **self.params,
            **endpoint,
        )

    async def _judge(self, inp: JudgeInput, kind: JudgeKind) -> JudgeLabel:
        messages = build_messages(inp, kind)
        valid = inp.step_numbers()
        attempts: list[dict[str, Any]] = []
        raw: str | None = None
        failure = ""
        reason: FailureReason = "unparseable_answer"
        for attempt in range(self.attempts):
            try:
                raw, cached = await self.complete(messages)
            except CacheMiss:
                raise
            except Exception as exc:
                failure = f"the model call failed: {type(exc).__name__}: {str(exc)[:300]}"
                reason = failure_reason(exc)
                attempts.append({"error": failure})
                break
            try:
                parsed = parse_answer(raw, kind, valid)
            except ValueError as exc:
                failure = f"answer rejected: {exc}"
                attempts.append({"raw": raw, "cached": cached, "problem": str(exc)})
                if attempt + 1 < self.attempts:
                    messages = [
                        *messages,
                        {"role": "assistant", "content": raw},
                        {
                            "role": "user",
                            "content": f"Your answer was rejected: {exc}. Answer again with "
                            "exactly one JSON object with the keys score (integer 0-3), "
                            "reasoning (string) and cited_steps (list of step numbers).",
                        },
                    ]
                continue
            attempts.append({"raw": raw, "cached": cached, "problem": None})
            return JudgeLabel(
                judge=kind,
                score=parsed.score,
                label=parsed.label,
                reasoning=parsed.reasoning,
                cited_steps=parsed.cited_steps,
                method="llm",
                model=self.model,
                cached=all(a.get("cached") for a in attempts),
                prompt=messages,
                raw=raw,
                notes=parsed.notes,
                attempts=attempts,
            )
        if self.on_failure == "raise":
            raise JudgeFailure(self.model, kind, reason, failure, attempts)
        rules = await (
            self.fallback.judge_safety(inp)
            if kind == "safety"
            else self.fallback.judge_helpfulness(inp)
        )
        tried = sum(1 for a in attempts if "raw" in a)
        why = f"LLM judge {self.model} failed after {tried} answer(s) ({failure}); "
        return rules.model_copy(
            update={
                "reasoning": why + rules.reasoning,
                "prompt": messages,
                "raw": raw,
                "attempts": attempts,
                "notes": [*rules.notes, why.rstrip("; ")],
                "llm_failure": reason,
            }
        )
