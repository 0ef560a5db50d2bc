"""Run configurations that would silently mix up results are refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sandbox import RunConfig
from sandbox.agents import AgentSpec


def test_two_agents_whose_ids_would_collide_are_refused() -> None:
    # Distinct specs, one episode-id name: one agent's episodes would replace the other's.
    for first, second in (
        ("python:advagents:v2 risky", "python:advagents:v2-risky"),
        ("openai/llama3:8b", "openai/llama3-8b"),
        ("always-risky", " always-risky"),
    ):
        with pytest.raises(ValidationError, match="would share the episode-id name"):
            RunConfig(suite="starter", agents=[AgentSpec(spec=first), AgentSpec(spec=second)])
