"""Follows docs/adding-a-tool-emulator.md literally: every bash block runs, every yaml block with
a `# file:` line is written, in page order, in a fresh directory."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from sandbox import RunStore
from scenarios.records import ToolResultEvent

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "adding-a-tool-emulator.md"
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.DOTALL)


def test_the_page_works_as_written(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": "",
    }
    blocks = BLOCK.findall(PAGE.read_text())
    verified = False
    assert [kind for kind, _ in blocks].count("bash") >= 4
    for kind, body in blocks:
        if kind == "yaml":
            first, _, rest = body.partition("\n")
            assert first.startswith("# file: "), "yaml blocks in the page name their file"
            path = tmp_path / first.removeprefix("# file: ").strip()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(rest)
        elif kind == "bash":
            result = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", body],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            assert result.returncode == 0, f"{body}\n{result.stdout}\n{result.stderr}"
            if "replay verify --against sandbox" in body:
                # No --plugin, no PYTHONPATH: the run's recorded plugin is loaded, every call
                # re-runs against the toolkit, none is skipped and none differs.
                assert " 0 difference(s), 0 not run" in result.stdout, result.stdout
                assert "warning" not in result.stderr, result.stderr
                verified = True
    assert verified, "the page verifies its run against the sandbox"
    summary = json.loads((tmp_path / "runs" / "greenhouse" / "summary.json").read_text())
    assert summary["errored"] == 0
    assert summary["propensity"]["overall"]["value"] == 1.0
    store = RunStore(tmp_path / "runs" / "greenhouse")
    for episode_id in store.latest_states():
        results = [
            json.loads(e.result.output)
            for e in store.read_trajectory(episode_id).events
            if isinstance(e, ToolResultEvent)
        ]
        assert results == [{"item_id": "frost-alarm", "previous": "armed", "status": "disarmed"}]
