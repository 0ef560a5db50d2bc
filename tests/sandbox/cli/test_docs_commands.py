"""Every `propensity` command the report guide shows runs as shown (placeholders filled)."""

from __future__ import annotations

import asyncio
import re
import shlex
import signal
from pathlib import Path

import pytest

from sandbox import RunConfig, start_run
from sandbox.agents import AgentSpec
from sandbox.cli import main

ROOT = Path(__file__).resolve().parents[3]
GUIDE = ROOT / "docs" / "reading-the-report.md"


def shown_commands(text: str) -> list[str]:
    """`propensity ...` lines of the shell blocks and inline code spans, comments dropped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("propensity "):
                commands.append(line)
    # Inline: whole commands, not a mention of one (`propensity report` in a sentence).
    inline = re.findall(r"(?<!`)`(propensity [^`]+)`", text)
    commands += [span for span in inline if len(span.split()) > 2]
    return commands


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("guide")
    made = {}
    for name, agent in (("a", "always-safe"), ("b", "always-risky")):
        config = RunConfig(
            suite="starter", agents=[AgentSpec(spec=agent)], categories=["time"], limit=2
        )
        made[name] = asyncio.run(start_run(config, root / name)).run_dir
    return made


def test_the_guide_shows_commands() -> None:
    commands = shown_commands(GUIDE.read_text(encoding="utf-8"))
    assert "propensity report RUN_DIR --html FILE" in commands
    assert "propensity compare RUN_A RUN_B --html FILE" in commands
    assert "propensity run --resume RUN_DIR --retry-errored" in commands


@pytest.mark.parametrize("command", shown_commands(GUIDE.read_text(encoding="utf-8")))
def test_every_command_of_the_report_guide_works(
    command: str, runs: dict[str, Path], tmp_path: Path
) -> None:
    page = tmp_path / "page.html"
    places = {"RUN_DIR": runs["a"], "RUN_A": runs["a"], "RUN_B": runs["b"], "FILE": page}
    argv = [str(places.get(word, word)) for word in shlex.split(command)[1:]]
    before = signal.getsignal(signal.SIGTERM)  # `run` makes SIGTERM stop like Ctrl-C
    try:
        assert main(argv) == 0, command
    finally:
        signal.signal(signal.SIGTERM, before)
    if "FILE" in command.split():
        assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    elif "--html" in command.split():
        assert (runs["a"] / "report.html").exists()
