"""Interrupted runs, shards and secrets: nothing lost, nothing repeated, nothing leaked."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from e2e_support import pressure_then_risky_script

from sandbox import RunConfig, RunStore, merge_runs, resume_run, start_run
from sandbox.agents import AgentSpec
from sandbox.cli import main
from sandbox.results.merge import MergeError, episode_origins, merge_sources
from sandbox.runtime.config import Shard
from sandbox.testing import Faults, Script, ScriptedOpenAIServer
from scenarios import load_pack
from scenarios.records import EpisodeStatus, Score

ROOT = Path(__file__).resolve().parents[3]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "sandbox.cli", *args]


def _score_view(store: RunStore) -> dict[str, tuple[object, ...]]:
    scores = [s for s in store.read_scores() if s.evaluator == "risky_tool_choice"]
    keys = [(s.episode_id, s.evaluator) for s in scores]
    assert len(keys) == len(set(keys)), "a score was written twice"
    return {
        s.episode_id: (s.value, s.details["level"], s.details["turn"], s.details["max_level"])
        for s in scores
    }


def _event_types(store: RunStore, episode_id: str) -> list[str]:
    return [e.type for e in store.read_trajectory(episode_id).events]


def _done_count(journal: Path) -> int:
    if not journal.exists():
        return 0
    return journal.read_text().count('"status":"done"')


@pytest.mark.slow
async def test_sigkill_halfway_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    script = Script.from_dict(pressure_then_risky_script(load_pack("starter")))
    async with ScriptedOpenAIServer(script, faults=Faults(delay_s=0.1)) as server:
        common = [
            "run", "--suite", "starter", "--agent", "openai/scripted", "--api-base", server.url,
            "--limit", "4", "--pressure", "time,financials", "--concurrency", "4", "--quiet",
        ]  # fmt: skip
        reference = tmp_path / "reference"
        proc = await asyncio.create_subprocess_exec(
            *_cli(*common, "--out", str(reference)), cwd=ROOT
        )
        assert await proc.wait() == 0

        interrupted = tmp_path / "interrupted"
        proc = await asyncio.create_subprocess_exec(
            *_cli(*common, "--out", str(interrupted)), cwd=ROOT
        )
        total = RunStore(reference).read_manifest().episodes_total
        async with asyncio.timeout(120):
            while _done_count(interrupted / "journal.jsonl") < total // 2:  # noqa: ASYNC110 (a file, not an event)
                await asyncio.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        states = RunStore(interrupted).latest_states()
        done_before = {e for e, s in states.items() if s.status is EpisodeStatus.DONE}
        unfinished = {e for e, s in states.items() if s.status is not EpisodeStatus.DONE}
        assert done_before and unfinished, "the kill must land halfway through the run"

        proc = await asyncio.create_subprocess_exec(
            *_cli("run", "--resume", str(interrupted), "--quiet"), cwd=ROOT
        )
        assert await proc.wait() == 0

    a, b = RunStore(reference), RunStore(interrupted)
    states_a, states_b = a.latest_states(), b.latest_states()
    assert set(states_a) == set(states_b) and len(states_a) == total
    assert all(s.status is EpisodeStatus.DONE for s in states_b.values())
    assert _score_view(a) == _score_view(b)
    for episode_id in states_a:
        assert _event_types(a, episode_id) == _event_types(b, episode_id)
    # Episodes finished before the kill were not run again.
    journal = b.read_journal()
    for episode_id in done_before:
        runs = [
            j for j in journal if j.episode_id == episode_id and j.status is EpisodeStatus.RUNNING
        ]
        assert len(runs) == 1
    summary_a = json.loads(a.summary_path.read_text())
    summary_b = json.loads(b.summary_path.read_text())
    assert summary_a["propensity"] == summary_b["propensity"]
    assert b.read_manifest().resumed_at


async def test_shards_merge_into_the_full_run(tmp_path: Path) -> None:
    base = {
        "suite": "starter",
        "agents": [AgentSpec(spec="risky-at-level:3"), AgentSpec(spec="always-safe")],
        "categories": ["time", "mixed"],
        "limit": 5,
    }
    full = await start_run(RunConfig.model_validate(base), tmp_path / "full")
    parts = []
    for index in (1, 2, 3):
        config = RunConfig.model_validate({**base, "shard": Shard(index=index, count=3)})
        parts.append((await start_run(config, tmp_path / f"shard{index}")).run_dir)
    sizes = [RunStore(p).read_manifest().episodes_total for p in parts]
    assert sum(sizes) == full.summary.episodes and min(sizes) > 0
    merged = merge_runs(parts, tmp_path / "merged")
    assert merged.episodes == full.summary.episodes and merged.scored == full.summary.scored
    assert merged.propensity == full.summary.propensity
    assert merged.by_agent == full.summary.by_agent
    assert _score_view(RunStore(tmp_path / "merged")) == _score_view(RunStore(full.run_dir))
    with pytest.raises(MergeError, match="given twice"):
        merge_runs([parts[0], parts[0]], tmp_path / "twice")
    other = await start_run(
        RunConfig.model_validate({**base, "limit": 1, "shard": Shard(index=1, count=3)}),
        tmp_path / "other",
    )
    with pytest.raises(Exception, match="different configuration"):
        merge_runs([parts[0], other.run_dir], tmp_path / "mismatch")


SLOW_AGENT = """
import time

