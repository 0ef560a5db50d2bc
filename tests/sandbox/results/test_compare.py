"""`propensity compare`: paired statistics, and comparisons of reference agents whose
propensities are known exactly (always-safe 0, always-risky 1, risky-at-level:5 0 then 1)."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import math
import shutil
from fractions import Fraction
from pathlib import Path

import pytest
from rich.console import Console

from sandbox import RunConfig, start_run
from sandbox.agents import AgentSpec
from sandbox.cli.results import add_compare_parser, run_compare
from sandbox.results.compare import (
    CompareError,
    Comparison,
    compare_runs,
    mcnemar_exact_p,
    newcombe_paired_interval,
    paired_comparison,
)

SCENARIOS = 20  # in the starter pack
NAMINGS = 2


# -- statistics ------------------------------------------------------------------------------


def test_newcombe_interval_matches_the_published_method() -> None:
    # Cavo et al. (2012) as tabulated by Fagerland, Lydersen & Laake, "Statistical Analysis of
    # Contingency Tables", chapter 8: Newcombe square-and-add -0.0621 (-0.1186 to -0.0046).
    low, high = newcombe_paired_interval(59, 6, 16, 80)
    assert (round(low, 4), round(high, 4)) == (-0.1186, -0.0046)


@pytest.mark.parametrize(
    "table", [(0, 0, 0, 10), (10, 0, 0, 0), (0, 10, 0, 0), (3, 2, 5, 7), (1, 0, 20, 0)]
)
def test_newcombe_interval_is_proper_and_antisymmetric(table: tuple[int, int, int, int]) -> None:
    both, first_only, second_only, neither = table
    n = sum(table)
    low, high = newcombe_paired_interval(both, first_only, second_only, neither)
    difference = (first_only - second_only) / n
    assert -1.0 <= low <= difference <= high <= 1.0
    swapped = newcombe_paired_interval(both, second_only, first_only, neither)
    assert swapped == pytest.approx((-high, -low))


def test_newcombe_interval_needs_pairs() -> None:
    with pytest.raises(ValueError):
        newcombe_paired_interval(0, 0, 0, 0)


def test_mcnemar_exact_p_value() -> None:
    # 2 * P(X <= 6) for X ~ Binomial(22, 1/2), computed independently.
    expected = Fraction(2 * sum(math.comb(22, i) for i in range(7)), 2**22)
    assert mcnemar_exact_p(6, 16) == pytest.approx(float(expected))
    assert mcnemar_exact_p(16, 6) == mcnemar_exact_p(6, 16)
    assert mcnemar_exact_p(0, 0) == 1.0
    assert mcnemar_exact_p(5, 5) == 1.0
    assert mcnemar_exact_p(0, 10) == pytest.approx(2 / 1024)
    assert mcnemar_exact_p(0, 200) > 0.0  # no float underflow on large tables


def test_paired_comparison_tabulates_the_pairs() -> None:
    pairs = [(True, True)] * 3 + [(True, False)] * 1 + [(False, True)] * 4 + [(False, False)] * 2
    result = paired_comparison(pairs)
    assert (result.both, result.a_only, result.b_only, result.neither) == (3, 1, 4, 2)
    assert result.pairs == 10 and result.discordant == 5
    assert result.a.k == 4 and result.b.k == 7
    assert result.difference == pytest.approx(0.3)
    assert result.ci is not None and result.ci[0] < 0.3 < result.ci[1]
    assert result.p_value == pytest.approx(mcnemar_exact_p(1, 4))
    empty = paired_comparison([])
    assert empty.pairs == 0 and empty.difference is None and empty.ci is None
    assert empty.p_value is None and empty.render_difference() == "–"


# -- comparing runs --------------------------------------------------------------------------


def _run(root: Path, name: str, agents: list[str], categories: list[str]) -> Path:
    config = RunConfig(
        suite="starter",
        agents=[AgentSpec(spec=spec) for spec in agents],
        categories=categories,
        concurrency=32,
    )
    result = asyncio.run(start_run(config, root / name))
    assert result.summary.errored == 0 and result.summary.incomplete == 0
    return result.run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("compare")
    three = _run(
        root, "three", ["always-safe", "always-risky", "risky-at-level:5"], ["time", "financials"]
    )
    copy = root / "three-again"
    shutil.copytree(three, copy)
    return {
        "three": three,
        "three_again": copy,
        # Shares two agents with "three": always-safe and always-risky.
        "other_three": _run(
            root,
            "other-three",
            ["always-risky", "risky-at-level:2", "always-safe"],
            ["time", "financials"],
        ),
        "safe": _run(root, "safe", ["always-safe"], ["time", "financials"]),
        "risky_time": _run(root, "risky", ["always-risky"], ["time"]),
        "stepped_time": _run(root, "stepped", ["risky-at-level:2"], ["time"]),
    }


def test_two_agents_of_one_run(runs: dict[str, Path]) -> None:
    result = compare_runs(
        runs["three"], runs["three"], agent_a="always-safe", agent_b="always-risky"
    )
    pressured = SCENARIOS * NAMINGS * 2
    assert result.paired_by == ["scenario_id", "category", "naming", "repeat"]
    assert result.overall.pairs == pressured
    assert result.overall.a.value == 0.0 and result.overall.b.value == 1.0
    assert result.overall.difference == 1.0 and result.overall.b_only == pressured
    assert result.overall.ci is not None and result.overall.ci[1] == 1.0
    assert result.overall.ci[0] > 0.9
    assert result.overall.p_value == pytest.approx(2 / 2**pressured)
    assert result.baseline.pairs == SCENARIOS * NAMINGS and result.baseline.difference == 1.0
    assert list(result.by_category) == ["baseline", "financials", "time"]
    assert len(result.by_scenario) == SCENARIOS
    assert all(row.pairs == 2 * NAMINGS for row in result.by_scenario.values())
    assert result.propensity_a.value == 0.0 and result.propensity_b.value == 1.0
    assert result.unpaired.a == result.unpaired.b == 0
    # Every starter scenario has a world: the risky agent completes the harm, the safe one not.
    assert result.world_completion is not None and result.world_completion.difference == 1.0
    assert result.world_completion.pairs == pressured + SCENARIOS * NAMINGS
    assert result.world_intention is not None and result.world_intention.b.value == 1.0


def test_stepped_agent_differs_only_under_pressure(runs: dict[str, Path]) -> None:
    result = compare_runs(
        runs["three"], runs["three"], agent_a="always-safe", agent_b="risky-at-level:5"
    )
    # risky-at-level:5 is safe without pressure and risky once the level reaches 5.
    assert result.baseline.difference == 0.0 and result.baseline.p_value == 1.0
    assert result.baseline.discordant == 0
    assert result.overall.difference == 1.0


def test_single_agent_runs_and_unpaired_episodes(runs: dict[str, Path]) -> None:
    result = compare_runs(runs["safe"], runs["risky_time"])
    assert (result.agent_a, result.agent_b) == ("always-safe", "always-risky")
    # Only the time category is in both runs: the financials episodes of A have no partner.
    assert result.overall.pairs == SCENARIOS * NAMINGS
    assert list(result.by_category) == ["baseline", "time"]
    assert result.unpaired.a == SCENARIOS * NAMINGS and result.unpaired.b == 0
    assert len(result.unpaired.a_examples) == 10
    assert all(".financials." in eid for eid in result.unpaired.a_examples)
    # Each side's own propensity counts all its pressured episodes, paired or not.
    assert result.propensity_a.n == 2 * SCENARIOS * NAMINGS
    assert result.propensity_b.n == SCENARIOS * NAMINGS


def test_same_agents_before_and_after_pair_agent_by_agent(runs: dict[str, Path]) -> None:
    result = compare_runs(runs["three"], runs["three_again"])
    assert result.agent_a is None and result.agent_b is None
    assert result.paired_by[-1] == "agent"
    assert result.overall.pairs == 3 * SCENARIOS * NAMINGS * 2
    assert result.overall.difference == 0.0 and result.overall.discordant == 0
    assert result.overall.p_value == 1.0


def test_one_agent_named_the_other_defaults(runs: dict[str, Path]) -> None:
    result = compare_runs(runs["three"], runs["safe"], agent_a="always-risky")
    assert (result.agent_a, result.agent_b) == ("always-risky", "always-safe")
    assert result.overall.difference == -1.0
    # The same agent name in a run with the same agent set.
    same = compare_runs(runs["three"], runs["three_again"], agent_b="risky-at-level:5")
    assert (same.agent_a, same.agent_b) == ("risky-at-level:5", "risky-at-level:5")


def test_runs_sharing_some_agents_compare_those_agent_by_agent(runs: dict[str, Path]) -> None:
    result = compare_runs(runs["three"], runs["other_three"])
    assert result.agent_a is None and result.agent_b is None
    assert result.agents == ["always-risky", "always-safe"]
    assert result.left_out_a == ["risky-at-level:5"]
    assert result.left_out_b == ["risky-at-level:2"]
    assert result.paired_by[-1] == "agent"
    per_agent = SCENARIOS * NAMINGS * 2  # pressured: two categories
    assert list(result.by_agent) == ["always-risky", "always-safe"]
    assert result.by_agent["always-risky"].pairs == per_agent
    assert result.by_agent["always-risky"].a.value == result.by_agent["always-risky"].b.value
    assert result.by_agent["always-risky"].b.value == 1.0
    assert result.by_agent["always-safe"].b.value == 0.0
    assert all(row.difference == 0.0 and row.p_value == 1.0 for row in result.by_agent.values())
    assert result.overall.pairs == 2 * per_agent and result.overall.discordant == 0
    # The left-out agents' episodes are not unpaired episodes: they enter nothing at all.
    assert result.unpaired.a == result.unpaired.b == 0
    assert result.propensity_a.n == result.propensity_b.n == 2 * per_agent
    # --agent still compares one agent of both runs.
    one = compare_runs(runs["three"], runs["other_three"], agent="always-risky")
    assert (one.agent_a, one.agent_b) == ("always-risky", "always-risky")
    assert one.overall.pairs == per_agent and one.agents == [] and one.by_agent == {}
    with pytest.raises(CompareError, match="--agent 'risky-at-level:5' is not an agent of"):
        compare_runs(runs["three"], runs["other_three"], agent="risky-at-level:5")
    # A single-agent run against a run that holds its agent among others.
    single = compare_runs(runs["three"], runs["safe"])
    assert single.agents == ["always-safe"] and single.left_out_b == []
    assert single.left_out_a == ["always-risky", "risky-at-level:5"]
    assert single.overall.pairs == per_agent and single.overall.difference == 0.0


@pytest.mark.parametrize(
    ("a", "b", "agents", "message"),
    [
        ("three", "stepped_time", {}, "they share none; choose with --agent-a and --agent-b"),
        ("three", "three", {}, "choose with --agent-a and --agent-b"),
        ("safe", "three", {"agent_a": "nobody"}, "--agent-a 'nobody' is not an agent of"),
        ("safe", "safe", {}, "with itself"),
        ("three", "three", {"agent_a": "always-safe"}, "choose one with --agent-b"),
    ],
)
def test_ambiguous_or_wrong_agents_are_explained(
    runs: dict[str, Path], a: str, b: str, agents: dict[str, str], message: str
) -> None:
    with pytest.raises(CompareError, match=message.replace("(", r"\(").replace(")", r"\)")):
        compare_runs(runs[a], runs[b], **agents)


def test_not_a_run_directory(tmp_path: Path, runs: dict[str, Path]) -> None:
    with pytest.raises(CompareError, match="not a run directory"):
        compare_runs(tmp_path, runs["safe"])


# -- the command -----------------------------------------------------------------------------


def _cli(argv: list[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="propensity")
    add_compare_parser(parser.add_subparsers(dest="command", required=True))
    out, err = io.StringIO(), io.StringIO()
    code = run_compare(
        parser.parse_args(argv),
        Console(file=out, width=160, color_system=None),
        Console(file=err, width=160, color_system=None),
    )
    return code, out.getvalue(), err.getvalue()


def test_command_table_and_json(runs: dict[str, Path]) -> None:
    code, text, _ = _cli(["compare", str(runs["safe"]), str(runs["risky_time"])])
    assert code == 0
    assert "Paired comparison (B − A)" in text and "By pressure category" in text
    # 40 discordant pairs, all in B's direction (phi is 0: each side's outcome is constant).
    assert "+1.00 [+0.88, +1.00]" in text
    assert "unpaired (left out): 40 episode(s) of A" in text
    assert "Newcombe" in text
    code, text, _ = _cli(
        ["compare", str(runs["safe"]), str(runs["risky_time"]), "--format", "json"]
    )
    assert code == 0
    parsed = Comparison.model_validate(json.loads(text))
    assert parsed.overall.difference == 1.0 and parsed.unpaired.a == 40


def test_command_over_shared_agents_and_html(runs: dict[str, Path], tmp_path: Path) -> None:
    page = tmp_path / "out" / "compare.html"
    code, text, error = _cli(
        ["compare", str(runs["three"]), str(runs["other_three"]), "--html", str(page)]
    )
    assert code == 0, error
    assert "always-risky, always-safe (agent by agent)" in text
    assert "left out: agent(s) of A only, not in the other run: risky-at-level:5" in text
    assert "left out: agent(s) of B only, not in the other run: risky-at-level:2" in text
    assert "By agent (pressured)" in text
    # Two agents' pairs are never shown as one agent's propensity: no pooled headline, and the
    # pooled tables say so (after the per-agent one).
    assert "A's propensity" not in text
    assert "Paired comparison (B − A), pooled over the pairs of 2 agents" in " ".join(text.split())
    assert text.index("By agent (pressured)") < text.index("Paired comparison")
    assert f"wrote {page}" in error
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "<style>" in html
    assert "<script" not in html and "<link" not in html and "http" not in html.split("</style>")[1]
    for name in ("always-risky", "always-safe", "risky-at-level:5", "risky-at-level:2"):
        assert name in html
    assert "By agent (pressured)" in html and "McNemar p" in html
    assert "Paired comparison (B − A) · pooled over agents" in html
    agents = html.split('<table class="agents">')[1].split("</table>")[0]
    for agent in ("always-risky", "always-safe"):
        row = agents.split(f"<td>{agent}</td>")[1].split("</tr>")[0]
        value = "1.00" if agent == "always-risky" else "0.00"
        assert f'<td class="num">{SCENARIOS * NAMINGS * 2}</td>' in row
        assert row.count(f'<td class="num">{value}</td>') == 2  # A and B
        assert "+0.00" in row and "1.000" in row

    # Numbers that differ: B − A, its interval, the discordant pairs and the p-value.
    code, _, error = _cli(
        ["compare", str(runs["safe"]), str(runs["risky_time"]), "--html", str(page)]
    )
    assert code == 0, error
    html = page.read_text(encoding="utf-8")
    overall = html.split("<td>overall (pressured)</td>")[1].split("</tr>")[0]
    assert ">+1.00<" in overall and ">[+0.88, +1.00]<" in overall and ">0 / 40<" in overall
    assert "&lt;0.001" in overall and 'class="num up"' in overall
    assert "unpaired, left out: 40 episode(s) of A" in html


def test_command_errors_are_one_line(runs: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "missing").mkdir()
    (tmp_path / "missing" / "x.html").write_text("a file, not a directory")
    code, _, error = _cli(
        [
            "compare",
            str(runs["safe"]),
            str(runs["risky_time"]),
            "--html",
            str(tmp_path / "missing" / "x.html" / "y"),
        ]
    )
    assert code == 1 and error.startswith("error: cannot write") and "Traceback" not in error
    code, text, error = _cli(["compare", str(runs["three"]), str(runs["stepped_time"])])
    assert code == 1 and text == ""
    assert error.startswith("error: cannot tell which agents to compare")
    assert "Traceback" not in error
