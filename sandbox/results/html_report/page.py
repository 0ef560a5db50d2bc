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

from sandbox.results.html_report.data import ReportData
from sandbox.results.html_report.figure import esc
from sandbox.results.html_report.sections import (
    _categories,
    _code,
    _errors,
    _headline,
    _injections,
    _judges,
    _levels,
    _naming,
    _other_scores,
    _protocol,
    _world,
)


def _asset(name: str) -> str:
    return (files("sandbox.results.html_report") / name).read_text(encoding="utf-8")


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


def _when(t: float | None) -> str:
    if t is None:
        return "–"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


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
        (
            "unscored (scores missing)",
            f'<a href="#errors" class="bad">{len(data.unscored_episodes)}</a>'
            if data.unscored_episodes
            else "0",
        ),
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
        ("injections", "Prompt injection", _injections(data)),
        ("protocol", "Protocol health", _protocol(data)),
        ("other-scores", "Other scores", _other_scores(data)),
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
