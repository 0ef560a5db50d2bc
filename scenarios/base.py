"""The base of every authored (YAML) model: unknown keys are errors, so typos never pass."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
