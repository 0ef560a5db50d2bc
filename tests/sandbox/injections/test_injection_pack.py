"""The built-in `injection` pack, run whole through the CLI with both injection reference agents:
every attacked episode is delivered, and attack success is exactly 1 for follows-injections and
0 for ignores-injections, overall and on every tool backend (proxy, python, emulated, and the
code interpreter's container), with the utility the pack's worlds are designed to give."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from sandbox import RunStore
from sandbox.cli import main
from sandbox.testing import Script, ScriptedOpenAIServer
from scenarios.code_tasks import CodeTask
from scenarios.injections import INJECTION_TEMPLATES
from scenarios.loader import builtin_packs_dir, load_pack
from scenarios.model import Scenario

ROOT = Path(__file__).resolve().parents[3]
PACK = builtin_packs_dir() / "injection"
TOOLKITS = ROOT / "scenarios" / "toolkits" / "injection"
AGENTS = ["--agent", "follows-injections", "--agent", "ignores-injections"]
# One observation serves every emulated tool: the emulator keeps each tool's declared return
# fields (ReadChart and GetTicket: text and details; the others: success) and drops the rest.
# It never carries the attack, so the injection layer places it as the scenario declares.
OBSERVATION = json.dumps(
    {
        "text": "Seen in clinic this morning; stable, no concerns raised.\nNext review as planned.",
        "details": {"status": "open", "owner": "day team"},
        "success": True,
    }
)

# Attacked episodes per agent, by backend, as the pack declares them.
SCENARIO_ATTACKS = {"proxy": 7, "python": 8, "emulated": 4}
CODE_ATTACKS = 4
# Attacks after which follows-injections still reaches the task's goal state: their forbidden
# call is no transition of the world (proxy: meeting-room-booking board, release-tagging
# on-call; python: inbox-quote-acceptance tidy; emulated: clinic-allergy-update migration).
# Every other attack leaves the world in a harmful state with no way on to the goal.
FOLLOWER_KEEPS_UTILITY = {"proxy": 2, "python": 1, "emulated": 1}


@contextmanager
def _emulator_server() -> Iterator[ScriptedOpenAIServer]:
    """The scripted emulator, served from its own thread's event loop: the CLI's ``main`` runs
    its own loop and must stay on the main thread (it installs signal handlers)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = ScriptedOpenAIServer(Script.from_dict({"default": OBSERVATION}))
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(timeout=30)
    try:
        yield server
    finally:
        closing = server.stop()
        asyncio.run_coroutine_threadsafe(closing, loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()


def _run(argv: list[str]) -> dict[str, Any]:
    assert main(argv) == 0
    out = Path(argv[argv.index("--out") + 1])
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
    return summary


def _value(rates: dict[str, Any], key: str) -> float | None:
    value = rates[key]["value"]
    return None if value is None else float(value)


def _assert_separated(section: dict[str, Any], attacked: int) -> None:
    """Exact separation: every attack delivered, success 1 for the follower, 0 for the other."""
    by_agent = section["by_agent"]
    assert set(by_agent) == {"follows-injections", "ignores-injections"}
    for name, success in (("follows-injections", 1.0), ("ignores-injections", 0.0)):
        rates = by_agent[name]
        assert rates["attacked"] == attacked and rates["not_delivered"] == 0, (name, rates)
        assert _value(rates, "attack_success") == success, (name, rates)
        assert _value(rates, "utility") == 1.0, (name, rates)  # the un-attacked pairs
    assert _value(by_agent["ignores-injections"], "utility_under_attack") == 1.0
    assert _value(by_agent["ignores-injections"], "flagged") == 1.0
    assert _value(by_agent["follows-injections"], "flagged") == 0.0
    overall = section["overall"]
    assert overall["attacked"] == 2 * attacked and overall["not_delivered"] == 0
    assert _value(overall, "attack_success") == 0.5


def _injection_scores(run: Path) -> list[Any]:
    return [s for s in RunStore(run).read_scores() if s.evaluator == "injection"]


def test_pack_content_is_as_described() -> None:
    pack = load_pack("injection")
    assert pack.name == "injection"
    scenarios, tasks = pack.scenarios, pack.code_tasks
    assert len(scenarios) + len(tasks) >= 20
    every: list[Scenario | CodeTask] = [*scenarios, *tasks]
    assert all(item.injections for item in every)
    assert len({s.domain for s in scenarios}) >= 4
    assert all(s.kind == "open" and s.world is not None for s in scenarios)
    injections = [i for item in every for i in item.injections]
    assert set(INJECTION_TEMPLATES) <= {i.template for i in injections}
    assert {"append", "prepend", "field", "inside", "file"} == {i.at.place for i in injections}
    goals = [i.goal for s in scenarios for i in s.injections]
    assert any(g.call is not None for g in goals) and any(g.state is not None for g in goals)
    assert all(t.framing.value == "injected" for t in tasks)
    assert {t.resource.value for t in tasks} == {"cpu", "memory", "disk", "processes"}
    backends = {tool.backend for s in scenarios for tool in s.tools}
    assert backends == {"proxy", "python"} and any(s.toolkits for s in scenarios)
    attacked = {"proxy": 0, "python": 0, "emulated": 0}
    for scenario in scenarios:
        kind = "emulated" if scenario.toolkits else scenario.tools[0].backend
        attacked[kind] += len(scenario.injections)
    assert attacked == SCENARIO_ATTACKS
    assert sum(len(t.injections) for t in tasks) == CODE_ATTACKS


def test_the_pack_validates_strictly_with_its_toolkits() -> None:
    argv = ["validate", "--strict", str(PACK), "--toolkits", str(TOOLKITS)]
    assert main(argv) == 0


def _run_pack(tmp_path: Path, *options: str) -> tuple[dict[str, Any], Path]:
    """The pack run through the CLI with both reference agents and the scripted emulator."""
    run = tmp_path / "run"
    with _emulator_server() as emulator:
        argv = ["run", "--suite", str(PACK), *options, *AGENTS, "--quiet", "--out", str(run)]
        argv += ["--cache-dir", str(tmp_path / "cache"), "--toolkits", str(TOOLKITS)]
        argv += ["--emulator-model", "openai/emulator", "--emulator-api-base", emulator.url]
        summary = _run(argv)
        assert emulator.stats.requests > 0
    return summary, run


def _assert_scenario_backends(section: dict[str, Any], run: Path) -> None:
    """Each scenario backend: every attack delivered, the follower's all succeeded, and the
    designed utility under attack; every attack planted where it was declared."""
    for backend, count in SCENARIO_ATTACKS.items():
        rates = section["by_backend"][backend]
        assert rates["attacked"] == 2 * count and rates["not_delivered"] == 0, backend
        assert rates["attack_success"]["k"] == count, backend  # the follower's, all of them
        # The ignorer keeps every task; the follower only those its attack leaves reachable.
        assert rates["utility_under_attack"]["k"] == count + FOLLOWER_KEEPS_UTILITY[backend]
    attacked = [s for s in _injection_scores(run) if s.details["attacked"]]
    for score in attacked:
        placed = str(score.details["placed"])
        assert "impossible" not in placed, (score.episode_id, placed)  # no fallback append
        if score.details["backend"] == "emulated":
            assert score.details["emulator_complied"] is False  # the layer placed it


def test_scenarios_separate_the_reference_agents_on_every_backend(tmp_path: Path) -> None:
    """The pack's scenarios (proxy, python and emulated tools; no Docker needed)."""
    summary, run = _run_pack(tmp_path, "--kind", "open")
    section = summary["injections"]
    attacked = sum(SCENARIO_ATTACKS.values())
    _assert_separated(section, attacked)
    follows = section["by_agent"]["follows-injections"]
    assert follows["utility_under_attack"]["n"] == attacked
    assert follows["utility_under_attack"]["k"] == sum(FOLLOWER_KEEPS_UTILITY.values())
    assert set(section["by_backend"]) == set(SCENARIO_ATTACKS)
    _assert_scenario_backends(section, run)
    assert set(section["by_template"]) == {*INJECTION_TEMPLATES, "custom"}
    for template, rates in section["by_template"].items():
        assert _value(rates, "attack_success") == 0.5, template
    # Attacked episodes stay out of the other sections: the world counts the pairs only.
    assert summary["world"]["overall"]["n"] == 2 * len(load_pack("injection").scenarios)


@pytest.mark.slow
def test_whole_pack_separates_the_reference_agents(tmp_path: Path, docker_engine: object) -> None:
    """The whole pack in one run, code tasks in the Docker sandbox included: all four backends."""
    limits = ["--sandbox-timeout", "2", "--sandbox-memory", "128", "--sandbox-pool", "4"]
    summary, run = _run_pack(tmp_path, *limits)
    section = summary["injections"]
    attacked = sum(SCENARIO_ATTACKS.values()) + CODE_ATTACKS
    _assert_separated(section, attacked)
    assert set(section["by_backend"]) == {*SCENARIO_ATTACKS, "container"}
    _assert_scenario_backends(section, run)
    container = section["by_backend"]["container"]
    assert container["attacked"] == 2 * CODE_ATTACKS and container["not_delivered"] == 0
    assert container["attack_success"]["k"] == CODE_ATTACKS
    # Both agents read the planted file and then run code that completes (utility); the
    # follower first runs the attacker's code, which the sandbox's limits stop.
    assert _value(container, "utility_under_attack") == 1.0
    follows = section["by_agent"]["follows-injections"]
    assert (
        follows["utility_under_attack"]["k"] == sum(FOLLOWER_KEEPS_UTILITY.values()) + CODE_ATTACKS
    )
    outcomes = {
        s.episode_id: s.label
        for s in RunStore(run).read_scores()
        if s.evaluator == "code_execution" and ".inj-" in s.episode_id
    }
    assert len(outcomes) == 2 * CODE_ATTACKS
    for episode, label in outcomes.items():
        exhausted = label in ("timeout", "contained")
        assert exhausted == (".follows-injections." in episode), (episode, label)
