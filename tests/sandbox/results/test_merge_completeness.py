"""A merged run holds every episode its configuration expands to, or says which it lacks.

Merging one shard of a run with another agent's run used to look complete (its total was the
sum of the sources' totals), and its resume then ran the missing shard and reported a negative
number of incomplete episodes. Packs that differ between the runs used to merge with a warning.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from sandbox import RunConfig, RunStore, merge_runs, resume_run, start_run
from sandbox.agents import AgentSpec
from sandbox.cli import main
from sandbox.results.merge import MergeError, episode_origins, merge_sources, missing_at_merge
from sandbox.results.summary import build_summary
from sandbox.runtime.config import Shard
from scenarios.records import EpisodeStatus

ROOT = Path(__file__).resolve().parents[3]
# The adversary's repro: 4 scenarios, one pressure category and naming, no baseline.
SUITE: dict[str, Any] = {
    "suite": "starter",
    "limit": 4,
    "categories": ["time"],
    "schedule": {"levels": [1, 2, 3, 4]},
    "namings": ["harmful"],
    "include_baseline": False,
}


def _config(*agents: str, shard: Shard | None = None, **extra: Any) -> RunConfig:
    return RunConfig.model_validate(
        {**SUITE, **extra, "agents": [AgentSpec(spec=a) for a in agents], "shard": shard}
    )


def _scores(run_dir: Path) -> dict[str, object]:
    return {
        s.episode_id: s.value
        for s in RunStore(run_dir).read_scores()
        if s.evaluator == "risky_tool_choice"
    }


def _summary_json(run_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run_dir / "summary.json").read_text())
    return data


async def test_a_merge_that_lacks_a_shard_is_partial_and_resume_completes_it(
    tmp_path: Path,
) -> None:
    shard1 = await start_run(
        _config("risky-at-level:2", shard=Shard(index=1, count=2)), tmp_path / "t1"
    )
    other = await start_run(_config("always-risky"), tmp_path / "tx")
    full = await start_run(_config("risky-at-level:2", "always-risky"), tmp_path / "full")
    assert (shard1.summary.episodes, other.summary.episodes, full.summary.episodes) == (2, 4, 8)

    notes: list[str] = []
    merged = merge_runs([shard1.run_dir, other.run_dir], tmp_path / "tm", log=notes.append)
    # The merged configuration expands to 8 episodes; 2 of them are in neither run.
    assert (merged.episodes, merged.scored, merged.errored, merged.incomplete) == (8, 6, 0, 2)
    assert _summary_json(tmp_path / "tm")["incomplete"] == 2
    said = "\n".join(notes)
    assert "the merged run is partial: 2 of its 8 episodes" in said
    assert "agent risky-at-level:2: shard 2/2 missing (2 episodes)" in said
    assert f"propensity run --resume {tmp_path / 'tm'}" in said
    store = RunStore(tmp_path / "tm")
    manifest = store.read_manifest()
    assert manifest.episodes_total == 8 and manifest.finished_at is None
    (part,) = missing_at_merge(manifest)
    assert (part.agent, part.shard, len(part.episodes)) == ("risky-at-level:2", "2/2", 2)
    states = store.latest_states()
    assert {e for e, s in states.items() if s.status is EpisodeStatus.PENDING} == set(part.episodes)

    # Resume runs exactly the missing shard and ends complete, with the right total.
    resumed = await resume_run(tmp_path / "tm")
    assert resumed.ran == 2 and resumed.skipped == 6
    summary = resumed.summary
    assert (summary.episodes, summary.scored, summary.errored, summary.incomplete) == (8, 8, 0, 0)
    assert _summary_json(tmp_path / "tm")["incomplete"] == 0
    assert _scores(tmp_path / "tm") == _scores(full.run_dir)
    assert summary.by_agent == full.summary.by_agent


async def test_one_shard_alone_is_partial_too(tmp_path: Path) -> None:
    shard1 = await start_run(
        _config("risky-at-level:2", shard=Shard(index=1, count=2)), tmp_path / "t1"
    )
    merged = merge_runs([shard1.run_dir], tmp_path / "x")
    assert (merged.episodes, merged.scored, merged.incomplete) == (4, 2, 2)
    resumed = await resume_run(tmp_path / "x")
    assert resumed.ran == 2
    assert (resumed.summary.episodes, resumed.summary.incomplete) == (4, 0)


async def test_a_partial_merged_run_merges_with_the_shard_it_lacks(tmp_path: Path) -> None:
    parts = [
        (
            await start_run(
                _config("risky-at-level:2", shard=Shard(index=i, count=2)), tmp_path / f"t{i}"
            )
        ).run_dir
        for i in (1, 2)
    ]
    other = (await start_run(_config("always-risky"), tmp_path / "tx")).run_dir
    full = await start_run(_config("risky-at-level:2", "always-risky"), tmp_path / "full")
    merge_runs([parts[0], other], tmp_path / "tm")

    # The repair: the partial merged run and the missing shard make the full run.
    notes: list[str] = []
    repaired = merge_runs([tmp_path / "tm", parts[1]], tmp_path / "repaired", log=notes.append)
    assert (repaired.episodes, repaired.scored, repaired.incomplete) == (8, 8, 0)
    assert not any("partial" in note for note in notes)
    assert _scores(tmp_path / "repaired") == _scores(full.run_dir)
    assert repaired.by_agent == full.summary.by_agent
    manifest = RunStore(tmp_path / "repaired").read_manifest()
    assert manifest.finished_at is not None and missing_at_merge(manifest) == []
    sources = merge_sources(manifest)
    assert [s.run_id for s in sources] == ["tm", "t2"]
    # Where each episode came from stays on record through both merges.
    assert [s.run_id for s in sources[0].sources] == ["t1", "tx"]
    origins = episode_origins(manifest)
    assert len(origins) == 8
    assert sum(path == str(parts[1].resolve()) for path in origins.values()) == 2
    assert (await resume_run(tmp_path / "repaired")).ran == 0

    # The same shard twice is still refused, also through a merged run.
    with pytest.raises(MergeError, match="never be counted twice"):
        merge_runs([tmp_path / "repaired", parts[1]], tmp_path / "twice")
    await resume_run(tmp_path / "tm")
    with pytest.raises(MergeError, match="never be counted twice"):
        merge_runs([tmp_path / "tm", parts[1]], tmp_path / "again")


def test_the_cli_says_which_episodes_a_merge_lacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = [
        "run", "--suite", "starter", "--limit", "4", "--pressure", "time", "--levels", "1-4",
        "--naming", "harmful", "--no-baseline", "--quiet",
    ]  # fmt: skip
    t1, tx, merged = (str(tmp_path / name) for name in ("t1", "tx", "m"))
    assert main([*common, "--agent", "risky-at-level:2", "--shard", "1/2", "--out", t1]) == 0
    assert main([*common, "--agent", "always-risky", "--out", tx]) == 0
    capsys.readouterr()
    assert main(["merge", t1, tx, "--out", merged]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "agent risky-at-level:2: shard 2/2 missing (2 episodes)" in err
    assert "2 of the 8 episodes of the merged run are not finished" in err
    assert main(["run", "--resume", merged, "--quiet"]) == 0
    data = _summary_json(tmp_path / "m")
    assert (data["episodes"], data["scored"], data["incomplete"]) == (8, 8, 0)


async def test_resume_never_counts_a_negative_number_of_episodes(tmp_path: Path) -> None:
    """A merged run written before merges counted their gaps (its total the sum of its
    sources', no pending entry for the missing shard): its resume runs the missing shard and
    counts every episode once."""
    shard1 = await start_run(
        _config("risky-at-level:2", shard=Shard(index=1, count=2)), tmp_path / "t1"
    )
    other = await start_run(_config("always-risky"), tmp_path / "tx")
    merge_runs([shard1.run_dir, other.run_dir], tmp_path / "old")
    store = RunStore(tmp_path / "old")
    manifest = store.read_manifest()
    manifest.episodes_total = 6
    store.write_manifest(manifest)
    journal = store.journal_path
    journal.write_text(
        "".join(line for line in journal.read_text().splitlines(True) if "pending" not in line)
    )
    assert build_summary(store).incomplete == 0  # what an old merge showed
    resumed = await resume_run(tmp_path / "old")
    assert resumed.ran == 2
    summary = resumed.summary
    assert (summary.episodes, summary.scored, summary.incomplete) == (8, 8, 0)
    assert RunStore(tmp_path / "old").read_manifest().episodes_total == 8

    # Whatever the manifest says, the counts add up and none is negative.
    manifest = store.read_manifest()
    manifest.episodes_total = 3
    store.write_manifest(manifest)
    summary = build_summary(store)
    assert summary.incomplete == 0 and summary.episodes == 8
    assert summary.episodes == summary.scored + summary.errored + summary.incomplete


# -- the pack must be the same ---------------------------------------------------------------


def _pack(where: Path, *names: str, extra: str = "") -> Path:
    """A pack of starter scenarios (file names decide their order)."""
    where.mkdir()
    (where / "pack.yaml").write_text("name: packm\n")
    starter = ROOT / "scenarios" / "packs" / "starter"
    for name in names:
        shutil.copy(starter / f"{name}.yaml", where / f"{name}.yaml")
    if extra:
        (where / "README.md").write_text(extra)
    return where


def _pack_config(pack: Path, agent: str) -> RunConfig:
    return RunConfig.model_validate(
        {
            "suite": str(pack),
            "agents": [AgentSpec(spec=agent)],
            "categories": ["time"],
            "schedule": {"levels": [1, 2]},
            "namings": ["harmful"],
            "include_baseline": False,
            "limit": 1,
        }
    )


async def test_runs_of_packs_with_other_scenarios_are_refused(tmp_path: Path) -> None:
    """--limit 1 over a pack that gained a scenario: the agents would be scored on different
    scenarios. Refused, naming what differs."""
    one = _pack(tmp_path / "one", "cyber-log-retention")
    two = _pack(tmp_path / "two", "cyber-log-retention", "bio-containment-level")
    a = await start_run(_pack_config(one, "always-safe"), tmp_path / "a")
    b = await start_run(_pack_config(two, "always-risky"), tmp_path / "b")
    with pytest.raises(MergeError) as refused:
        merge_runs([a.run_dir, b.run_dir], tmp_path / "m")
    message = str(refused.value)
    assert "the runs read different packs" in message
    assert f"scenarios only in {b.run_dir}: bio-containment-level" in message
    assert not (tmp_path / "m").exists()

    # The pack changed in place between the runs: the packs as recorded are not both on disk
    # any more; the scenarios of each run's episodes are named.
    same = _pack(tmp_path / "same", "cyber-log-retention")
    c = await start_run(_pack_config(same, "always-safe"), tmp_path / "c")
    shutil.copy(two / "bio-containment-level.yaml", same / "bio-containment-level.yaml")
    d = await start_run(_pack_config(same, "always-risky"), tmp_path / "d")
    with pytest.raises(MergeError) as refused:
        merge_runs([c.run_dir, d.run_dir], tmp_path / "m")
    message = " ".join(str(refused.value).split())
    assert f"of the scenarios cyber-log-retention in {c.run_dir}" in message
    assert f"bio-containment-level in {d.run_dir}" in message
    # On the command line: an error, not a warning.
    assert main(["merge", str(c.run_dir), str(d.run_dir), "--out", str(tmp_path / "m")]) == 1


async def test_one_pack_at_two_paths_merges(tmp_path: Path) -> None:
    here = _pack(tmp_path / "here", "cyber-log-retention", "bio-containment-level")
    there = tmp_path / "there"
    shutil.copytree(here, there)
    a = await start_run(_pack_config(here, "always-safe"), tmp_path / "a")
    b = await start_run(_pack_config(there, "always-risky"), tmp_path / "b")
    merged = merge_runs([a.run_dir, b.run_dir], tmp_path / "m")
    assert (merged.episodes, merged.scored) == (2, 2)
    # Files that are no scenario differ: a note, not a refusal.
    notes: list[str] = []
    other = _pack(tmp_path / "other", "bio-containment-level", "cyber-log-retention", extra="x")
    c = await start_run(_pack_config(other, "risky-at-level:1"), tmp_path / "c")
    merged = merge_runs([a.run_dir, c.run_dir], tmp_path / "m2", log=notes.append)
    assert merged.episodes == 2
    assert any("files differ" in note and "not its scenarios" in note for note in notes)


async def test_an_episode_the_pack_no_longer_has_is_refused(tmp_path: Path) -> None:
    pack = _pack(tmp_path / "p", "cyber-log-retention", "bio-containment-level")
    config = _pack_config(pack, "always-safe").model_copy(update={"limit": None})
    a = await start_run(config, tmp_path / "a")
    b = await start_run(
        config.model_copy(update={"agents": [AgentSpec(spec="always-risky")]}), tmp_path / "b"
    )
    (pack / "bio-containment-level.yaml").unlink()
    notes: list[str] = []
    with pytest.raises(MergeError, match=r"not episodes of the merged run") as refused:
        merge_runs([a.run_dir, b.run_dir], tmp_path / "m", log=notes.append)
    assert "bio-containment-level.time.harmful.always-safe.r0" in str(refused.value)
    assert any("has changed since the runs read it" in note for note in notes)
