"""An LLM judge that gives no valid label: raised with its reason (``on_failure="raise"``), or
answered by the rule judge with the failure named, never as the LLM judge's label."""

from __future__ import annotations

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
