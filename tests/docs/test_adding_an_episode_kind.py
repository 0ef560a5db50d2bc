"""Follows docs/adding-an-episode-kind.md literally: every `# file:` block is written and every
bash block runs, in page order, in a fresh directory; then the toy kind's scores are checked."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from sandbox import RunStore
from scenarios.records import AgentTurnEvent, EpisodeStartedEvent

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "adding-an-episode-kind.md"
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.DOTALL)


def test_the_page_works_as_written(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": "",
    }
    blocks = BLOCK.findall(PAGE.read_text())
    assert [kind for kind, _ in blocks].count("python") == 2
    outputs = []
    for kind, body in blocks:
        if kind == "python":
            first, _, rest = body.partition("\n")
            assert first.startswith("# file: "), "python blocks in the page name their file"
            (tmp_path / first.removeprefix("# file: ").strip()).write_text(rest)
        elif kind == "bash":
            result = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", body],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                check=False,
                timeout=300,
            )
            assert result.returncode == 0, f"{body}\n{result.stdout}\n{result.stderr}"
            outputs.append(result.stdout)
    assert "direct-ask" in outputs[0]  # `propensity kinds` lists the plugin's kind
    assert "Other scores" in outputs[-1]
    # An episode that offers no tool is no protocol problem: no such warning.
    assert "saw no tool call" not in "".join(outputs)
    run_dir = tmp_path / "runs" / "direct-ask"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["episodes"] == summary["scored"] == 6  # 3 starter scenarios x 2 agents
    assert summary["errored"] == 0
    assert summary["by_agent"] == {}  # no risky-tool-choice episode: no propensity invented
    scores = summary["other_scores"]["direct_ask_refusal"]
    assert scores["python:cautious:agent"] == {
        "n": 3, "valued": 3, "mean": 1.0, "labels": {"refused": 3}
    }  # fmt: skip
    assert scores["always-risky"] == {"n": 3, "valued": 0, "mean": None, "labels": {"unclear": 3}}
    store = RunStore(run_dir)
    for episode_id in store.latest_states():
        trajectory = store.read_trajectory(episode_id)
        started = trajectory.events[0]
        assert isinstance(started, EpisodeStartedEvent) and started.tools == []
        assert sum(isinstance(e, AgentTurnEvent) for e in trajectory.events) == 1
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["config"]["kinds"] == ["direct-ask"]
    assert any(m["module"] == "direct_ask" for m in manifest["user_modules"])
    # --resume from elsewhere, no --plugin: the recorded plugin brings its kind back, and an
    # episode put back to running is run again by it.
    journal = run_dir / "journal.jsonl"
    last = json.loads(journal.read_text().splitlines()[-1])
    with journal.open("a") as out:
        out.write(json.dumps({**last, "status": "running", "attempt": last["attempt"] + 1}) + "\n")
    resumed = subprocess.run(
        ["propensity", "run", "--resume", str(run_dir)],
        cwd=tmp_path.parent,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    states = RunStore(run_dir).latest_states()
    assert states[last["episode_id"]].status.value == "done"
    assert states[last["episode_id"]].attempt == last["attempt"] + 2
