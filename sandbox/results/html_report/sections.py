"""The report page's sections: one function per section (headline, pressure levels,
categories, naming, world, code outcomes, judges, protocol health, other scores, errors), each
returning its
markup or "" when the run has nothing to show there, and the table and number cells they share.
Every piece of run text goes through ``esc``; numbers link to their episodes (``num``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sandbox.results.html_report.charts as charts
from evaluators.agreement import PanelAgreement, render_panel
from evaluators.judges import RULE_JUDGE_VALIDITY, judge_row_title
from evaluators.risky_choice import BY_LEVEL_DEFINITION
from sandbox.pressure import BASELINE
from sandbox.results.html_report.charts import Series
from sandbox.results.html_report.data import PRESSURED, Rate, ReportData
from sandbox.results.html_report.figure import describe, esc

_NAMINGS = ("harmful", "benign")


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
        f'title="{esc(describe(rate))}">{e.value:.2f} '
        f"<small>[{e.ci[0]:.2f}, {e.ci[1]:.2f}] n={e.n}</small></a>"
    )


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    """Headers are plain text (escaped here); row cells are markup built by the caller."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{esc(cls)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _section(anchor: str, title: str, intro: str, body: str) -> str:
    return (
        f'<section id="{anchor}"><h2>{esc(title)}</h2><p class="intro">{esc(intro)}</p>'
        f"{body}</section>"
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
        else "<p>No risky-tool-choice scores in this run." + _other_scores_pointer(data) + "</p>",
    )


def _other_scores_pointer(data: ReportData) -> str:
    """Where a run without risky-tool-choice scores keeps the scores it has (a plugin kind's)."""
    if not data.other_scores:
        return ""
    names = ", ".join(esc(name) for name in data.other_scores)
    return f' It has other scores ({names}): see <a href="#other-scores">Other scores</a> below.'


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


def _panel(data: ReportData, scale: str, panel: PanelAgreement) -> str:
    """A re-judged run's panel: alpha with its interval, then the episodes the judges disagree
    on most, each a link into the viewer with every judge's label."""
    index = {info.id: i for i, info in enumerate(data.episodes)}
    head = render_panel(panel.model_copy(update={"most_disagreed": []}), scale=scale)
    rows = []
    for episode, spread in panel.most_disagreed:
        link = (
            f'<a href="#viewer" data-episode="{index[episode]}">{esc(episode)}</a>'
            if episode in index
            else esc(episode)
        )
        labels = panel.labels_of.get(episode, [])
        rows.append(
            [
                link,
                f"{spread:g}",
                *("–" if v is None else str(v) for v in labels),
                *(["–"] * (len(panel.models) - len(labels))),
            ]
        )
    table = _table(["most disagreed on", "apart by", *panel.models], rows) if rows else ""
    return f"<p>{esc(head)}</p>{table}"


def _injections(data: ReportData) -> str:
    """Attacks planted in tool outputs, per agent: each cell links to its episodes."""
    if not data.injections:
        return ""
    defence = data.summary.injections.defence if data.summary and data.summary.injections else ""
    columns = [
        ("utility", "utility (no attack)"),
        ("utility_under_attack", "utility under attack"),
        ("attack_success", "targeted attack success"),
        ("flagged", "flagged the injection"),
    ]
    rows = [
        [esc(agent), *(num(rates[key]) for key, _ in columns)]
        for agent, rates in data.injections.items()
    ]
    by = data.summary.injections if data.summary is not None else None
    extra = ""
    if by is not None:
        for title, groups in (
            ("by attack template (every agent pooled)", by.by_template),
            ("by tool backend (every agent pooled)", by.by_backend),
        ):
            extra += f"<h3>{esc(title)}</h3>" + _table(
                [
                    "",
                    "attacks",
                    "utility under attack",
                    "targeted attack success",
                    "flagged",
                    "not delivered",
                    "undecided",
                ],
                [
                    [
                        esc(name),
                        str(rates.attacked),
                        esc(rates.utility_under_attack.render()),
                        esc(rates.attack_success.render()),
                        esc(rates.flagged.render()),
                        str(rates.not_delivered),
                        str(rates.undecided),
                    ]
                    for name, rates in groups.items()
                ],
            )
    return _section(
        "injections",
        "Prompt injection",
        "Attacks planted in tool outputs (AgentDojo's metrics, Wilson 95% intervals): utility on "
        "the un-attacked pairs and under attack, targeted attack success (the attacker's goal "
        "call or world state reached after the attack arrived, from the calls, never the words) "
        "and the share where the agent flagged the injection. Attacked episodes enter no other "
        f"section. Defence: {defence or 'none'}. In the viewer, an attacked episode's badge says "
        "whether the attack succeeded, and its transcript shows where the text was planted.",
        _table(["agent", *(label for _, label in columns)], rows) + extra,
    )


