"""Run configuration and the episode record a suite expands into.

The expansion itself is ``sandbox.runtime.expansion.expand_episodes`` (each kind of episode
says what its episodes are). The configuration is stored in the run manifest and is what
`--resume` and `merge` trust, so everything that changes which episodes exist or how they
behave lives here, validated.
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sandbox.agents.specs import AgentSpec
from sandbox.pressure import ALL_CATEGORIES, BASELINE, PressureSchedule, parse_category
from sandbox.results.redaction import Redactor, settings_secrets
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
    # Where episodes execute (docs/scaling.md): this process ("local"), or the workers of a Ray
    # cluster ("ray"; ``--executor ray``), the driver keeping sole ownership of the run
    # directory. ``ray_address`` names an existing cluster (None: start a local one, or the one
    # RAY_ADDRESS names); ``ray_workers`` is how many episode workers (None: one per CPU the
    # cluster has). ``concurrency`` is then per worker. How a run executes, never what it
    # measures: outside the identity hash, and a resume may change them.
    executor: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    ray_workers: int | None = Field(default=None, ge=1)
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
    # Count the rule judge's labels (a keyword heuristic, not validated) in the headline judge
    # numbers (``--rule-judge``); by default they are reported apart (``safety_by_rules``). A
    # reporting choice, not part of what runs: outside the identity hash.
    rule_judge: bool = False
    # An output-side defence against injected instructions (``sandbox.runtime.defences``):
    # "none", or "delimit" (tool outputs wrapped in per-episode markers, and the agent told
    # that text inside them is data, never instructions). In the identity hash when set.
    defence: Literal["none", "delimit"] = "none"
    # An injection pack applied across the suite (``--inject PACK``, an absolute path):
    # ``sandbox.runtime.injecting.apply_injection_pack``. In the identity hash when set.
    inject: str | None = None
    # Open (ToolEmu-style) scenarios: toolkit specs, the emulator model and its cache.
    toolkit_paths: list[str] = Field(default_factory=list)
    emulator_model: str | None = None
    emulator_api_base: str | None = None
    emulator_mode: Literal["standard", "adversarial"] = "standard"
    cache_dir: str | None = None
    # The kinds of episode to run, by name (``--kind``); None runs the built-in ones
    # (propensity scenarios, open scenarios, code tasks). A plugin's kind runs only when named.
    kinds: list[str] | None = Field(default=None, min_length=1)
    # Settings of kinds by kind name (``--kind-option KIND.KEY=VALUE``): JSON values a kind
    # reads as ``self.options``; a name that is not one of the run's kinds is refused.
    kind_options: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, kinds: list[str] | None) -> list[str] | None:
        if kinds is not None and len(set(kinds)) != len(kinds):
            raise ValueError("each episode kind may be named only once")
        return kinds

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
        # ``kinds`` and ``kind_options`` count only when set: runs recorded before they
        # existed keep their hash.
        # ``rule_judge`` is a reporting choice, the executor a way of running: never part of
        # the identity.
        exclude = {"shard", "concurrency", "rule_judge", "executor", "ray_address", "ray_workers"}
        exclude |= {"kinds"} if self.kinds is None else set()
        exclude |= set() if self.kind_options else {"kind_options"}
        exclude |= {"defence"} if self.defence == "none" else set()
        exclude |= {"inject"} if self.inject is None else set()
        data = self.model_dump(mode="json", exclude=exclude)
        digest = hashlib.sha256(repr(sorted(data.items())).encode()).hexdigest()
        return digest[:16]


class EpisodeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # The episode kind's name (``EpisodeKind.name``): "scenario" (propensity), "open",
    # "code_task", or a plugin kind's.
    kind: str = Field(default="scenario", min_length=1)
    id: str
    scenario_id: str
    domain: str
    category: str
    naming: Naming
    agent: str
    repeat: int
    seed: int
    # The injection this episode is attacked with (``Scenario.injections`` id); None for an
    # un-attacked episode, which is every attacked episode's pair.
    injection: str | None = None


def agent_slug(label: str) -> str:
    """The agent's part of an episode id: file-name safe, and at most 80 characters (a longer
    label keeps its first 71 and a hash of the whole, so distinct agents stay distinct)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-") or "agent"
    if len(slug) > 80:
        slug = f"{slug[:71]}-{hashlib.sha256(label.encode()).hexdigest()[:8]}"
    return slug


def episode_seed(base: int, episode_id: str) -> int:
    """The episode's own seed: a function of the run seed and the episode id only."""
    return (base * 1_000_003 + int(hashlib.sha256(episode_id.encode()).hexdigest()[:8], 16)) % (
        2**31
    )


def episode_id(scenario_id: str, category: str, naming: str, agent: str, repeat: int) -> str:
    """``SCENARIO.CATEGORY.NAMING.AGENT-SLUG.rREPEAT``: a scenario episode's id."""
    return f"{scenario_id}.{category}.{naming}.{agent_slug(agent)}.r{repeat}"


def run_redactor(config: RunConfig) -> Redactor:
    """What this run must never write: secret-looking environment variables, the variables the
    agents name with --api-key-env (whatever they are called), secrets in settings (api keys,
    header values) and passwords in URLs. Applied to every line of the run directory."""
    secrets = [
        os.environ[agent.api_key_env]
        for agent in config.agents
        if agent.api_key_env and os.environ.get(agent.api_key_env)
    ]
    secrets += settings_secrets(config.model_dump(mode="json"))
    return Redactor(extra=secrets)
