"""`propensity compare RUN_A RUN_B --html FILE`: the paired comparison as one HTML page.

Like the run report, the page is a single self-contained file (the report's ``style.css``
inlined, no script, nothing fetched), so it can be mailed around or archived with the runs.
It holds the comparison's tables: overall and baseline (and the world graph's harm intended and
completed), by agent when the runs were compared agent by agent, by pressure category and by
scenario, each row with both sides' propensity on the pairs, the difference B − A with its 95%
interval, the discordant pairs and McNemar's exact p-value. Agents and episodes left out of
every paired figure are said above the tables.

Every piece of run text (paths, run ids, agent and scenario names) goes through
``html.escape``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from importlib.resources import files
from pathlib import Path

from sandbox.results.compare import Comparison, PairedComparison

_EXTRA_STYLE = """
td.up { color: var(--bad); font-weight: 600; }
td.down { color: var(--good); font-weight: 600; }
td.num, th.num { text-align: right; white-space: nowrap; }
dl.facts dd { word-break: break-all; }
"""
_HEADERS = ("pairs", "A", "B", "B − A", "95% CI", "A only / B only", "McNemar p")


def esc(text: object) -> str:
    """Run text made safe for HTML markup and attributes."""
    return escape(str(text), quote=True)


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _p(value: float | None) -> str:
    if value is None:
        return "–"
    return "&lt;0.001" if value < 0.001 else f"{value:.3f}"


def _row(name: str, row: PairedComparison) -> str:
    if row.difference is None or row.ci is None:
        difference, interval, direction = "–", "–", ""
    else:
        difference = f"{row.difference:+.2f}"
        interval = f"[{row.ci[0]:+.2f}, {row.ci[1]:+.2f}]"
        # Coloured only when the interval excludes 0: B more (red) or less (green) risky.
        direction = "up" if row.ci[0] > 0 else "down" if row.ci[1] < 0 else ""
    cells = [
        f"<td>{esc(name)}</td>",
        f'<td class="num">{row.pairs}</td>',
        f'<td class="num">{_rate(row.a.value)}</td>',
        f'<td class="num">{_rate(row.b.value)}</td>',
        f'<td class="num {direction}">{difference}</td>',
        f'<td class="num {direction}">{interval}</td>',
        f'<td class="num">{row.a_only} / {row.b_only}</td>',
        f'<td class="num">{_p(row.p_value)}</td>',
    ]
    return "<tr>" + "".join(cells) + "</tr>"


def _table(first: str, rows: dict[str, PairedComparison], cls: str) -> str:
    if not rows:
        return '<p class="na">No pairs.</p>'
    head = f"<th>{esc(first)}</th>" + "".join(f'<th class="num">{h}</th>' for h in _HEADERS)
    body = "".join(_row(name, row) for name, row in rows.items())
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _section(anchor: str, title: str, intro: str, body: str) -> str:
    return (
        f'<section id="{anchor}"><h2>{esc(title)}</h2><p class="intro">{esc(intro)}</p>'
        f"{body}</section>"
    )


def _facts(comparison: Comparison) -> str:
    if comparison.agent_a is not None:
        agents_a, agents_b = comparison.agent_a, str(comparison.agent_b)
    else:
        agents_a = agents_b = ", ".join(comparison.agents) + " (agent by agent)"
    facts: Sequence[tuple[str, str]] = [
        ("A", f"{agents_a} in {comparison.run_a}"),
        ("B", f"{agents_b} in {comparison.run_b}"),
        ("A's propensity", comparison.propensity_a.render()),
        ("B's propensity", comparison.propensity_b.render()),
        ("paired by", ", ".join(comparison.paired_by)),
        ("defence", f"A {comparison.defence_a}, B {comparison.defence_b}"),
    ]
    items = "".join(f"<div><dt>{esc(k)}</dt><dd>{esc(v)}</dd></div>" for k, v in facts)
    return f"<dl class='facts'>{items}</dl>"


def _left_out(comparison: Comparison) -> str:
    notes = []
    for side, agents in (("A", comparison.left_out_a), ("B", comparison.left_out_b)):
        if agents:
            run = comparison.run_a if side == "A" else comparison.run_b
            notes.append(
                f"agent(s) of {side} only, left out: {', '.join(agents)} (in {run}, not in the "
                "other run)"
            )
    unpaired = comparison.unpaired
    if unpaired.a or unpaired.b:
        examples = ", ".join([*unpaired.a_examples, *unpaired.b_examples][:3])
        notes.append(
            f"unpaired, left out: {unpaired.a} episode(s) of A and {unpaired.b} of B with no "
            f"partner in the other run, e.g. {examples}"
        )
    return "".join(f'<p class="warning">{esc(note)}</p>' for note in notes)


def render_compare_page(comparison: Comparison) -> str:
    """The comparison as one self-contained HTML document (a string)."""
    style = (files("sandbox.results.html_report") / "style.css").read_text(encoding="utf-8")
    title = f"Paired comparison · {comparison.run_id_b} against {comparison.run_id_a}"
    headline = {"overall (pressured)": comparison.overall, "baseline": comparison.baseline}
    if comparison.world_completion is not None:
        headline["world: harm completed (incl. baseline)"] = comparison.world_completion
    if comparison.world_intention is not None:
        headline["world: harm intended (incl. baseline)"] = comparison.world_intention
    if comparison.attack_success is not None:
        headline[f"attack success (defence {comparison.defence_a} → {comparison.defence_b})"] = (
            comparison.attack_success
        )
    pooled = comparison.pooled
    note = f" Rows {pooled}." if pooled else ""
    sections = []
    if comparison.by_agent:
        sections.append(
            _section(
                "agents",
                "By agent (pressured)",
                "Each agent of both runs against itself in the other run.",
                _table("agent", comparison.by_agent, "agents"),
            )
        )
    sections += [
        _section(
            "headline",
            "Paired comparison (B − A)" + (" · pooled over agents" if pooled else ""),
            "Propensity is the share of episodes in which the agent called a misaligned tool. "
            "Each row compares A and B on the same pairs of episodes; B − A is the difference "
            "with its 95% interval (coloured when the interval excludes 0), A only / B only "
            "count the discordant pairs, and McNemar's exact p-value tests them." + note,
            _table("", headline, "headline"),
        ),
        _section(
            "categories",
            "By pressure category" + (" · pooled over agents" if pooled else ""),
            "The baseline is the same scenarios with no pressure at all." + note,
            _table("category", comparison.by_category, "categories"),
        ),
        _section(
            "scenarios",
            "By scenario (pressured)" + (" · pooled over agents" if pooled else ""),
            "Pressured pairs of each scenario." + note,
            _table("scenario", comparison.by_scenario, "scenarios"),
        ),
    ]
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{esc(title)}</title><style>{style}{_EXTRA_STYLE}</style></head><body>"
        f"<header><h1>{esc(title)}</h1>{_facts(comparison)}{_left_out(comparison)}"
        "<nav>"
        + ('<a href="#agents">By agent</a>' if comparison.by_agent else "")
        + '<a href="#headline">Overall</a>'
        + '<a href="#categories">Categories</a><a href="#scenarios">Scenarios</a></nav>'
        f"</header><main>{''.join(sections)}"
        f'<p class="intro">Method: {esc(comparison.method)}. Made {made}.</p>'
        "</main></body></html>\n"
    )


def write_compare_page(comparison: Comparison, out: Path | str) -> Path:
    """Write the page to ``out`` atomically and return its path."""
    target = Path(out)
    html = render_compare_page(comparison)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, target)
    return target
