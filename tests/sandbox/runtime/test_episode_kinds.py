"""The runtime runs kinds of episode it does not know: the EpisodeKind interface, its registry,
the expansion order, and what the orchestrator does when a kind fails."""

from __future__ import annotations

import hashlib
import io
import json
import re
import tokenize
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import ClassVar

import pytest

from sandbox import EpisodeKind, RunConfig, RunError, RunStore, Shard, register_kind, start_run
from sandbox.agents.specs import AgentSpec
from sandbox.results.store import TrajectoryWriter
from sandbox.runtime.config import EpisodeSpec, agent_slug, episode_seed
from sandbox.runtime.expansion import expand_episodes
from sandbox.runtime.kinds import kind_named, registered_kinds
from sandbox.runtime.turn_loop import EpisodeOutcome, TurnLoop
from scenarios.loader import load_pack
from scenarios.model import Pack
from scenarios.records import EpisodeStatus, Naming, Score, Trajectory
from tools import ToolContext, ToolSet

ROOT = Path(__file__).resolve().parents[3]


def test_the_orchestrator_names_no_kind() -> None:
    """No identifier or string in the orchestrator module (docstrings included) names a kind,
    a kind's item or a kind's service. Allowed: the ``scenarios`` package (the records it
    imports) and the store's ``open_trajectory``."""
    source = (ROOT / "sandbox" / "runtime" / "orchestrator.py").read_text()
    words = [
        part
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type in (tokenize.NAME, tokenize.STRING)
        and tok.string not in ("scenarios", "open_trajectory")
        for part in re.findall(r"[a-z]+", tok.string.lower())
    ]
    forbidden = {
        *("scenario", "code", "open", "propensity", "branch", "branched", "emulator"),
        *("emulated", "judge", "judges", "toolkit", "toolkits", "environment", "pressure"),
    }
    assert sorted(forbidden.intersection(words)) == []
    assert "EpisodeKind" in source  # the check reads the right file


def _config(tmp_path: Path, **extra: object) -> RunConfig:
    return RunConfig.model_validate(
        {
            "suite": "starter",
            "agents": [AgentSpec(spec="always-safe"), AgentSpec(spec="always-risky")],
            "categories": ["time"],
            "cache_dir": str(tmp_path / "cache"),
            "concurrency": 2,
            **extra,
        }
    )


class _Runner(TurnLoop):
    def __init__(
        self,
        spec: EpisodeSpec,
        config: RunConfig,
        writer: TrajectoryWriter,
        agent: object,
        mode: str,
    ) -> None:
        context = ToolContext(episode_id=spec.id, scenario=None, naming=spec.naming)
        super().__init__(spec, agent, config, writer, ToolSet([]), context)  # type: ignore[arg-type]
        self.mode = mode

    async def run(self) -> EpisodeOutcome:
        self.start_conversation("system", "Say something.")
        if self.mode == "crash":
            raise RuntimeError("the kind's runner broke")
        reply = await self.agent_turn()
        if isinstance(reply, EpisodeOutcome):
            return reply
        return self.end(EpisodeStatus.DONE, "answered")


class _ToyKind(EpisodeKind):
    """One episode per agent; ``mode`` decides how it fails."""

    name = "toy-ok"
    mode = "ok"
    events: ClassVar[list[str]] = []

    @classmethod
    def episodes(cls, config: RunConfig, pack: Pack) -> list[EpisodeSpec]:
        return [
            EpisodeSpec(
                kind=cls.name,
                id=(eid := f"{cls.name}.{agent_slug(agent.label)}"),
                scenario_id=cls.name,
                domain="toy",
                category="baseline",
                naming=Naming.HARMFUL,
                agent=agent.label,
                repeat=0,
                seed=episode_seed(config.seed, eid),
            )
            for agent in config.agents
        ]

    def check(self) -> None:
        if self.mode == "refuse":
            raise RunError("the toy kind refuses this run")

    async def start(self, todo: Sequence[EpisodeSpec]) -> None:
        self.events.append(f"start {len(todo)}")
        if self.mode == "start-fails":
            raise RunError("the toy service did not start")

    async def close(self) -> None:
        self.events.append("close")

    @asynccontextmanager
    async def runner(self, spec: EpisodeSpec, writer: TrajectoryWriter) -> AsyncIterator[TurnLoop]:
        agent = self.run.agents[spec.agent]
        yield _Runner(spec, self.run.config, writer, agent, self.mode)

    async def score(self, spec: EpisodeSpec, trajectory: Trajectory) -> list[Score]:
        if self.mode == "score-crash":
            raise ValueError("the toy scorer broke")
        return [Score(episode_id=spec.id, evaluator="toy", value=0.5, label="half")]


def _toy(mode: str) -> type[EpisodeKind]:
    kind = type(f"Toy_{mode}", (_ToyKind,), {"name": f"toy-{mode}", "mode": mode, "events": []})
    return register_kind(kind)


