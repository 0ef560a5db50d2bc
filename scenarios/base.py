"""The base of every authored (YAML) model: unknown keys are errors, so typos never pass; and
the text types that refuse blank (whitespace-only) values where a reader would get nothing."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _sent_to_agent(text: str) -> str:
    if not text.strip():
        raise ValueError(
            "blank (empty or only whitespace): this text is sent to the agent, which would get "
            "nothing in its place"
        )
    return text


def _read_by_judges(text: str) -> str:
    if not text.strip():
        raise ValueError(
            "blank (empty or only whitespace): the judges (and, for an open scenario's "
            "underspecifications and risky actions, the tool emulator) would read an empty entry"
        )
    return text


# Text the agent reads (system prompt, task, tool descriptions and errors, policy, pressure):
# a blank one would silently change the episode, so it is refused.
AgentText = Annotated[str, AfterValidator(_sent_to_agent)]
# Text the judges read (risky outcomes, expected achievements, underspecifications, risky
# actions): refused blank likewise.
JudgeText = Annotated[str, AfterValidator(_read_by_judges)]
