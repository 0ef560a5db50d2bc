"""The runtime runs kinds of episode it does not know: the EpisodeKind interface, its registry,
the expansion order, and what the orchestrator does when a kind fails."""

from __future__ import annotations

import asyncio
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
        if self.mode == "cancel-self":
            raise asyncio.CancelledError()
        if self.mode == "hang-ignoring-cancel":
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                return self.end(EpisodeStatus.DONE, "answered")  # behaviour it did not show
        reply = await self.agent_turn()
        if isinstance(reply, EpisodeOutcome):
            return reply
        if self.mode == "no-end":
            return EpisodeOutcome(EpisodeStatus.DONE, "answered")
        if self.mode == "returns-none":
            return None  # type: ignore[return-value]
        if self.mode == "ends-pending":
            return self.end(EpisodeStatus.PENDING, "answered")
        return self.end(EpisodeStatus.DONE, "answered")


class _ToyKind(EpisodeKind):
    """One episode per agent; ``mode`` decides how it fails."""

    name = "toy-ok"
    mode = "ok"
    events: ClassVar[list[str]] = []

    @classmethod
    def episodes(cls, config: RunConfig, pack: Pack) -> list[EpisodeSpec]:
        if cls.mode == "episodes-crash":
            raise KeyError("no such item")
        prefix = "../escape" if cls.mode == "bad-id" else cls.name
        return [
            EpisodeSpec(
                kind=cls.name,
                id=(eid := f"{prefix}.{agent_slug(agent.label)}"),
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
        self.events.append(f"options {sorted(self.options.items())}")
        if self.mode == "refuse":
            raise RunError("the toy kind refuses this run")
        if self.mode == "check-crash":
            raise AttributeError("no attribute 'x'")

    async def start(self, todo: Sequence[EpisodeSpec]) -> None:
        self.events.append(f"start {len(todo)}")
        if self.mode == "start-fails":
            raise RunError("the toy service did not start")
        if self.mode == "start-crash":
            raise RuntimeError("service exploded")

    async def close(self) -> None:
        self.events.append("close")
        if self.mode == "close-crash":
            raise RuntimeError("close exploded")

    @asynccontextmanager
    async def runner(self, spec: EpisodeSpec, writer: TrajectoryWriter) -> AsyncIterator[TurnLoop]:
        agent = self.run.agents[spec.agent]
        if self.mode == "yields-other":
            yield object()  # type: ignore[misc]
            return
        yield _Runner(spec, self.run.config, writer, agent, self.mode)

    async def score(self, spec: EpisodeSpec, trajectory: Trajectory) -> list[Score]:
        if self.mode == "score-crash":
            raise ValueError("the toy scorer broke")
        if self.mode == "score-other":
            other = "bio-containment-level.baseline.harmful.always-safe.r0"
            return [Score(episode_id=other, evaluator="risky_tool_choice", value=1.0)]
        if self.mode == "score-twice":
            return [Score(episode_id=spec.id, evaluator="toy", value=v) for v in (0.0, 1.0)]
        if self.mode == "score-risky":  # a plugin kind reusing a built-in evaluator
            details = {"agent": spec.agent, "category": "baseline", "naming": "harmful"}
            return [
                Score(
                    episode_id=spec.id,
                    evaluator="risky_tool_choice",
                    value=1.0,
                    label="misaligned",
                    details={**details, "scenario_id": "toy", "domain": "toy", "repeat": 0},
                )
            ]
        if self.mode == "score-protocol":
            return [Score(episode_id=spec.id, evaluator="tool_call_protocol", value=1.0)]
        return [Score(episode_id=spec.id, evaluator="toy", value=0.5, label="half")]


def _toy(mode: str) -> type[EpisodeKind]:
    kind = type(f"Toy_{mode}", (_ToyKind,), {"name": f"toy-{mode}", "mode": mode, "events": []})
    return register_kind(kind)


MODES = (
    "ok", "crash", "score-crash", "refuse", "start-fails", "cancel-self", "hang-ignoring-cancel",
    "no-end", "returns-none", "ends-pending", "episodes-crash", "bad-id", "check-crash",
    "start-crash", "close-crash", "yields-other", "score-other", "score-twice", "score-protocol",
    "score-risky",
)  # fmt: skip
for _mode in MODES:
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
    events = kind_named("toy-ok").events  # type: ignore[attr-defined]
    assert [e for e in events if not e.startswith("options")][-2:] == ["start 2", "close"]


@pytest.mark.parametrize(
    ("mode", "reason", "message"),
    [
        ("crash", "harness_error", "RuntimeError: the kind's runner broke"),
        ("cancel-self", "harness_error", "raised CancelledError"),
        ("hang-ignoring-cancel", "episode_timeout", "time limit"),
        ("no-end", "harness_error", "without ending the episode"),
        ("returns-none", "harness_error", "returned NoneType"),
        ("ends-pending", "harness_error", "'pending'"),
        ("yields-other", "harness_error", "not a TurnLoop"),
        ("score-crash", "scoring_error", "the toy scorer broke"),
        ("score-other", "scoring_error", "a score for episode"),
        ("score-twice", "scoring_error", "more than one score per evaluator: toy"),
        ("score-protocol", "scoring_error", "tool_call_protocol"),
    ],
)
async def test_a_failing_kind_is_an_infrastructure_error_not_behaviour(
    tmp_path: Path, mode: str, reason: str, message: str
) -> None:
    config = _config(tmp_path, kinds=["scenario", f"toy-{mode}"], limit=1, episode_timeout_s=2)
    result = await start_run(config, tmp_path / "run")
    store = RunStore(tmp_path / "run")
    states = store.latest_states()
    toy = {eid: entry for eid, entry in states.items() if eid.startswith("toy-")}
    assert len(toy) == 2 and {e.reason for e in toy.values()} == {reason}
    assert all(message in (e.error or "") for e in toy.values()), toy
    assert not [s for s in store.read_scores() if s.episode_id in toy]
    # The built-in episodes of the same run are untouched, and their scores are their own.
    assert result.counts["done"] == len(states) - 2
    assert {s.episode_id for s in store.read_scores()} == set(states) - set(toy)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["by_agent"]["always-safe"]["baseline"]["value"] == 0.0
    for eid in toy if reason != "scoring_error" else ():
        # The trajectory ends errored, so a resume does not see it as cut.
        trajectory = store.read_trajectory(eid)
        assert trajectory.ended is not None and trajectory.ended.status is EpisodeStatus.ERRORED
        if reason == "harness_error" and mode not in ("no-end", "returns-none", "ends-pending"):
            assert "Traceback" in trajectory.events[-2].message  # type: ignore[union-attr]


async def test_kind_options_reach_the_kind_and_a_stray_one_is_refused(tmp_path: Path) -> None:
    options = {"toy-ok": {"steps": 3, "style": "polite"}}
    kind_named("toy-ok").events.clear()  # type: ignore[attr-defined]
    await start_run(_config(tmp_path, kinds=["toy-ok"], kind_options=options), tmp_path / "a")
    assert kind_named("toy-ok").events[0] == "options [('steps', 3), ('style', 'polite')]"  # type: ignore[attr-defined]
    stray = {"toy-crash": {"steps": 3}}
    with pytest.raises(RunError, match="--kind-option for toy-crash, not a kind of this run"):
        await start_run(_config(tmp_path, kinds=["toy-ok"], kind_options=stray), tmp_path / "b")
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("episodes-crash", "kind 'toy-episodes-crash' could not list its episodes: KeyError"),
        ("bad-id", "listed episode id '../escape"),
        ("check-crash", "kind 'toy-check-crash' failed its check: AttributeError"),
    ],
)
async def test_a_kind_bug_refuses_the_run_before_anything_is_written(
    tmp_path: Path, mode: str, message: str
) -> None:
    with pytest.raises(RunError, match=re.escape(message)):
        await start_run(_config(tmp_path, kinds=[f"toy-{mode}"]), tmp_path / "run")
    assert not (tmp_path / "run").exists()


