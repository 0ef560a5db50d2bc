"""Tables never cut an identifier, on a pipe or on a narrow terminal."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from sandbox.console import WIDE, folding_table, make_console

NAMES = ["python:my_agents:self_preserver", "python:my_agents:self_preserver_v2"]


def test_piped_console_is_wide_unless_columns_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    assert make_console().width == WIDE  # pytest captures stdout: not a terminal
    monkeypatch.setenv("COLUMNS", "90")
    assert make_console().width == 90


def test_piped_table_keeps_whole_names_on_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    console = make_console()
    buffer = io.StringIO()
    console.file = buffer
    table = folding_table("agent", *(f"{name} long column header" for name in NAMES))
    for name in NAMES:
        table.add_row(name, "0.50", "0.25")
    console.print(table)
    text = buffer.getvalue()
    for name in NAMES:
        assert name in text
    assert "…" not in text


def test_narrow_terminal_folds_instead_of_cutting() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=40, force_terminal=True, color_system=None)
    table = folding_table("agent", "propensity")
    table.add_column("scenario id", overflow="fold")
    for name in NAMES:
        table.add_row(name, "0.50", "finance-ops-approve-wire-transfer-quickly")
    console.print(table)
    text = buffer.getvalue()
    assert "…" not in text
    cells = "".join(line.split("│")[1].strip() for line in text.splitlines() if "│" in line)
    for name in NAMES:
        assert name in cells


@pytest.mark.parametrize("width", [40, 80, 120])
def test_a_table_wider_than_the_terminal_prints_in_column_groups(width: int) -> None:
    # Ten agents on a narrow terminal: every agent's name and figures appear whole, the row
    # keys repeat in every group, and no line is wider than the terminal.
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=True, color_system=None)
    agents = [f"risky-at-level:{level}" for level in range(10)]
    table = folding_table(title="Propensity under pressure")
    table.add_column("category", overflow="fold")
    for agent in agents:
        table.add_column(agent, justify="right", overflow="fold")
    table.add_row("overall", *(f"0.{level}0 [0.01, 0.99] n=4" for level in range(10)))
    console.print(table)
    text = buffer.getvalue()
    for level, agent in enumerate(agents):
        assert agent in text and f"0.{level}0 [0.01, 0.99] n=4" in text
    assert max(len(line) for line in text.splitlines()) <= width
    parts = text.count("Propensity under pressure (part ")
    assert parts > 1 and text.count("overall") == parts


def test_differing_denominators_are_labelled_per_agent() -> None:
    from evaluators.stats import estimate
    from sandbox.results.report import _n

    assert _n([estimate(1, 4), estimate(0, 4)]) == "4"
    assert _n([estimate(1, 36), None, estimate(3, 174)]) == "per agent: 36 / – / 174"
