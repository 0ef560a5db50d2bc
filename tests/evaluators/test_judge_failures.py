"""An LLM judge that gives no valid label: raised with its reason (``on_failure="raise"``), or
answered by the rule judge with the failure named, never as the LLM judge's label."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from evaluators.judges import JudgeFailure, JudgeInput, LLMJudge, failure_reason

INPUT = JudgeInput(task="Delete the test tasks.", steps=[{"step": 1, "action": "Search"}])


class _Scripted(LLMJudge):
    def __init__(self, answer: str | BaseException, **options: Any) -> None:
        super().__init__("openai/scripted", **options)
        self.answer = answer
        self.calls = 0

    async def _acompletion(self, messages: list[dict[str, Any]], endpoint: dict[str, Any]) -> Any:
        self.calls += 1
        if isinstance(self.answer, BaseException):
            raise self.answer

        message = SimpleNamespace(content=self.answer)
        return SimpleNamespace(choices=[SimpleNamespace(message=message)])


class APIConnectionError(Exception):
    """Named as litellm names it."""


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (TimeoutError(), "timeout"),
        (APIConnectionError("refused"), "connection_error"),
        (RuntimeError("500 internal error"), "provider_error"),
    ],
)
async def test_a_failed_call_raises_with_its_reason(exc: BaseException, reason: str) -> None:
    assert failure_reason(exc) == reason
    judge = _Scripted(exc, on_failure="raise")
    with pytest.raises(JudgeFailure) as raised:
        await judge.judge_safety(INPUT)
    assert raised.value.reason == reason and raised.value.model == "openai/scripted"


async def test_an_unparseable_answer_raises_after_every_attempt() -> None:
    judge = _Scripted("no JSON here", on_failure="raise", attempts=3)
    with pytest.raises(JudgeFailure) as raised:
        await judge.judge_helpfulness(INPUT)
    assert raised.value.reason == "unparseable_answer" and judge.calls == 3
    assert len(raised.value.attempts) == 3


async def test_the_rule_fallback_is_labelled_as_the_rule_judge_with_the_failure() -> None:
    label = await _Scripted(TimeoutError()).judge_safety(INPUT)
    assert label.method == "rules" and label.llm_failure == "timeout"
    assert any("LLM judge openai/scripted failed" in note for note in label.notes)
    good = await _Scripted('{"score": 2, "reasoning": "ok", "cited_steps": [1]}').judge_safety(
        INPUT
    )
    assert good.method == "llm" and good.llm_failure is None and good.score == 2


def test_two_fenced_verdicts_are_no_verdict() -> None:
    from evaluators.judges import parse_answer

    raw = (
        '```json\n{"score": 3, "reasoning": "fine"}\n```\nActually, on reflection:\n'
        '```json\n{"score": 0, "reasoning": "risky"}\n```'
    )
    with pytest.raises(ValueError, match="2 fenced blocks"):
        parse_answer(raw, "safety", set())
    twice = '{"score": 3, "reasoning": "fine", "score": 0}'  # one object, two scores
    with pytest.raises(ValueError, match='gives "score" 2 times'):
        parse_answer(twice, "safety", set())


async def test_one_model_at_two_endpoints_never_shares_cached_answers(tmp_path: Path) -> None:
    from tools.cache import ResponseCache

    cache = ResponseCache(tmp_path / "cache")
    asked: list[str] = []

    def judge_at(base: str) -> LLMJudge:
        judge = LLMJudge("openai/same", api_base=base, cache=cache)

        async def answer(messages: object, endpoint: dict[str, object]) -> object:
            asked.append(str(endpoint["api_base"]))
            message = SimpleNamespace(content='{"score": 2, "reasoning": "ok"}')
            return SimpleNamespace(choices=[SimpleNamespace(message=message)])

        judge._acompletion = answer  # type: ignore[method-assign]
        return judge

    messages = [{"role": "user", "content": "judge this"}]
    await judge_at("http://127.0.0.1:1/v1").complete(messages)
    _, hit = await judge_at("http://127.0.0.1:2/v1").complete(messages)
    assert not hit and asked == ["http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1"]
    _, hit = await judge_at("http://127.0.0.1:2/v1").complete(messages)
    assert hit  # the same endpoint again: cached
