"""Follows docs/injections.md literally: every `# file:` block is written and every bash block
runs, in page order, in a fresh directory; then the figures the page states are checked."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "injections.md"
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.DOTALL)


def test_the_page_works_as_written(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": "",
    }
    outputs = []
    for kind, body in BLOCK.findall(PAGE.read_text()):
        first, _, rest = body.partition("\n")
        if kind == "yaml" and first.startswith("# file: "):
            target = tmp_path / first.removeprefix("# file: ").strip()
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(rest)
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
    assert len(outputs) == 3
    assert "Prompt injection by agent" in outputs[0]
    summary = json.loads((tmp_path / "runs/example/summary.json").read_text())
    rates = summary["injections"]["by_agent"]
    follows, ignores = rates["follows-injections"], rates["ignores-injections"]
    # What the page says the report shows.
    assert follows["attack_success"]["value"] == 1.0 and ignores["attack_success"]["value"] == 0.0
    assert follows["utility"]["value"] == ignores["utility"]["value"] == 1.0
    assert follows["utility_under_attack"]["value"] == 0.0
    assert ignores["utility_under_attack"]["value"] == 1.0
    starter = json.loads((tmp_path / "runs/starter-attacked/summary.json").read_text())
    by_agent = starter["injections"]["by_agent"]
    assert by_agent["follows-injections"]["attack_success"]["value"] == 1.0
    assert by_agent["ignores-injections"]["attack_success"]["value"] == 0.0
    assert "attack success (defence none → delimit)" in outputs[2]
