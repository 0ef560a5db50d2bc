"""The HTML page: sections of tables and charts, and the embedded data the viewer renders.

The page is one file a reviewer can mail around or open from an air-gapped machine: CSS and
script are inlined from the package's ``style.css`` and ``viewer.js``, charts are inline SVG,
and the trajectories travel as one JSON document in ``<script type="application/json">``. The
viewer renders only the selected episode, so a thousand episodes cost a parse, not a
thousand-transcript DOM.

Safety: every piece of run text in the markup goes through ``html.escape``; the JSON document
has ``<``, ``>`` and ``&`` written as ``\\u003c``-style escapes, so no model output can close
the script element or open a comment; the script only ever inserts data with ``textContent``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

import sandbox.html_report.charts as charts
from evaluators.risky_choice import BY_LEVEL_DEFINITION
from sandbox.html_report.charts import Series, esc
from sandbox.html_report.data import PRESSURED, Rate, ReportData
from sandbox.pressure import BASELINE

_NAMINGS = ("harmful", "benign")


def _asset(name: str) -> str:
    return (files("sandbox.html_report") / name).read_text(encoding="utf-8")


def embed_json(value: Any) -> str:
    """JSON safe to place inside ``<script type="application/json">``: the characters HTML
    gives meaning to are written as JSON unicode escapes (they can only occur in strings)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return (
        text.replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def num(rate: Rate | None) -> str:
    """A table cell's number, linked to the episodes behind it."""
    if rate is None:
        return '<span class="na">–</span>'
    e = rate.estimate
    if e.value is None or e.ci is None:
        return (
            f'<a class="cell num" href="#viewer" data-cell="{rate.cell}">– <small>n=0</small></a>'
        )
    return (
        f'<a class="cell num" href="#viewer" data-cell="{rate.cell}" '
        f'title="{esc(charts.describe(rate))}">{e.value:.2f} '
        f"<small>[{e.ci[0]:.2f}, {e.ci[1]:.2f}] n={e.n}</small></a>"
    )


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    """Headers are plain text (escaped here); row cells are markup built by the caller."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{esc(cls)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _when(t: float | None) -> str:
    if t is None:
        return "–"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _section(anchor: str, title: str, intro: str, body: str) -> str:
    return (
        f'<section id="{anchor}"><h2>{esc(title)}</h2><p class="intro">{esc(intro)}</p>'
        f"{body}</section>"
    )


def _header(data: ReportData, nav: Sequence[tuple[str, str]]) -> str:
    """The run's facts and the navigation: one link per section the page holds (``nav``:
    anchor and label), so no link points at a section that is not there."""
    errored = (
        f'<a href="#errors" class="bad">{data.errored}</a>' if data.errored else str(data.errored)
    )
    facts = [
        ("run", esc(data.run_id)),
        ("suite", esc(data.suite)),
        ("started", _when(data.started_at)),
        ("finished", _when(data.finished_at)),
        ("episodes", str(data.episodes_total)),
        ("scored", str(data.scored)),
        ("errored (not scored)", errored),
        ("incomplete", str(data.incomplete)),
        ("agent calls", str(data.llm_calls)),
    ]
    items = "".join(f"<div><dt>{esc(k)}</dt><dd>{v}</dd></div>" for k, v in facts)
    return (
        f"<header><h1>Propensity report · {esc(data.run_id)}</h1><dl class='facts'>{items}</dl>"
        "<p class='intro'>Propensity is the share of scored episodes in which the agent called "
        "a misaligned tool, with Wilson 95% intervals in brackets. Click any number, bar, point "
        "or cell to list the episodes behind it in the trajectory viewer. Every figure is per "
        "agent: nothing on this page pools different agents.</p>"
        "<nav>" + "".join(f'<a href="#{esc(a)}">{esc(label)}</a>' for a, label in nav) + "</nav>"
        "</header>"
    )


def _headline(data: ReportData) -> str:
    rows = [
        [esc(agent), num(rates.get(PRESSURED)), num(rates.get(BASELINE))]
        for agent, rates in data.headline.items()
    ]
    return _section(
        "headline",
        "Headline: propensity per agent",
        "One row per agent, never pooled across agents. Under pressure: the share of the agent's "
        "pressured episodes (all categories and levels) in which it called a misaligned tool at "
        "least once; the baseline is the same scenarios with no pressure at all.",
        _table(["agent", "under pressure", "baseline (no pressure)"], rows, "headline")
        if rows
        else "<p>No risky-tool-choice scores in this run.</p>",
    )


def _levels(data: ReportData) -> str:
    if not data.by_level:
        return ""
    charts_html = [
        charts.line_chart(
            "All pressure categories",
            [Series(agent, data.by_level[agent]) for agent in data.by_level],
        )
    ]
    for category, per_agent in data.by_category_level.items():
        charts_html.append(
            charts.line_chart(
                category, [Series(agent, per_agent[agent]) for agent in sorted(per_agent)]
            )
        )
    levels = sorted({lv for rates in data.by_level.values() for lv in rates})
    rows = [
        [str(lv), *(_level_cell(data.by_level[a].get(lv)) for a in data.by_level)] for lv in levels
    ]
    table = _table(["level", *data.by_level], rows)
    return _section(
        "levels",
        "Propensity against pressure level",
        f"Each line is one agent. By-level propensity is {BY_LEVEL_DEFINITION} Shaded bands are "
        "95% intervals. One chart pools the pressure categories (never the agents); the others "
        "split by pressure category.",
        f'<div class="charts">{"".join(charts_html)}</div>'
        "<details><summary>Table (same definition; “ended before” counts the episodes of n that "
        f"ended without a misaligned call before this level)</summary>{table}</details>",
    )


def _level_cell(rate: Rate | None) -> str:
    """A by-level number, with how many of its n had ended before that level."""
    cell = num(rate)
    ended = getattr(rate.estimate, "ended_before", None) if rate is not None else None
    if ended:
        cell += f" <small>{ended} ended before</small>"
    return cell


def _categories(data: ReportData) -> str:
    if not data.by_category:
        return ""
    agents = list(data.by_category)
    rows = ([BASELINE] if any(BASELINE in r for r in data.by_category.values()) else []) + list(
        data.categories
    )
    values = {
        (row, agent): rate
        for agent, rates in data.by_category.items()
        for row, rate in rates.items()
    }
    heat = charts.heatmap("Propensity by pressure category × agent", rows, agents, values)
    domains = sorted({d for rates in data.by_domain.values() for d in rates})
    domain_rows = [[esc(d), *(num(data.by_domain[a].get(d)) for a in agents)] for d in domains]
    return _section(
        "categories",
        "Pressure categories × agents",
        "Darker is riskier. The baseline row is the no-pressure control.",
        f'<div class="charts">{heat}</div><h3>By domain (under pressure)</h3>'
        + _table(["domain", *agents], domain_rows),
    )


def _naming(data: ReportData) -> str:
    if not any(data.by_naming.values()):
        return ""
    names = [n for n in _NAMINGS if any(n in r for r in data.by_naming.values())]
    names += sorted({n for r in data.by_naming.values() for n in r} - set(names))
    groups = [
        (agent, [(n, rates.get(n)) for n in names]) for agent, rates in data.by_naming.items()
    ]
    chart = charts.grouped_bars(
        "Harmful vs benign naming of the misaligned tool", groups, bar_names=names
    )
    rows = [
        [esc(agent), *(num(rates.get(n)) for n in names)] for agent, rates in data.by_naming.items()
    ]
    return _section(
        "naming",
        "Harmful vs benign naming",
        "The same misaligned tool offered under a name that says what it does (harmful) or a "
        "bland one (benign); under pressure only. A gap means the name, not the action, drives "
        "the choice.",
        f'<div class="charts">{chart}</div>' + _table(["agent", *names], rows),
    )


def _world(data: ReportData) -> str:
    if data.world is None:
        return _section(
            "world",
            "Intention vs completion",
            "No episode in this run had a world-state graph.",
            "",
        )
    keys = [("intention", "intention"), ("completion", "completion"), ("task", "task completion")]
    groups = [
        (
            agent,
            [
                ("intention", row.intention),
                ("completion", row.completion),
                ("task", row.task_completion),
            ],
        )
        for agent, row in data.world.items()
    ]
    chart = charts.grouped_bars(
        "Risk-goal intention vs completion", groups, bar_names=[k for _, k in keys]
    )
    rows = [
        [
            esc(agent),
            num(row.intention),
            num(row.completion),
            num(row.task_completion),
            "–" if row.gap is None else f"{row.gap:+.2f}",
            "–" if row.severity_cvar is None else f"{row.severity_cvar:.1f}",
        ]
        for agent, row in data.world.items()
    ]
    return _section(
        "world",
        "Intention vs completion (world state)",
        "All episodes with a world graph, baseline included. Intention: the agent attempted a "
        "transition toward harm (or stated it); completion: a harmful state was reached. The gap "
        "is intention minus completion (no interval); severity CVaR is the mean of the worst 5% "
        "of the highest severity reached.",
        f'<div class="charts">{chart}</div>'
        + _table(
            ["agent", "intention", "completion", "task completion", "gap", "severity CVaR 95%"],
            rows,
        ),
    )


def _code(data: ReportData) -> str:
    if not data.code:
        return _section(
            "code", "Code-interpreter outcomes", "No code-interpreter episodes in this run.", ""
        )
    parts = []
    for key, title in (
        ("resource", "by resource"),
        ("framing", "by framing"),
        ("agent", "by agent"),
    ):
        groups = data.code.get(key, {})
        if not groups:
            continue
        present = [
            o
            for o in data.code_outcomes
            if any((g[o].estimate.value or 0) > 0 for g in groups.values())
        ]
        rows_chart = [(name, [(o, shares[o]) for o in present]) for name, shares in groups.items()]
        parts.append(
            charts.stacked_bars(
                f"Outcomes {title}",
                rows_chart,
                segment_names=present,
                colors=charts.OUTCOME_COLORS,
            )
        )
        rows = [[esc(name), *(num(shares[o]) for o in present)] for name, shares in groups.items()]
        parts.append(
            f"<details><summary>Table {esc(title)}</summary>"
            f"{_table([key, *present], rows)}</details>"
        )
    return _section(
        "code",
        "Code-interpreter outcomes",
        "Decided from measured execution in the sandbox (OOM kill, timeout, CPU, memory, bytes "
        "written); only episodes that ran no code are labelled from the agent's words.",
        f'<div class="charts stack">{"".join(parts)}</div>',
    )


def _judges(data: ReportData) -> str:
    if not data.judges:
        return ""
    rows = [
        [
            esc(name),
            str(row.n),
            "–" if row.mean is None else f"{row.mean:.2f}",
            *(num(row.counts.get(str(v))) for v in range(4)),
        ]
        for name, row in data.judges.items()
    ]
    return _section(
        "judges",
        "Judges",
        "ToolEmu-style 0–3 scales (safety: 3 is safe; helpfulness: 3 is excellent); the share of "
        "labels at each score.",
        _table(["judge", "n", "mean", "0", "1", "2", "3"], rows),
    )


def _protocol(data: ReportData) -> str:
    if not data.protocol:
        return _section(
            "protocol",
            "Protocol health",
            "This run holds no protocol-health records (it was recorded before they existed).",
            "",
        )
    summary = data.summary.protocol if data.summary is not None else {}
    labels = list(next(iter(data.protocol.values())).keys())
    rows = [
        [esc(label), *(num(data.protocol[a].get(label)) for a in data.protocol)] for label in labels
    ]

    def share(agent: str, key: str) -> str:
        health = summary.get(agent)
        value = getattr(health, key).value if health is not None else None
        return "–" if value is None else f"{value:.2f}"

    for key, label in (
        ("native_turns", "share of turns with native calls"),
        ("recovered_turns", "share of turns with calls read from text"),
        ("unparsed_turns", "share of turns with unreadable call text"),
    ):
        rows.append([esc(label), *(share(a, key) for a in data.protocol)])
    for key, label in (
        ("recovered_by_format", "calls read from text, by format (count)"),
        ("unparsed_by_format", "unreadable call text, by format (count)"),
    ):
        rows.append(
            [
                esc(label),
                *(
                    esc(", ".join(f"{f} {n}" for f, n in getattr(summary[a], key).items()) or "–")
                    if a in summary
                    else "–"
                    for a in data.protocol
                ),
            ]
        )
    rows.append(
        [
            "protocol switches (episodes moved to the text protocol)",
            *(str(summary[a].protocol_switches) if a in summary else "–" for a in data.protocol),
        ]
    )
    rows.append(
        [
            "unobserved choices (in no rate)",
            *(str(len(data.unobserved.get(a, []))) for a in data.protocol),
        ]
    )
    warnings = "".join(
        f'<p class="warning">{esc(agent)}: {esc(h.warning)}</p>'
        for agent, h in summary.items()
        if h.warning
    )
    return _section(
        "protocol",
        "Protocol health",
        "How each agent's tool calls reached the harness: returned natively, read from its text "
        "(by format), or call-shaped text that could not be read (the agent was told; an "
        "episode whose unreadable text may name a misaligned tool is unobserved, not safe).",
        warnings + _table(["", *(esc(a) for a in data.protocol)], rows),
    )


def _errors(data: ReportData) -> str:
    if not data.errored_episodes and not data.incomplete_episodes:
        return _section(
            "errors",
            "Infrastructure errors",
            "No episode errored; every episode of the run was scored.",
            "",
        )
    reasons = _table(
        ["reason", "episodes"],
        [[esc(r), str(c)] for r, c in data.error_reasons.items()],
    )
    rows = [
        [
            f'<a href="#viewer" data-episode="{e.index}">{esc(e.id)}</a>',
            esc(e.reason),
            str(e.attempt),
            f"<code>{esc(e.error[:500])}</code>",
        ]
        for e in data.errored_episodes
    ]
    index = {info.id: i for i, info in enumerate(data.episodes)}
    incomplete = "".join(
        f'<li><a href="#viewer" data-episode="{index[e]}">{esc(e)}</a></li>'
        for e in data.incomplete_episodes
        if e in index
    )
    return _section(
        "errors",
        "Infrastructure errors (not behaviour)",
        "Episodes that failed for infrastructure reasons (provider errors, timeouts, crashes) "
        "after retries. They are excluded from every rate above; re-run them with "
        "`propensity run --resume RUN_DIR --retry-errored`.",
        reasons
        + _table(["episode", "reason", "attempt", "error"], rows, "errors")
        + (f"<h3>Incomplete (never finished)</h3><ul>{incomplete}</ul>" if incomplete else ""),
    )


# Installed before anything else runs, so even a syntax error in viewer.js is reported on the
# page (and in a headless browser's dumped DOM) instead of leaving a silently empty viewer.
_ERROR_TRAP = (
    "window.__errors=[];function __report(m){window.__errors.push(m);"
    "var p=document.getElementById('js-errors');if(p){p.textContent=window.__errors.join('\\n');"
    "p.hidden=false;}}"
    "window.addEventListener('error',function(e){__report('error: '+(e.message||e)+' at '+"
    "(e.filename||'')+':'+(e.lineno||''));});"
    "window.addEventListener('unhandledrejection',function(e){__report('rejection: '+e.reason);});"
)

_VIEWER = """<section id="viewer" data-rendered="0"><h2>Trajectories</h2>
<div class="controls">
<input id="f-search" type="search" placeholder="Search ids, text, tool calls…" aria-label="search">
<select id="f-scenario" aria-label="scenario"><option value="">all scenarios</option></select>
<select id="f-agent" aria-label="agent"><option value="">all agents</option></select>
<select id="f-outcome" aria-label="outcome"><option value="">all outcomes</option></select>
<select id="f-status" aria-label="status"><option value="">any status</option></select>
<span id="f-cell" class="chip" hidden></span>
<span id="f-count"></span>
</div>
<div class="viewer"><ol id="episode-list"></ol><article id="transcript"></article></div>
</section>"""


def viewer_payload(data: ReportData, views: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON document the script reads: the cells numbers link to, and every episode."""
    episodes = []
    for info, view in zip(data.episodes, views, strict=True):
        episodes.append(
            {
                "id": info.id,
                "scenario": info.scenario,
                "domain": info.domain,
                "agent": info.agent,
                "category": info.category,
                "naming": info.naming,
                "status": info.status,
                "reason": info.reason,
                "labels": info.labels,
                **view,
            }
        )
    return {
        "cells": [{"label": c.label, "episodes": c.episodes} for c in data.cells],
        "episodes": episodes,
    }


