"""Turning a RunSummary into tables for people and flat rows for tools (CSV/JSON)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from rich.console import Console, Group
from rich.table import Table

from evaluators import Estimate, PropensityBreakdown
from sandbox.pressure import ALL_CATEGORIES, BASELINE
from sandbox.summary import RunSummary

CSV_FIELDS = ("agent", "breakdown", "key", "value", "ci_low", "ci_high", "n", "k")


def _cell(estimate: Estimate | None) -> str:
    if estimate is None or estimate.value is None or estimate.ci is None:
        return "[dim]–[/dim]"
    low, high = estimate.ci
    return f"{estimate.value:.2f} [dim][{low:.2f}, {high:.2f}] n={estimate.n}[/dim]"


def _rows(summary: RunSummary) -> list[tuple[str, PropensityBreakdown]]:
    rows = list(summary.by_agent.items())
    if len(rows) > 1:
        rows.append(("all agents", summary.propensity))
    return rows


def _table(title: str, keys: list[str], pick: str, summary: RunSummary) -> Table | None:
    rows = _rows(summary)
    present = [k for k in keys if any(k in getattr(b, pick) for _, b in rows)]
    if not present:
        return None
    table = Table(title=title, title_justify="left", show_lines=False)
    table.add_column("agent", style="bold")
    for key in present:
        table.add_column(key, justify="right")
    for agent, breakdown in rows:
        values = getattr(breakdown, pick)
        table.add_row(agent, *(_cell(values.get(key)) for key in present))
    return table


def summary_tables(summary: RunSummary) -> Group:
    rows = _rows(summary)
    headline = Table(
        title=f"Propensity (share of episodes calling a misaligned tool) — run {summary.run_id}",
        title_justify="left",
    )
    headline.add_column("agent", style="bold")
    headline.add_column("under pressure", justify="right")
    headline.add_column("baseline (no pressure)", justify="right")
    for agent, breakdown in rows:
        headline.add_row(agent, _cell(breakdown.overall), _cell(breakdown.baseline))
    parts: list[Table] = [headline]
    categories = [BASELINE, *ALL_CATEGORIES, "mixed"]
    levels = [str(level) for level in range(0, 11)]
    domains = sorted({d for _, b in rows for d in b.by_domain})
    for title, keys, pick in (
        ("By pressure category", categories, "by_category"),
        (
            "By pressure level (cumulative: misaligned call by this level)",
            levels,
            "by_level",
        ),
        ("By domain (under pressure)", domains, "by_domain"),
        ("By naming of the misaligned tool (under pressure)", ["harmful", "benign"], "by_naming"),
    ):
        table = _table(title, keys, pick, summary)
        if table is not None:
            parts.append(table)
    status = Table(title="Episodes", title_justify="left")
    for column in ("total", "scored", "errored (not scored)", "incomplete", "LLM calls"):
        status.add_column(column, justify="right")
    status.add_row(
        str(summary.episodes),
        str(summary.scored),
        f"[red]{summary.errored}[/red]" if summary.errored else "0",
        str(summary.incomplete),
        str(summary.llm_calls),
    )
    parts.append(status)
    if summary.errors:
        errors = Table(title="Infrastructure errors (re-run with --resume RUN_DIR --retry-errored)")
        errors.add_column("reason")
        errors.add_column("episodes", justify="right")
        for reason, count in sorted(summary.errors.items()):
            errors.add_row(reason, str(count))
        parts.append(errors)
    return Group(*parts)


def print_summary(summary: RunSummary, console: Console | None = None) -> None:
    (console or Console()).print(summary_tables(summary))


def flat_rows(summary: RunSummary) -> Iterator[dict[str, object]]:
    agents: list[tuple[str, PropensityBreakdown]] = [("*", summary.propensity)]
    agents += list(summary.by_agent.items())
    for agent, breakdown in agents:
        singles = {"overall": breakdown.overall, "baseline": breakdown.baseline}
        groups: list[tuple[str, dict[str, Estimate]]] = [("summary", singles)]
        groups += [
            ("category", breakdown.by_category),
            ("level", breakdown.by_level),
            ("domain", breakdown.by_domain),
            ("naming", breakdown.by_naming),
        ]
        for name, values in groups:
            for key, estimate in values.items():
                yield {
                    "agent": agent,
                    "breakdown": name,
                    "key": key,
                    "value": estimate.value,
                    "ci_low": estimate.ci[0] if estimate.ci else None,
                    "ci_high": estimate.ci[1] if estimate.ci else None,
                    "n": estimate.n,
                    "k": estimate.k,
                }


def to_csv(summary: RunSummary) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in flat_rows(summary):
        writer.writerow(row)
    return buffer.getvalue()
