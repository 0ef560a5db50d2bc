"""Run configuration and the expansion of a suite into episodes.

The configuration is stored in the run manifest and is what `--resume` and `merge` trust, so
everything that changes which episodes exist or how they behave lives here, validated.
"""

from __future__ import annotations

import hashlib
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sandbox.agents.specs import AgentSpec
from sandbox.pressure import ALL_CATEGORIES, BASELINE, PressureSchedule, parse_category
from scenarios.model import Pack
from scenarios.records import Naming
from tools.execution import SandboxLimits


class RetryPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(default=6, ge=1)
    base_delay_s: float = Field(default=0.5, ge=0)
    max_delay_s: float = Field(default=30.0, ge=0)


class Shard(BaseModel):
    """Shard I of N (1-based): episode k of the expanded suite belongs to shard k % N + 1."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    index: int = Field(ge=1)
    count: int = Field(ge=1)

    @model_validator(mode="after")
    def _in_range(self) -> Shard:
        if self.index > self.count:
            raise ValueError(f"shard {self.index}/{self.count}: index must be at most count")
        return self

    @classmethod
    def parse(cls, text: str) -> Shard:
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not match:
            raise ValueError(f"--shard expects I/N (for example 1/4), got {text!r}")
        return cls(index=int(match.group(1)), count=int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    suite: str
    agents: list[AgentSpec] = Field(min_length=1)
    categories: list[str] = Field(default_factory=lambda: list(ALL_CATEGORIES))
    include_baseline: bool = True
    namings: list[Naming] = Field(default_factory=lambda: [Naming.HARMFUL, Naming.BENIGN])
    repeats: int = Field(default=1, ge=1)
    schedule: PressureSchedule = Field(default_factory=PressureSchedule)
    concurrency: int = Field(default=16, ge=1)
    episode_timeout_s: float = Field(default=900.0, gt=0)
    call_timeout_s: float = Field(default=120.0, gt=0)
    tool_timeout_s: float = Field(default=60.0, gt=0)
    max_turns: int = Field(default=40, ge=1)
    max_calls_per_tool: int | None = Field(default=25, ge=1)
    stop_on_misaligned: bool = True
    # Read tool calls a model wrote in its text when it returned no native call (auto), or
    # only ever take native calls (off). The text protocol and the local model always read.
    recover_calls: Literal["auto", "off"] = "auto"
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    limit: int | None = Field(default=None, ge=1)
    scenario_ids: list[str] = Field(default_factory=list)
    shard: Shard | None = None
    seed: int = 0
    # Code-interpreter tasks.
    sandbox: SandboxLimits = Field(default_factory=SandboxLimits)
    sandbox_pool: int = Field(default=4, ge=1)
    # A fresh container for every code episode instead of a warm one reset between episodes.
    sandbox_fresh: bool = False
    environment: Literal["docker", "local"] = "docker"
    unsafe_local: bool = False
    code_max_turns: int = Field(default=6, ge=1)
    judge_model: str | None = None
    judge_api_base: str | None = None
    # Open (ToolEmu-style) scenarios: toolkit specs, the emulator model and its cache.
    toolkit_paths: list[str] = Field(default_factory=list)
    emulator_model: str | None = None
    emulator_api_base: str | None = None
    emulator_mode: Literal["standard", "adversarial"] = "standard"
    cache_dir: str | None = None

    @field_validator("categories")
    @classmethod
    def _categories(cls, categories: list[str]) -> list[str]:
        return [parse_category(c) for c in categories if c != BASELINE]

    @model_validator(mode="after")
    def _unique_agents(self) -> RunConfig:
        labels = [agent.label for agent in self.agents]
        if len(set(labels)) != len(labels):
            raise ValueError("each agent may appear only once in a run")
        # Episode ids name the agent by its slug: two agents sharing one would write the same
        # episodes (one agent's results silently replacing the other's).
        by_slug: dict[str, str] = {}
        for label in labels:
            other = by_slug.setdefault(agent_slug(label), label)
            if other != label:
                raise ValueError(
                    f"agents {other!r} and {label!r} would share the episode-id name "
                    f"{agent_slug(label)!r} (ids keep letters, digits, '_', '.' and '-'); "
                    "rename one of them (its Python function, or the served model's name)"
                )
        if not self.categories and not self.include_baseline:
            raise ValueError("nothing to run: no pressure category and no baseline")
        return self

    def identity_hash(self) -> str:
        """What must match for two run directories to be parts of the same suite run."""
        data = self.model_dump(mode="json", exclude={"shard", "concurrency"})
        digest = hashlib.sha256(repr(sorted(data.items())).encode()).hexdigest()
        return digest[:16]


class EpisodeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["scenario", "code_task", "open"] = "scenario"
    id: str
    scenario_id: str
    domain: str
    category: str
    naming: Naming
    agent: str
    repeat: int
    seed: int


def agent_slug(label: str) -> str:
    """The agent's part of an episode id: file-name safe, and at most 80 characters (a longer
    label keeps its first 71 and a hash of the whole, so distinct agents stay distinct)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-") or "agent"
    if len(slug) > 80:
        slug = f"{slug[:71]}-{hashlib.sha256(label.encode()).hexdigest()[:8]}"
    return slug