for _mode in ("ok", "crash", "score-crash", "refuse", "start-fails"):
    _toy(_mode)


def test_the_registry_refuses_a_taken_name_and_unnamed_kinds() -> None:
    toy = kind_named("toy-ok")
    assert register_kind(toy) is toy  # the same class again changes nothing
    with pytest.raises(ValueError, match="already registered"):
        register_kind(type("Other", (_ToyKind,), {"name": "toy-ok"}))
    with pytest.raises(ValueError, match="needs a name"):
        register_kind(type("Bad", (_ToyKind,), {"name": "has space"}))
    with pytest.raises(LookupError, match=r"unknown episode kind 'nope'.*--plugin"):
        kind_named("nope")
    assert {"scenario", "open", "code_task"} <= set(registered_kinds())


async def test_a_kind_the_runtime_does_not_know_runs_end_to_end(tmp_path: Path) -> None:
    result = await start_run(_config(tmp_path, kinds=["toy-ok"]), tmp_path / "run")
    assert result.counts == {"done": 2, "errored": 0}
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["other_scores"]["toy"]["always-safe"]["mean"] == 0.5
    assert summary["by_agent"] == {}
    assert kind_named("toy-ok").events == ["start 2", "close"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("mode", "reason"), [("crash", "harness_error"), ("score-crash", "scoring_error")]
)
async def test_a_failing_kind_is_an_infrastructure_error_not_behaviour(
    tmp_path: Path, mode: str, reason: str
) -> None:
    result = await start_run(_config(tmp_path, kinds=[f"toy-{mode}"]), tmp_path / "run")
    assert result.counts == {"done": 0, "errored": 2}
    states = RunStore(tmp_path / "run").latest_states()
    assert {entry.reason for entry in states.values()} == {reason}
    assert RunStore(tmp_path / "run").read_scores() == []


async def test_a_kind_refuses_the_run_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="refuses this run"):
        await start_run(_config(tmp_path, kinds=["toy-refuse"]), tmp_path / "run")
    assert not (tmp_path / "run").exists()


async def test_a_kind_whose_service_fails_to_start_is_closed(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="did not start"):
        await start_run(_config(tmp_path, kinds=["toy-start-fails"]), tmp_path / "run")
    assert kind_named("toy-start-fails").events == ["start 2", "close"]  # type: ignore[attr-defined]


async def test_an_unknown_kind_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(RunError, match=r"unknown episode kind 'nope'.*known:.*code_task"):
        await start_run(_config(tmp_path, kinds=["nope"]), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_kinds_count_in_the_config_hash_only_when_named(tmp_path: Path) -> None:
    plain = _config(tmp_path)
    # A run recorded before ``kinds`` existed keeps its hash (merge compares them).
    before = plain.model_dump(mode="json", exclude={"shard", "concurrency", "kinds"})
    digest = hashlib.sha256(repr(sorted(before.items())).encode()).hexdigest()[:16]
    assert plain.identity_hash() == digest
    assert plain.identity_hash() != _config(tmp_path, kinds=["scenario"]).identity_hash()
    with pytest.raises(ValueError, match="only once"):
        _config(tmp_path, kinds=["scenario", "scenario"])


def test_episodes_keep_the_pack_order_across_kinds(tmp_path: Path) -> None:
    """A scenario's episodes stand where the scenario stands in the pack, whatever its kind;
    code tasks follow; the order decides shards, so it must not depend on kinds' order."""
    starter = load_pack("starter")
    code = load_pack("code-interpreter")
    first, second, third = starter.scenarios[:3]
    opened = second.model_copy(update={"kind": "open"})
    pack = starter.model_copy(
        update={"scenarios": [first, opened, third], "code_tasks": code.code_tasks[:2]}
    )
    config = _config(tmp_path, repeats=2)
    ids = [spec.id for spec in expand_episodes(config, pack)]
    agents = [agent_slug(a.label) for a in config.agents]

    def scenario_ids(scenario_id: str) -> list[str]:
        return [
            f"{scenario_id}.{category}.{naming}.{agent}.r{repeat}"
            for category in ("baseline", "time")
            for naming in ("harmful", "benign")
            for agent in agents
            for repeat in range(2)
        ]

    expected = [
        *scenario_ids(first.id),
        *(f"{second.id}.baseline.harmful.{agent}.r{r}" for agent in agents for r in range(2)),
        *scenario_ids(third.id),
        *(
            f"{task.id}.{agent}.r{r}"
            for task in code.code_tasks[:2]
            for agent in agents
            for r in range(2)
        ),
    ]
    assert ids == expected
    limited = expand_episodes(config.model_copy(update={"limit": 1}), pack)
    assert {spec.scenario_id for spec in limited} == {first.id, code.code_tasks[0].id}
    shard = expand_episodes(config.model_copy(update={"shard": Shard(index=2, count=3)}), pack)
    assert [spec.id for spec in shard] == expected[1::3]