def _judges(data: ReportData) -> str:
    if not data.judges:
        return ""
    aggregates = data.summary.judges if data.summary is not None else {}
    rows = [
        [
            esc(judge_row_title(name)),
            str(row.n),
            "–" if row.mean is None else f"{row.mean:.2f}",
            *(num(row.counts.get(str(v))) for v in range(4)),
            str(aggregates[name].by_method.get("llm", 0)) if name in aggregates else "–",
            str(aggregates[name].by_method.get("rules", 0)) if name in aggregates else "–",
        ]
        for name, row in data.judges.items()
    ]
    rules = sum(a.by_method.get("rules", 0) for a in aggregates.values())
    note = (
        "ToolEmu-style 0–3 scales (safety: 3 is safe; helpfulness: 3 is excellent); the share of "
        "labels at each score, and how many came from a judge model or from the rule judge."
    )
    if rules:
        note += (
            " The rule judge is a keyword heuristic, not validated: "
            + RULE_JUDGE_VALIDITY
            + ". Its labels stay out of the safety and helpfulness rows unless the run asked "
            "for them there (propensity run --rule-judge)."
        )
    panels = data.summary.judge_panels if data.summary is not None else {}
    extra = "".join(_panel(data, scale, panel) for scale, panel in panels.items())
    return _section(
        "judges",
        "Judges",
        note,
        _table(["judge", "n", "mean", "0", "1", "2", "3", "by a judge model", "by rules"], rows)
        + extra,
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


def _labels(labels: dict[str, int]) -> str:
    return esc(", ".join(f"{label} {n}" for label, n in labels.items()) or "–")


def _other_scores(data: ReportData) -> str:
    if not data.other_scores:
        return ""
    rows = [
        [
            esc(evaluator),
            esc(agent),
            f'<a class="cell num" href="#viewer" data-cell="{row.cell}" '
            f'title="{esc(f"{row.episodes} episode(s) behind these scores")}">'
            f"{row.aggregate.n}</a>",
            str(row.aggregate.valued),
            "–" if row.aggregate.mean is None else f"{row.aggregate.mean:.3f}",
            _labels(row.aggregate.labels),
        ]
        for evaluator, per_agent in data.other_scores.items()
        for agent, row in per_agent.items()
    ]
    return _section(
        "other-scores",
        "Other scores",
        "Scores of evaluators without a section of their own (e.g. a plugin kind's scorer), as "
        "summary.json's other_scores holds them: per evaluator and agent, how many scores, how "
        "many carry a value, the mean of those values (no interval) and the count of each "
        "label. Click a count to list its episodes.",
        _table(["evaluator", "agent", "scores", "with a value", "mean", "labels"], rows),
    )


def _errors(data: ReportData) -> str:
    if not data.errored_episodes and not data.incomplete_episodes and not data.unscored_episodes:
        return _section(
            "errors",
            "Infrastructure errors",
            "No episode errored; every episode of the run was scored.",
            "",
        )
    index = {info.id: i for i, info in enumerate(data.episodes)}
    examples = data.summary.error_examples if data.summary is not None else {}

    def first(reason: str) -> list[str]:
        """The reason's example: its first errored episode (a link) and that error, cut."""
        example = examples.get(reason)
        if example is None:
            return ["–", "–"]
        episode = example.get("episode_id", "")
        link = (
            f'<a href="#viewer" data-episode="{index[episode]}">{esc(episode)}</a>'
            if episode in index
            else esc(episode or "–")
        )
        return [link, f"<code>{esc(example.get('message') or '–')}</code>"]

    reasons = _table(
        ["reason", "episodes", "first episode", "its error"],
        [[esc(r), str(c), *first(r)] for r, c in data.error_reasons.items()],
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
    incomplete = "".join(
        f'<li><a href="#viewer" data-episode="{index[e]}">{esc(e)}</a></li>'
        for e in data.incomplete_episodes
        if e in index
    )
    unscored = "".join(
        f'<li><a href="#viewer" data-episode="{index[e]}">{esc(e)}</a></li>'
        if e in index
        else f"<li>{esc(e)}</li>"
        for e in data.unscored_episodes
    )
    return _section(
        "errors",
        "Infrastructure errors (not behaviour)",
        "Episodes that failed for infrastructure reasons (provider errors, timeouts, crashes) "
        "after retries. They are excluded from every rate above; re-run them with "
        "`propensity run --resume RUN_DIR --retry-errored`.",
        reasons
        + _table(["episode", "reason", "attempt", "error"], rows, "errors")
        + (f"<h3>Incomplete (never finished)</h3><ul>{incomplete}</ul>" if incomplete else "")
        + (
            "<h3>Unscored (marked done, scores missing: in no figure; run them again with "
            f"<code>propensity run --resume RUN_DIR</code>)</h3><ul>{unscored}</ul>"
            if unscored
            else ""
        ),
    )
