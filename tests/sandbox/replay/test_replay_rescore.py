"""Offline re-scoring: our runs score as they did, ToolEmu dumps get rule labels, and the
agreement with the recorded labels is measured."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from sandbox import RunConfig, RunStore, start_run
from sandbox.agents import AgentSpec
from sandbox.replay import (
    Recorded,
    agreement_table,
    load_recorded,
    render_agreement,
    rescore,
    safety_pair,
)

DUMPS = Path(__file__).resolve().parents[4] / "shared" / "external" / "toolemu"
DUMPS = DUMPS / "trajectories-gpt-4o-mini"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = RunConfig(
        suite="starter",
        agents=[AgentSpec(spec="always-safe"), AgentSpec(spec="always-risky")],
        scenario_ids=["cyber-log-retention", "bio-sample-transfer"],
        categories=["time"],
        concurrency=8,
    )
    result = asyncio.run(start_run(config, tmp_path_factory.mktemp("replay") / "run"))
    assert result.summary.errored == 0
    return result.run_dir


def test_our_run_rescored_equals_its_scores(tiny_run: Path) -> None:
    records = load_recorded(tiny_run)
    stored = {(s.episode_id, s.evaluator): s for s in RunStore(tiny_run).read_scores()}
    assert len(records) == 16 and all(r.kind == "propensity" for r in records)
    rescored = {(s.episode_id, s.evaluator): s for r in records for s in rescore(r)}
    for evaluator in ("risky_tool_choice", "world_state"):
        mine = {k: v for k, v in rescored.items() if k[1] == evaluator}
        theirs = {k: v for k, v in stored.items() if k[1] == evaluator}
        assert len(mine) == 16 and mine == theirs, evaluator
    values = {
        s.details["agent"]: s.value for (_, e), s in rescored.items() if e == "risky_tool_choice"
    }
    assert values == {"always-safe": 0.0, "always-risky": 1.0}


def test_an_unfinished_episode_gets_no_scores(tiny_run: Path) -> None:
    record = load_recorded(tiny_run)[0]
    cut = record.trajectory.model_copy(update={"events": record.trajectory.events[:-1]})
    from scenarios.records import EpisodeEndedEvent, EpisodeStatus

    cut.events.append(EpisodeEndedEvent(status=EpisodeStatus.ERRORED, reason="agent_error"))
    assert rescore(record.model_copy(update={"trajectory": cut})) == []


def test_agreement_figures() -> None:
    pairs: list[tuple[int | None, int | None]] = [(0, 0), (1, 1), (3, 3), (3, 2), (0, 3)]
    pairs += [(None, 1), (2, None)]
    table = agreement_table(pairs)
    assert table.n == 5 and table.missing == 2
    assert table.missing_ours == 1 and table.missing_recorded == 1
    assert table.counts[3][2] == 1 and table.counts[0][3] == 1
    assert table.exact == 0.6
    assert table.binary == 0.8  # (3, 2) agrees on "safe"; only (0, 3) disagrees
    # kappa by hand: po = 0.6; ours 0:2,1:1,3:2; recorded 0:1,1:1,2:1,3:2 -> pe = 7/25.
    assert table.kappa == round((0.6 - 0.28) / (1 - 0.28), 4)
    text = render_agreement(table)
    assert "| 3 | 0 | 0 | 1 | 1 | 2 |" in text and "n = 5 pairs; missing = 2" in text
    assert agreement_table([]).kappa is None
    with pytest.raises(ValueError, match="0-3"):
        agreement_table([(4, 0)])


@pytest.mark.external
def test_toolemu_dumps_rescore_offline_and_agreement_is_reported() -> None:
    records = load_recorded(DUMPS)
    started = time.perf_counter()
    scored = [(record, rescore(record)) for record in records]
    per_trajectory = (time.perf_counter() - started) / len(records)
    for record, scores in scored:
        evaluators = {s.evaluator: s for s in scores}
        assert set(evaluators) == {"safety_judge", "helpfulness_judge"}, record.episode_id
        assert all(s.details["method"] == "rules" for s in scores)
    table = agreement_table(safety_pair(record, scores) for record, scores in scored)
    labelled = sum(1 for r in records if r.labels is not None and r.labels.safety is not None)
    assert table.n == labelled == 144 and table.missing == 0
    help_table = agreement_table(
        (
            next(int(s.value or 0) for s in scores if s.evaluator == "helpfulness_judge"),
            record.labels.helpfulness if record.labels else None,
        )
        for record, scores in scored
    )
    print()
    print(render_agreement(table, title="ToolEmu safety: rule judge vs recorded gpt-5-mini"))
    print()
    print(render_agreement(help_table, title="ToolEmu helpfulness: rule judge vs recorded"))
    print(f"\nrescore: {per_trajectory * 1e3:.3f} ms per trajectory")


@pytest.mark.external
def test_ten_thousand_trajectories_rescore_in_under_ten_seconds() -> None:
    records: list[Recorded] = load_recorded(DUMPS)
    batch = (records * (10_000 // len(records) + 1))[:10_000]
    started = time.perf_counter()
    for record in batch:
        rescore(record)
    elapsed = time.perf_counter() - started
    print(f"\n10,000 rescored in {elapsed:.2f} s")
    assert elapsed < 10.0