def _episode_seed(base: int, episode_id: str) -> int:
    return (base * 1_000_003 + int(hashlib.sha256(episode_id.encode()).hexdigest()[:8], 16)) % (
        2**31
    )


def expand_episodes(config: RunConfig, pack: Pack) -> list[EpisodeSpec]:
    """The suite's episodes in a stable order: the same config always gives the same list."""
    scenarios = pack.scenarios
    if config.scenario_ids:
        wanted = set(config.scenario_ids)
        missing = wanted - {s.id for s in scenarios} - {t.id for t in pack.code_tasks}
        if missing:
            raise ValueError(f"unknown scenario ids in pack {pack.name!r}: {sorted(missing)}")
        scenarios = [s for s in scenarios if s.id in wanted]
    code_tasks = pack.code_tasks
    if config.scenario_ids:
        code_tasks = [t for t in code_tasks if t.id in wanted]
    if config.limit is not None:
        scenarios = scenarios[: config.limit]
        code_tasks = code_tasks[: config.limit]
    categories = ([BASELINE] if config.include_baseline else []) + list(config.categories)
    episodes: list[EpisodeSpec] = []
    for scenario in scenarios:
        # Open scenarios have no pressure or naming variants: one episode per agent and repeat.
        is_open = scenario.kind == "open"
        for category in [BASELINE] if is_open else categories:
            for naming in [Naming.HARMFUL] if is_open else config.namings:
                for agent in config.agents:
                    for repeat in range(config.repeats):
                        episode_id = (
                            f"{scenario.id}.{category}.{naming.value}."
                            f"{agent_slug(agent.label)}.r{repeat}"
                        )
                        episodes.append(
                            EpisodeSpec(
                                kind="open" if is_open else "scenario",
                                id=episode_id,
                                scenario_id=scenario.id,
                                domain=scenario.domain,
                                category=category,
                                naming=naming,
                                agent=agent.label,
                                repeat=repeat,
                                seed=_episode_seed(config.seed, episode_id),
                            )
                        )
    for task in code_tasks:
        for agent in config.agents:
            for repeat in range(config.repeats):
                episode_id = f"{task.id}.{agent_slug(agent.label)}.r{repeat}"
                episodes.append(
                    EpisodeSpec(
                        kind="code_task",
                        id=episode_id,
                        scenario_id=task.id,
                        domain=f"code-{task.resource.value}",
                        category=task.framing.value,
                        naming=Naming.HARMFUL,
                        agent=agent.label,
                        repeat=repeat,
                        seed=_episode_seed(config.seed, episode_id),
                    )
                )
    if config.shard is not None:
        shard = config.shard
        episodes = [e for k, e in enumerate(episodes) if k % shard.count == shard.index - 1]
    return episodes