async def test_a_service_that_crashes_at_start_is_named_and_closed(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="kind 'toy-start-crash' could not start: RuntimeError"):
        await start_run(_config(tmp_path, kinds=["toy-start-crash"]), tmp_path / "run")
    assert kind_named("toy-start-crash").events[-1] == "close"  # type: ignore[attr-defined]


async def test_a_close_that_fails_is_said_and_the_run_still_finishes(tmp_path: Path) -> None:
    said: list[str] = []
    config = _config(tmp_path, kinds=["toy-close-crash", "toy-ok"])
    result = await start_run(config, tmp_path / "run", log=said.append)
    assert result.counts == {"done": 4, "errored": 0}
    assert (tmp_path / "run" / "summary.json").exists()
    assert any("'toy-close-crash' failed to close: RuntimeError: close exploded" in s for s in said)


async def test_a_kind_refuses_the_run_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="refuses this run"):
        await start_run(_config(tmp_path, kinds=["toy-refuse"]), tmp_path / "run")
    assert not (tmp_path / "run").exists()


async def test_a_kind_whose_service_fails_to_start_is_closed(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="did not start"):
        await start_run(_config(tmp_path, kinds=["toy-start-fails"]), tmp_path / "run")
    events = kind_named("toy-start-fails").events  # type: ignore[attr-defined]
    assert [e for e in events if not e.startswith("options")] == ["start 2", "close"]


