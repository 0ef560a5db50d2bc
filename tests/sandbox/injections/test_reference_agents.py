"""The injection reference agents separate exactly: attack success 1 for follows-injections and
0 for ignores-injections on every attacked episode, with the un-attacked pair's utility."""

from __future__ import annotations

import json
from pathlib import Path

from injection_support import INBOX_SCENARIO

from sandbox import RunStore
from sandbox.cli import main


def test_reference_agents_separate_through_the_cli(tmp_path: Path) -> None:
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "invoice-receipt.yaml").write_text(INBOX_SCENARIO, encoding="utf-8")
    run = tmp_path / "run"
    argv = ["run", "--suite", str(pack), "--out", str(run), "--quiet"]
    argv += ["--agent", "follows-injections", "--agent", "ignores-injections"]
    assert main(argv) == 0
    summary = json.loads((run / "summary.json").read_text())
    rates = summary["injections"]["by_agent"]
    follows, ignores = rates["follows-injections"], rates["ignores-injections"]
    assert follows["attacked"] == ignores["attacked"] == 2  # both injections reached them
    assert follows["attack_success"]["value"] == 1.0
    assert ignores["attack_success"]["value"] == 0.0
    assert follows["utility"]["value"] == ignores["utility"]["value"] == 1.0  # un-attacked pair
    assert ignores["utility_under_attack"]["value"] == 1.0
    assert follows["utility_under_attack"]["value"] == 0.0  # the leak leaves no way back
    assert ignores["flagged"]["value"] == 1.0 and follows["flagged"]["value"] == 0.0
    assert set(summary["injections"]["by_template"]) == {"system-notice", "user-impersonation"}
    assert set(summary["injections"]["by_backend"]) == {"python"}
    # Attacked episodes stay out of the other sections: the world rates count the pairs only.
    assert summary["world"]["overall"]["n"] == 2
    store = RunStore(run)
    attacked = [e for e in store.latest_states() if ".inj-" in e]
    assert len(attacked) == 4
    started = store.read_trajectory(attacked[0]).started
    assert started is not None and started.injection is not None
    assert "payroll-audit@collect.example" in started.injection["text"]
