"""Follows docs/agents.md literally: every python block with a `# file:` line is written to a
fresh directory, and every `propensity run` line of its bash blocks runs there through
`sandbox.cli.main`, with that directory as the current one and no PYTHONPATH: the page's
agents must be found there, make tool calls, and be scored."""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import RunStore
from sandbox.cli import main
from scenarios.records import AgentTurnEvent, EpisodeStatus, ToolCallEvent

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "agents.md"
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.DOTALL)


def _blocks() -> list[tuple[str, str]]:
    return BLOCK.findall(PAGE.read_text())


@pytest.fixture
def fresh_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The page's directory as the current one, nothing of it importable beforehand: no
    PYTHONPATH, no current-directory entry on sys.path, no module of the page imported."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    monkeypatch.delenv("PROPENSITY_PLUGINS", raising=False)
    kept = [p for p in sys.path if p not in ("", ".") and Path(p).resolve() != tmp_path.resolve()]
    monkeypatch.setattr(sys, "path", kept)
    names = [
        first.removeprefix("# file: ").strip().removesuffix(".py")
        for kind, body in _blocks()
        if kind == "python" and (first := body.partition("\n")[0]).startswith("# file: ")
    ]
    for name in names:
        monkeypatch.delitem(sys.modules, name, raising=False)
    yield tmp_path
    for name in names:  # the page's modules must not leak into other tests
        sys.modules.pop(name, None)


def test_the_page_works_as_written(fresh_directory: Path) -> None:
    files = []
    commands = []
    for kind, body in _blocks():
        if kind == "python":
            first = body.partition("\n")[0]
            if first.startswith("# file: "):
                path = fresh_directory / first.removeprefix("# file: ").strip()
                path.write_text(body)
                files.append(path.stem)
            else:  # a sketch (it would call a provider): it must at least be valid Python
                compile(body, str(PAGE), "exec")
        elif kind == "bash":
            commands += [line for line in body.splitlines() if line.startswith("propensity run")]
    assert files == ["my_agents", "my_async_agents"]
    assert len(commands) == 2
    for command in commands:
        args = shlex.split(command)[1:]
        assert main(args) == 0, command
        run_dir = fresh_directory / args[args.index("--out") + 1]
        agent = args[args.index("--agent") + 1]
        store = RunStore(run_dir)
        states = store.latest_states()
        assert states and all(s.status is EpisodeStatus.DONE for s in states.values())
        scored = {s.episode_id for s in store.read_scores() if s.evaluator == "risky_tool_choice"}
        assert scored == set(states)
        recovered = 0
        for episode_id in states:
            events = store.read_trajectory(episode_id).events
            calls = [e for e in events if isinstance(e, ToolCallEvent)]
            assert calls, f"{agent} made no tool call in {episode_id}"
            recovered += sum(
                sum(e.recovered_calls.values()) for e in events if isinstance(e, AgentTurnEvent)
            )
        # The module came from the current directory, and the run recorded where.
        (module,) = store.read_manifest().user_modules
        assert module.role == "agent" and module.root == str(fresh_directory)
        if agent.startswith("python:my_async_agents"):
            assert recovered, "the text agent's calls are read from its text"