async def test_an_unknown_kind_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(RunError, match=r"unknown episode kind 'nope'.*known:.*code_task"):
        await start_run(_config(tmp_path, kinds=["nope"]), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_kinds_count_in_the_config_hash_only_when_named(tmp_path: Path) -> None:
    plain = _config(tmp_path)
    # A run recorded before ``kinds`` (and the later reporting and attack options) existed
    # keeps its hash (merge compares them).
    later = {
        "kinds",
        "kind_options",
        "rule_judge",
        "defence",
        "inject",
        "executor",
        "ray_address",
        "ray_workers",
    }
    before = plain.model_dump(mode="json", exclude={"shard", "concurrency", *later})
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


async def test_a_plugin_kind_never_mixes_into_the_built_in_sections(tmp_path: Path) -> None:
    """Its risky-tool-choice scores stay out of the propensity (summary, HTML, compare) and are
    shown under other_scores with the kind's name; protocol health counts every kind."""
    plain = await start_run(_config(tmp_path, limit=1), tmp_path / "plain")
    mixed = await start_run(
        _config(tmp_path, limit=1, kinds=["scenario", "toy-score-risky"]), tmp_path / "mixed"
    )
    assert mixed.counts["errored"] == 0
    summary = json.loads((tmp_path / "mixed" / "summary.json").read_text())
    assert summary["by_agent"] == plain.summary.model_dump(mode="json")["by_agent"]
    other = summary["other_scores"]["risky_tool_choice (kind toy-score-risky)"]
    assert other["always-safe"] == {"n": 1, "valued": 1, "mean": 1.0, "labels": {"misaligned": 1}}
    protocol_episodes = summary["protocol"]["always-safe"]["episodes"]
    assert protocol_episodes == plain.summary.protocol["always-safe"].episodes + 1
    from sandbox.results.compare import compare_runs
    from sandbox.results.html_report.data import collect

    comparison = compare_runs(tmp_path / "plain", tmp_path / "mixed")
    assert (comparison.unpaired.a, comparison.unpaired.b) == (0, 0)
    assert comparison.propensity_a == comparison.propensity_b
    mixed_page = collect(RunStore(tmp_path / "mixed"))
    plain_page = collect(RunStore(tmp_path / "plain"))
    assert mixed_page.headline.keys() == plain_page.headline.keys()
    for agent, rates in plain_page.headline.items():
        assert {k: r.estimate for k, r in rates.items()} == {
            k: r.estimate for k, r in mixed_page.headline[agent].items()
        }


async def test_rescore_leaves_a_plugin_kind_s_episodes_to_their_kind(tmp_path: Path) -> None:
    await start_run(_config(tmp_path, kinds=["toy-ok"]), tmp_path / "run")
    from sandbox.replay.rescore import rescore
    from sandbox.replay.sources.registry import read_source

    loaded = read_source(tmp_path / "run")
    assert any("of kind 'toy-ok' are not rescored" in p for p in loaded.problems)
    scores = [s for record in loaded.records for s in rescore(record)]
    assert {s.evaluator for s in scores} == {"tool_call_protocol"}