def slow(request):
    time.sleep(0.2)
    return "I will wait for the approved route."
"""


@pytest.mark.parametrize(("stop", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_prints_the_resume_command_on_one_line(
    tmp_path: Path, stop: signal.Signals, status: int
) -> None:
    """The hint names the directory really used (here the default one, under runs/), unbroken
    on a narrow terminal; the exit status says which signal stopped the run (128 + number)."""
    (tmp_path / "slow_agent.py").write_text(SLOW_AGENT)
    command = _cli(
        "run", "--suite", "starter", "--agent", "python:slow_agent:slow", "--limit", "2",
        "--pressure", "time", "--concurrency", "1",
    )  # fmt: skip
    proc = subprocess.Popen(
        command,
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "40", "PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not any('"status":"running"' in _read(p) for p in tmp_path.glob("runs/*/journal.jsonl")):
        assert time.monotonic() < deadline and proc.poll() is None, "the run did not start"
        time.sleep(0.05)
    proc.send_signal(stop)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == status, stderr
    (run_dir,) = [p.relative_to(tmp_path) for p in tmp_path.glob("runs/*")]
    assert f"interrupted; finish it with: propensity run --resume {run_dir}\n" in stderr
    assert f"run directory: {run_dir}" in stderr


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


# -- merging runs that differ in their agents ------------------------------------------------

SUITE = {"suite": "starter", "categories": ["time"], "limit": 2}


def _agents(*specs: str) -> list[AgentSpec]:
    return [AgentSpec(spec=spec) for spec in specs]


async def test_merge_refusal_names_every_differing_setting(tmp_path: Path) -> None:
    a = await start_run(
        RunConfig.model_validate({**SUITE, "agents": _agents("always-safe")}), tmp_path / "a"
    )
    b = await start_run(
        RunConfig.model_validate(
            {
                **SUITE,
                "agents": [AgentSpec(spec="always-risky")],
                "max_turns": 7,
                "schedule": {"levels": [2, 4]},
                "namings": ["harmful"],
                # May differ: how the run was executed.
                "concurrency": 3,
                "call_timeout_s": 30,
            }
        ),
        tmp_path / "b",
    )
    with pytest.raises(MergeError) as refused:
        merge_runs([a.run_dir, b.run_dir], tmp_path / "merged")
    message = str(refused.value)
    assert "hash" not in message
    assert f"{b.run_dir} was run with a different configuration than {a.run_dir}" in message
    assert f"max_turns: 40 in {a.run_dir}, 7 in {b.run_dir}" in message
    assert f"schedule.levels: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] in {a.run_dir}, [2, 4] in" in message
    assert f'namings: ["harmful", "benign"] in {a.run_dir}, ["harmful"] in' in message
    # Neither the agents nor the execution settings are among the differences.
    listed = message.split("\nOnly these settings")[0]
    assert "agents" not in listed and "concurrency" not in listed and "call_timeout" not in listed
    assert not (tmp_path / "merged").exists()

    # The same agent with other settings is a difference too.
    c = await start_run(
        RunConfig.model_validate(
            {**SUITE, "agents": [AgentSpec(spec="always-safe", max_tokens=7)]}
        ),
        tmp_path / "c",
    )
    with pytest.raises(MergeError, match=r"agents\[always-safe\]\.max_tokens: 1024 in"):
        merge_runs([a.run_dir, c.run_dir], tmp_path / "merged")

    # On the command line: the same list, one clear error, no traceback.
    code = main(["merge", str(a.run_dir), str(b.run_dir), "--out", str(tmp_path / "cli")])
    assert code == 1


async def test_merge_adds_an_agent_to_a_run(tmp_path: Path) -> None:
    two = await start_run(
        RunConfig.model_validate({**SUITE, "agents": _agents("always-safe", "always-risky")}),
        tmp_path / "two",
    )
    one = await start_run(
        RunConfig.model_validate(
            {**SUITE, "agents": _agents("risky-at-level:5"), "concurrency": 1, "retry": {}}
        ),
        tmp_path / "one",
    )
    three = await start_run(
        RunConfig.model_validate(
            {**SUITE, "agents": _agents("always-safe", "always-risky", "risky-at-level:5")}
        ),
        tmp_path / "three",
    )
    merged = merge_runs([two.run_dir, one.run_dir], tmp_path / "merged")
    # One report over all three agents, every episode counted once: as if run together.
    assert merged.episodes == two.summary.episodes + one.summary.episodes
    assert merged.episodes == three.summary.episodes and merged.scored == merged.episodes
    assert set(merged.by_agent) == {"always-safe", "always-risky", "risky-at-level:5"}
    assert merged.by_agent == three.summary.by_agent
    assert merged.propensity == three.summary.propensity
    assert _score_view(RunStore(tmp_path / "merged")) == _score_view(RunStore(three.run_dir))
    assert json.loads((tmp_path / "merged" / "summary.json").read_text())["episodes"] == (
        merged.episodes
    )

    manifest = RunStore(tmp_path / "merged").read_manifest()
    assert [a.label for a in manifest.config.agents] == [
        "always-safe",
        "always-risky",
        "risky-at-level:5",
    ]
    assert manifest.config_hash == RunStore(three.run_dir).read_manifest().config_hash
    assert manifest.merged_from == [str(two.run_dir.resolve()), str(one.run_dir.resolve())]
    sources = merge_sources(manifest)
    assert [s.run_id for s in sources] == ["two", "one"]
    assert [a.label for a in sources[1].config.agents] == ["risky-at-level:5"]
    assert sources[1].config.concurrency == 1
    origins = episode_origins(manifest)
    assert len(origins) == merged.episodes
    for episode_id, source in origins.items():
        expected = one.run_dir if ".risky-at-level-5." in episode_id else two.run_dir
        assert source == str(expected.resolve())
    # The merged configuration expands to exactly the merged episodes: a resume runs none.
    assert (await resume_run(tmp_path / "merged")).ran == 0

    # The same episodes twice are refused, not counted twice.
    copy = tmp_path / "one-again"
    shutil.copytree(one.run_dir, copy)
    with pytest.raises(MergeError, match=r"(?s)never be counted twice.*8 episode\(s\) are in"):
        merge_runs([two.run_dir, one.run_dir, copy], tmp_path / "thrice")
    # So is an agent in two runs that are not shards of one (their episodes could overlap or
    # leave gaps).
    with pytest.raises(MergeError, match="must be shards of one run"):
        merge_runs([two.run_dir, three.run_dir], tmp_path / "overlap")
    assert not (tmp_path / "thrice").exists() and not (tmp_path / "overlap").exists()


async def test_merge_refuses_a_pack_changed_between_the_runs(tmp_path: Path) -> None:
    pack = tmp_path / "pack"
    shutil.copytree(ROOT / "scenarios" / "packs" / "starter", pack)
    config = {**SUITE, "suite": str(pack), "limit": 1}
    first = await start_run(
        RunConfig.model_validate({**config, "agents": _agents("always-safe")}), tmp_path / "a"
    )
    for scenario in pack.glob("*.yaml"):
        text = scenario.read_text()
        scenario.write_text(text.replace("\ntask: >-\n", "\ntask: >-\n  URGENT.\n", 1))
    second = await start_run(
        RunConfig.model_validate({**config, "agents": _agents("always-risky")}), tmp_path / "b"
    )
    with pytest.raises(MergeError, match=r"(?s)pack's content differs .*: task differs between"):
        merge_runs([first.run_dir, second.run_dir], tmp_path / "merged")


AGENT_MODULE = textwrap.dedent(
    """
    import os
    from sandbox.agents import AgentReply
    from scenarios.records import Message, ToolCall

    def leaky(request):
        secret = os.environ["PROPENSITY_TEST_API_KEY"]
        return f"my key is {secret} and another is sk-abcdefghijklmnopqrstuvwxyz123456"

    async def risky(request):
        name = next(n for n, r in request.episode.tool_risks.items() if r.value == "misaligned")
        return AgentReply(message=Message(role="assistant", tool_calls=[
            ToolCall(id="c1", name=name, arguments=request.episode.example_arguments[name])]))

    class Polite:
        async def act(self, request):
            return Message(role="assistant", content="I would rather ask first.")
    """
)


async def test_python_agents_and_secrets_never_reach_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-proj-THIS-IS-A-PLANTED-FAKE-KEY-0123456789"
    monkeypatch.setenv("PROPENSITY_TEST_API_KEY", secret)
    (tmp_path / "my_agents.py").write_text(AGENT_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    config = RunConfig(
        suite="starter",
        agents=[
            AgentSpec(spec="python:my_agents:leaky"),
            AgentSpec(spec="python:my_agents:risky"),
            AgentSpec(spec="python:my_agents:Polite"),
        ],
        categories=["time"],
        limit=2,
        max_turns=3,
    )
    result = await start_run(config, tmp_path / "run")
    assert result.summary.errored == 0
    assert result.summary.by_agent["python:my_agents:risky"].overall.value == 1.0
    assert result.summary.by_agent["python:my_agents:leaky"].overall.value == 0.0
    assert result.summary.by_agent["python:my_agents:Polite"].overall.value == 0.0
    everything = "".join(p.read_text() for p in result.run_dir.rglob("*") if p.is_file())
    assert secret not in everything
    assert "sk-abcdefghijklmnopqrstuvwxyz123456" not in everything
    assert "[REDACTED]" in everything


async def test_unusable_agents_and_run_dirs_fail_before_running(tmp_path: Path) -> None:
    from sandbox import RunError

    with pytest.raises(RunError, match="python agent spec"):
        await start_run(
            RunConfig(suite="starter", agents=[AgentSpec(spec="python:nocolon")]), tmp_path / "a"
        )
    with pytest.raises(RunError, match="not set"):
        await start_run(
            RunConfig(
                suite="starter",
                agents=[AgentSpec(spec="openai/gpt-4o-mini", api_key_env="NO_SUCH_VARIABLE_X")],
            ),
            tmp_path / "b",
        )
    ok = await start_run(
        RunConfig(suite="starter", agents=[AgentSpec(spec="always-safe")], limit=1), tmp_path / "c"
    )
    with pytest.raises(RunError, match="already holds a run"):
        await start_run(
            RunConfig(suite="starter", agents=[AgentSpec(spec="always-safe")]), ok.run_dir
        )
    assert isinstance(RunStore(ok.run_dir).read_scores()[0], Score)


async def test_a_merged_run_keeps_every_source_s_user_code(tmp_path: Path) -> None:
    # Each source imported its own plugin: resume and replay of the merged run need both.
    from sandbox.plugins import InputFile, UserModule

    runs = []
    for name, agent in (("a", "always-safe"), ("b", "always-risky")):
        result = await start_run(
            RunConfig.model_validate({**SUITE, "agents": _agents(agent)}), tmp_path / name
        )
        store = RunStore(result.run_dir)
        manifest = store.read_manifest()
        manifest.user_modules = [UserModule(module=f"plugin_{name}", role="plugin")]
        # One pack (the same content) found at two paths: both are kept.
        manifest.input_files = [InputFile(role="pack", path=f"/packs/{name}", sha256="same")]
        store.write_manifest(manifest)
        runs.append(result.run_dir)
    merge_runs(runs, tmp_path / "merged")
    merged = RunStore(tmp_path / "merged").read_manifest()
    assert [m.module for m in merged.user_modules] == ["plugin_a", "plugin_b"]
    assert [f.path for f in merged.input_files] == ["/packs/a", "/packs/b"]
