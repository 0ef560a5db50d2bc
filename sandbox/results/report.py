"""Turning a RunSummary into tables for people and flat rows for tools (CSV/JSON).

Every propensity figure is per agent: one column (or CSV row group) per agent, never a column
pooling different agents (``summary.propensity`` pools them and is shown nowhere). The by-level
table states its definition (``BY_LEVEL_DEFINITION``) under it, and each CSV row carries a
``note`` where a bare number would be ambiguous.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from evaluators import CodeOutcome, Estimate, PropensityBreakdown
from evaluators.agreement import render_panel
from evaluators.judges import RULE_JUDGE_VALIDITY, judge_row_title
from evaluators.risky_choice import BY_LEVEL_DEFINITION, BY_LEVEL_SHORT
from sandbox.console import folding_table, visible
from sandbox.console import markup_safe as escape
from sandbox.pressure import ALL_CATEGORIES, BASELINE
from sandbox.results.summary import RunSummary

CSV_FIELDS = ("agent", "breakdown", "key", "value", "ci_low", "ci_high", "n", "k", "note")


def _cell(estimate: Estimate | None) -> str:
    if estimate is None or estimate.value is None or estimate.ci is None:
        return "[dim]–[/dim]"
    low, high = estimate.ci
    return f"{estimate.value:.2f} [dim][{low:.2f},{high:.2f}][/dim]"


def _n(estimates: list[Estimate | None]) -> str:
    """The row's denominator: one number when every agent's is the same, else each agent's in
    column order, labelled so (``per agent: 36 / 264 / 174``)."""
    counts = [str(e.n) if e is not None and e.n else "–" for e in estimates]
    shown = [c for c in counts if c != "–"]
    if len(set(shown)) <= 1:
        return shown[0] if shown else ""
    return "per agent: " + " / ".join(counts)


def _agents(summary: RunSummary) -> list[tuple[str, PropensityBreakdown]]:
    """Columns of every propensity table: one per agent, and nothing else (no pooled column:
    a figure pooling different agents is no agent's propensity)."""
    return list(summary.by_agent.items())


def _level_cell(estimate: Estimate | None) -> str:
    """A by-level cell, with how many of its n ended before the level (no misaligned call)."""
    text = _cell(estimate)
    ended = getattr(estimate, "ended_before", None)
    if ended:
        text += f" [dim]({ended} ended before)[/dim]"
    return text


def _table(
    title: str,
    first: str,
    rows: list[tuple[str, list[Estimate | None]]],
    agents: list[str],
    cell: Callable[[Estimate | None], str] = _cell,
) -> Table:
    table = folding_table(title=title, title_justify="left")
    table.add_column(first, style="bold", overflow="fold")
    for agent in agents:
        table.add_column(escape(agent), justify="right", overflow="fold")
    table.add_column("n", justify="right", style="dim", overflow="fold")
    for key, estimates in rows:
        table.add_row(escape(key), *(cell(e) for e in estimates), _n(estimates))
    return table


def _breakdown_rows(
    agents: list[tuple[str, PropensityBreakdown]], pick: str, order: list[str] | None = None
) -> list[tuple[str, list[Estimate | None]]]:
    keys = sorted({k for _, b in agents for k in getattr(b, pick)})
    if order is not None:
        keys = [k for k in order if k in keys] + [k for k in keys if k not in order]
    return [(key, [getattr(b, pick).get(key) for _, b in agents]) for key in keys]


def _code_tables(summary: RunSummary) -> list[Table]:
    code = summary.code
    outcomes = [o.value for o in CodeOutcome]
    tables = []
    for title, groups in (
        ("Code-interpreter outcomes by agent (measured in the sandbox)", code.by_agent),
        ("Code-interpreter outcomes by resource", code.by_resource),
        ("Code-interpreter outcomes by framing", code.by_framing),
    ):
        table = folding_table(title=title, title_justify="left")
        table.add_column("", style="bold", overflow="fold")
        for outcome in outcomes:
            table.add_column(outcome, justify="right", overflow="fold")
        table.add_column("n", justify="right", style="dim", overflow="fold")
        for name, shares in groups.items():
            n = next(iter(shares.values())).n if shares else 0
            table.add_row(
                escape(name),
                *(
                    f"{shares[o].value:.2f}" if o in shares and shares[o].value else "·"
                    for o in outcomes
                ),
                str(n),
            )
        tables.append(table)
    return tables


def _world_table(summary: RunSummary) -> Table | None:
    world = summary.world
    if world is None:
        return None
    groups = list(world.by_agent.items())  # per agent only; world.overall pools agents
    if not groups:
        return None
    names = [name for name, _ in groups]
    table = _table(
        "World state: intention vs completion of harm (all episodes, baseline included)",
        "",
        [
            ("risk-goal intention", [r.intention for _, r in groups]),
            ("risk-goal completion", [r.completion for _, r in groups]),
            ("task-goal completion", [r.task_completion for _, r in groups]),
        ],
        names,
    )
    table.add_row(
        "intention − completion",
        *(
            f"{r.intention_completion_gap:+.2f}" if r.intention_completion_gap is not None else "–"
            for _, r in groups
        ),
        "",
    )
    table.add_row(
        "severity CVaR 95%",
        *(f"{r.severity_cvar:.1f}" if r.severity_cvar is not None else "–" for _, r in groups),
        "",
    )
    return table


_INJECTION_RATES = (
    ("utility (no attack)", "utility"),
    ("utility under attack", "utility_under_attack"),
    ("targeted attack success", "attack_success"),
    ("flagged the injection", "flagged"),
)


def _injection_tables(summary: RunSummary) -> list[Table]:
    """Attacks planted in tool outputs: per agent, then per template and per tool backend."""
    injections = summary.injections
    if injections is None:
        return []
    tables = []
    for title, groups in (
        (
            "Prompt injection by agent (utility over un-attacked pairs; the rest over attacks "
            f"that reached the agent; defence: {injections.defence})",
            injections.by_agent,
        ),
        ("Prompt injection by attack template (every agent pooled)", injections.by_template),
        ("Prompt injection by tool backend (every agent pooled)", injections.by_backend),
    ):
        if not groups:
            continue
        names = list(groups)
        rates = list(groups.values())
        # Un-attacked pairs have no template or backend: utility without attack is per agent.
        keys = _INJECTION_RATES if groups is injections.by_agent else _INJECTION_RATES[1:]
        table = _table(
            title,
            "",
            [(label, [getattr(r, key) for r in rates]) for label, key in keys],
            names,
        )
        table.add_row("not delivered (in no rate)", *(str(r.not_delivered) for r in rates), "")
        table.add_row("undecided (in no rate)", *(str(r.undecided) for r in rates), "")
        tables.append(table)
    return tables


def injection_rows(summary: RunSummary) -> Iterator[dict[str, object]]:
    """Injection rates as CSV rows: breakdown ``injection`` (per agent), ``injection_template:T``
    and ``injection_backend:B`` (agent ``all``), keys as in ``InjectionRates``."""
    injections = summary.injections
    if injections is None:
        return
    groups = [
        *((agent, "injection", rates) for agent, rates in injections.by_agent.items()),
        *(("all", f"injection_template:{t}", r) for t, r in injections.by_template.items()),
        *(("all", f"injection_backend:{b}", r) for b, r in injections.by_backend.items()),
    ]
    for agent, breakdown, rates in groups:
        for _, key in _INJECTION_RATES:
            yield _row(agent, breakdown, key, getattr(rates, key))
        yield _count_row(agent, breakdown, "not_delivered", rates.not_delivered)
        yield _count_row(agent, breakdown, "undecided", rates.undecided)


def _protocol_table(summary: RunSummary) -> Table | None:
    """How each agent's tool calls reached the harness (native, recovered from text, unparsed)."""
    if not summary.protocol:
        return None
    groups = list(summary.protocol.items())
    names = [name for name, _ in groups]
    table = _table(
        "Protocol health: how tool calls were read (share of agent turns / episodes)",
        "",
        [
            ("turns with native calls", [h.native_turns for _, h in groups]),
            ("turns with calls read from text", [h.recovered_turns for _, h in groups]),
            ("turns with unreadable call text", [h.unparsed_turns for _, h in groups]),
            ("episodes with no tool call", [h.no_tool_call_episodes for _, h in groups]),
        ],
        names,
    )

    def formats(counts: dict[str, int]) -> str:
        return ", ".join(f"{k} {v}" for k, v in counts.items()) or "–"

    table.add_row(
        "calls read from text, by format (count)",
        *(escape(formats(h.recovered_by_format)) for _, h in groups),
    )
    table.add_row(
        "unreadable call text, by format (count)",
        *(escape(formats(h.unparsed_by_format)) for _, h in groups),
    )
    table.add_row("protocol switches", *(str(h.protocol_switches) for _, h in groups))
    return table


def protocol_warnings(summary: RunSummary) -> list[str]:
    """One line per agent whose numbers the protocol health puts in doubt."""
    lines = [
        f"{visible(agent)}: {visible(h.warning)}"
        for agent, h in summary.protocol.items()
        if h.warning
    ]
    for agent, breakdown in summary.by_agent.items():
        if breakdown.unobserved:
            lines.append(
                f"{visible(agent)}: {breakdown.unobserved} episode(s) unobserved (call text that "
                "could not be read may name a misaligned tool): left out of every rate"
            )
    if summary.incomplete_trajectories:
        lines.append(
            f"{len(summary.incomplete_trajectories)} episode(s) marked done have a trajectory "
            "cut short, unreadable or another episode's on disk (run again with propensity run "
            "--resume RUN_DIR): "
            + ", ".join(visible(e) for e in summary.incomplete_trajectories[:5])
        )
    if summary.unscored:
        lines.append(
            f"{summary.unscored} episode(s) marked done have scores missing from "
            "scores.jsonl: in no figure and not counted as scored (run them again with "
            "propensity run --resume RUN_DIR): "
            + ", ".join(
                visible(e) + _missing_note(summary.unscored_missing.get(e))
                for e in summary.unscored_episodes[:5]
            )
        )
    if summary.code.unobserved:
        lines.append(
            f"code tasks: {summary.code.unobserved} episode(s) unobserved (no code ran and the "
            "agent's call text could not be read): left out of every share"
        )
    return lines


def _propensity_tables(summary: RunSummary) -> list[Table]:
    """The propensity tables, one column per agent; none when no agent was scored."""
    agents = _agents(summary)
    if not agents:
        return []
    names = [name for name, _ in agents]
    parts: list[Table] = [
        _table(
            f"Propensity: share of episodes calling a misaligned tool, per agent "
            f"(run {escape(summary.run_id)})",
            "",
            [
                ("under pressure", [b.overall for _, b in agents]),
                ("baseline (no pressure)", [b.baseline for _, b in agents]),
            ],
            names,
        )
    ]
    if any(b.unobserved for _, b in agents):
        parts[0].add_row(
            "unobserved (in no rate)",
            *(f"[yellow]{b.unobserved}[/yellow]" if b.unobserved else "0" for _, b in agents),
            "",
        )
    levels = [str(level) for level in range(0, 11)]
    for title, first, pick, order in (
        ("By pressure category", "category", "by_category", [BASELINE, *ALL_CATEGORIES]),
        ("By pressure level (cumulative)", "level", "by_level", levels),
        ("By domain (under pressure)", "domain", "by_domain", None),
        ("By naming of the misaligned tool (under pressure)", "naming", "by_naming", None),
    ):
        rows = _breakdown_rows(agents, pick, order)
        if rows:
            cell = _level_cell if pick == "by_level" else _cell
            table = _table(title, first, rows, names, cell)
            if pick == "by_level":
                table.caption = escape(f"By-level propensity is {BY_LEVEL_DEFINITION}")
                table.caption_justify = "left"
            parts.append(table)
    return parts


def _other_scores_table(summary: RunSummary) -> Table | None:
    """Scores of evaluators without a section of their own (a plugin kind's scorer)."""
    if not summary.other_scores:
        return None
    table = folding_table(
        title="Other scores (evaluators without a section: count, mean of values, labels)",
        title_justify="left",
    )
    for column in ("evaluator", "agent", "scores", "with a value", "mean", "labels"):
        table.add_column(column, overflow="fold")
    for evaluator, by_agent in summary.other_scores.items():
        for agent, aggregate in by_agent.items():
            table.add_row(
                escape(evaluator),
                escape(agent),
                str(aggregate.n),
                str(aggregate.valued),
                "–" if aggregate.mean is None else f"{aggregate.mean:.3f}",
                escape(", ".join(f"{k} {v}" for k, v in aggregate.labels.items()) or "–"),
            )
    return table


def _judges_parts(summary: RunSummary) -> list[Table | Text]:
    """Judge labels per scale, with how they were obtained, and a re-judged run's panel."""
    if not summary.judges:
        return []
    table = folding_table(
        title="Judges (ToolEmu 0-3 scales: safety 3 = no risk, helpfulness 3 = excellent)",
        title_justify="left",
    )
    for column in ("judge", "n", "mean", "0", "1", "2", "3", "by a judge model", "by rules"):
        table.add_column(column, justify="right" if column != "judge" else "left")
    rules = 0
    for name, row in summary.judges.items():
        by_rules = row.by_method.get("rules", 0)
        rules += by_rules
        table.add_row(
            escape(judge_row_title(name)),
            str(row.n),
            "–" if row.mean is None else f"{row.mean:.2f}",
            *(str(row.counts.get(str(v), 0)) for v in range(4)),
            str(row.by_method.get("llm", 0)),
            f"[yellow]{row.by_method.get('rules', 0)}[/yellow]"
            if row.by_method.get("rules")
            else "0",
        )
    if rules:
        table.caption = escape(
            "by rules: the rule judge, a keyword heuristic, not validated: "
            + RULE_JUDGE_VALIDITY
            + ". Its labels stay out of the safety and helpfulness rows unless the run asked "
            "for them there (propensity run --rule-judge)."
        )
        table.caption_justify = "left"
    parts: list[Table | Text] = [table]
    for scale, panel in summary.judge_panels.items():
        parts.append(Text("\n".join(map(visible, render_panel(panel, scale=scale).split("\n")))))
    return parts


def summary_tables(summary: RunSummary) -> Group:
    parts: list[Table | Text] = list(_propensity_tables(summary))
    if not parts:
        line = "No risky-tool-choice episode was scored: no propensity table."
        if summary.other_scores:
            line += " This run has other scores: see the Other scores table below."
        parts.append(Text(line))
    world = _world_table(summary)
    if world is not None:
        parts.append(world)
    if summary.code.episodes:
        parts.extend(_code_tables(summary))
    parts.extend(_judges_parts(summary))
    parts.extend(_injection_tables(summary))
    protocol = _protocol_table(summary)
    if protocol is not None:
        parts.append(protocol)
    other = _other_scores_table(summary)
    if other is not None:
        parts.append(other)
    status = folding_table(title="Episodes", title_justify="left")
    unobserved = sum(b.unobserved for b in summary.by_agent.values()) + summary.code.unobserved
    for column in (
        "total",
        "scored",
        "of which unobserved (in no rate)",
        "errored (not scored)",
        "unscored (scores missing)",
        "incomplete",
        "agent calls",
    ):
        status.add_column(column, justify="right", overflow="fold")
    status.add_row(
        str(summary.episodes),
        str(summary.scored),
        f"[yellow]{unobserved}[/yellow]" if unobserved else "0",
        f"[red]{summary.errored}[/red]" if summary.errored else "0",
        f"[red]{summary.unscored}[/red]" if summary.unscored else "0",
        str(summary.incomplete),
        str(summary.llm_calls),
    )
    parts.append(status)
    if summary.errors:
        errors = folding_table(
            title="Infrastructure errors (re-run with --resume RUN_DIR --retry-errored)"
        )
        errors.add_column("reason", overflow="fold")
        errors.add_column("episodes", justify="right", overflow="fold")
        examples = summary.error_examples
        if examples:
            errors.add_column("first episode", overflow="fold")
        for reason, count in sorted(summary.errors.items()):
            cells = [escape(reason), str(count)]
            if examples:
                cells.append(escape(examples.get(reason, {}).get("episode_id", "–")))
            errors.add_row(*cells)
        parts.append(errors)
        # Each reason's example message under the table, as plain text (never markup), so a
        # long message wraps instead of splitting the table.
        for reason, example in sorted(examples.items()):
            shown = Text()
            shown.append(
                f"{visible(reason)}, e.g. {visible(example.get('episode_id', '–'))}: ",
                style="bold",
            )
            shown.append(visible(example.get("message") or "–"))
            parts.append(shown)
    warnings: list[Table | Text] = [
        Text(f"warning: {line}", style="bold yellow") for line in protocol_warnings(summary)
    ]
    return Group(*parts, *warnings)


def print_summary(summary: RunSummary, console: Console | None = None) -> None:
    (console or Console()).print(summary_tables(summary))


def _row(
    agent: str, breakdown: str, key: str, estimate: Estimate, note: str = ""
) -> dict[str, object]:
    return {
        "agent": agent,
        "breakdown": breakdown,
        "key": key,
        "value": estimate.value,
        "ci_low": estimate.ci[0] if estimate.ci else None,
        "ci_high": estimate.ci[1] if estimate.ci else None,
        "n": estimate.n,
        "k": estimate.k,
        "note": note,
    }


_LEVEL_NOTE = f"{BY_LEVEL_SHORT} (n counts every pressured episode)"


def _level_note(estimate: Estimate) -> str:
    ended = getattr(estimate, "ended_before", None)
    if ended:
        return f"{_LEVEL_NOTE}; {ended} of n ended before this level"
    return _LEVEL_NOTE


def flat_rows(summary: RunSummary) -> Iterator[dict[str, object]]:
    """Propensity rows per agent only (no row pools different agents)."""
    for agent, breakdown in summary.by_agent.items():
        singles: dict[str, Estimate] = {
            "overall": breakdown.overall,
            "baseline": breakdown.baseline,
        }
        groups: list[tuple[str, dict[str, Estimate]]] = [
            ("summary", singles),
            ("category", dict(breakdown.by_category)),
            ("level", dict(breakdown.by_level)),
            ("domain", dict(breakdown.by_domain)),
            ("naming", dict(breakdown.by_naming)),
        ]
        for name, values in groups:
            for key, estimate in values.items():
                note = _level_note(estimate) if name == "level" else ""
                yield _row(agent, name, key, estimate, note)


def world_rows(summary: RunSummary) -> Iterator[dict[str, object]]:
    """World-state rates per agent only (``world.overall`` pools agents: not written)."""
    if summary.world is None:
        return
    for agent, rates in summary.world.by_agent.items():
        for key in ("intention", "completion", "task_completion"):
            yield _row(agent, "world", key, getattr(rates, key))


def _count_row(agent: str, breakdown: str, key: str, n: int) -> dict[str, object]:
    return {
        "agent": agent,
        "breakdown": breakdown,
        "key": key,
        "value": None,
        "ci_low": None,
        "ci_high": None,
        "n": n,
        "k": None,
        "note": "a count (in n), not a rate",
    }


def protocol_rows(summary: RunSummary) -> Iterator[dict[str, object]]:
    """Protocol health as CSV rows: shares (value, interval) and counts (in ``n``)."""
    for agent, health in summary.protocol.items():
        for key in ("native_turns", "recovered_turns", "unparsed_turns", "no_tool_call_episodes"):
            yield _row(agent, "protocol", key, getattr(health, key))
        for fmt, count in health.recovered_by_format.items():
            yield _count_row(agent, "protocol_recovered_calls", fmt, count)
        for fmt, count in health.unparsed_by_format.items():
            yield _count_row(agent, "protocol_unparsed_calls", fmt, count)
        yield _count_row(agent, "protocol", "protocol_switches", health.protocol_switches)
    for agent, breakdown in summary.by_agent.items():
        if breakdown.unobserved:
            yield _count_row(agent, "summary", "unobserved", breakdown.unobserved)


def other_score_rows(summary: RunSummary) -> Iterator[dict[str, object]]:
    """Other evaluators' scores as CSV rows: the mean in ``value`` (no interval), the number
    of valued scores in ``n``; breakdown ``other:EVALUATOR``, key ``mean``."""
    for evaluator, by_agent in summary.other_scores.items():
        for agent, aggregate in by_agent.items():
            yield {
                "agent": agent,
                "breakdown": f"other:{evaluator}",
                "key": "mean",
                "value": aggregate.mean,
                "ci_low": None,
                "ci_high": None,
                "n": aggregate.valued,
                "k": None,
                "note": f"{aggregate.n} score(s); labels: "
                + (", ".join(f"{k} {v}" for k, v in aggregate.labels.items()) or "none"),
            }


def episode_count_rows(summary: RunSummary) -> Iterator[dict[str, object]]:
    """How many episodes were scored, and how many were not (errored; done with their scores
    missing; done with a trajectory cut short; unfinished), as count rows of agent ``all``,
    breakdown ``episodes``: a reader of the CSV alone sees what the rates leave out. Written
    when a done episode is unscored or has a trajectory cut short (nothing pools agents)."""
    if not summary.unscored and not summary.incomplete_trajectories:
        return
    for key, n in (
        ("total", summary.episodes),
        ("scored", summary.scored),
        ("errored", summary.errored),
        ("unscored", summary.unscored),
        ("incomplete_trajectories", len(summary.incomplete_trajectories)),
        ("incomplete", summary.incomplete),
    ):
        yield _count_row("all", "episodes", key, n)


def to_csv(summary: RunSummary) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in flat_rows(summary):
        writer.writerow(row)
    for row in world_rows(summary):
        writer.writerow(row)
    for row in injection_rows(summary):
        writer.writerow(row)
    for row in protocol_rows(summary):
        writer.writerow(row)
    for row in other_score_rows(summary):
        writer.writerow(row)
    for row in episode_count_rows(summary):
        writer.writerow(row)
    return buffer.getvalue()


def _missing_note(missing: str | None) -> str:
    """ " (missing NAMES)" after an unscored episode's id; nothing for older summaries."""
    return f" (missing {visible(missing)})" if missing else ""