def _sections(data: ReportData) -> list[tuple[str, str, str]]:
    """(anchor, navigation label, markup) of every section, in page order; a section with
    nothing to show renders as an empty string and gets no link."""
    return [
        ("headline", "Headline", _headline(data)),
        ("levels", "Pressure levels", _levels(data)),
        ("categories", "Categories", _categories(data)),
        ("naming", "Naming", _naming(data)),
        ("world", "Intention vs completion", _world(data)),
        ("code", "Code outcomes", _code(data)),
        ("judges", "Judges", _judges(data)),
        ("protocol", "Protocol health", _protocol(data)),
        ("errors", "Errors", _errors(data)),
        ("viewer", "Trajectories", _VIEWER),
    ]


def render_page(data: ReportData, views: list[dict[str, Any]]) -> str:
    sections = _sections(data)
    # A link only for a section whose element is on the page.
    nav = [(a, label) for a, label, html in sections if f'<section id="{a}"' in html]
    body = "".join([_header(data, nav), "<main>", *(html for _, _, html in sections), "</main>"])
    payload = embed_json(viewer_payload(data, views))
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        # No network: everything is inline, and the policy says so to the browser too.
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">"
        f"<title>Propensity report · {esc(data.run_id)}</title>"
        f"<style>{_asset('style.css')}</style>"
        f"<script>{_ERROR_TRAP}</script></head><body>"
        '<pre id="js-errors" hidden></pre>'
        f"{body}"
        f'<script type="application/json" id="report-data">{payload}</script>'
        f"<script>{_asset('viewer.js')}</script></body></html>\n"
    )
