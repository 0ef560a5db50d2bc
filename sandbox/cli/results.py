"""`propensity report`, `propensity compare` and `propensity export`: reading results once a
run is finished."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from sandbox.cli.common import EXIT_FAILURE, EXIT_OK, CliError, add_plugin_option
from sandbox.console import folding_table, visible
from sandbox.console import markup_safe as escape
from sandbox.results.compare import CompareError, Comparison, PairedComparison, compare_runs
from sandbox.results.exports import (
    ALL_FORMATS,
    DEFAULT_MAX_CHARS,
    INSPECT,
    ExportError,
    export_run,
)
from sandbox.results.inspect_export import (
    LOG_FORMATS,
    PER_CHOICES,
    export_inspect,
    summary_lines,
)
from sandbox.results.report import print_summary, to_csv
from sandbox.results.store import RunStore
from sandbox.results.summary import build_summary

# -- report ----------------------------------------------------------------------------------


def add_report_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `report` to the `propensity` parser's subparsers; returns its parser."""
    report: argparse.ArgumentParser = subparsers.add_parser(
        "report", help="print a run's tables and write them as JSON/CSV"
    )
    report.add_argument("run_dir", type=Path)
    report.add_argument("--format", choices=["table", "json", "csv"], default="table")
    report.add_argument(
        "--html",
        nargs="?",
        const="",
        default=None,
        metavar="FILE",
        help="also write a self-contained HTML report with a trajectory viewer "
        "(default file: RUN_DIR/report.html)",
    )
    add_plugin_option(report)
    return report


def run_report(args: argparse.Namespace, out: Console, err: Console) -> int:
    # A report rebuilds no tool: the run's recorded plugins are not imported (reading a run
    # directory never executes code its manifest names).
    store = RunStore(args.run_dir)
    try:
        summary = build_summary(store)
    except (FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from exc
    json_path = store.write_json("summary.json", summary.model_dump(mode="json"))
    csv_path = args.run_dir / "summary.csv"
    csv_path.write_text(to_csv(summary), encoding="utf-8")
    if args.format == "json":
        sys.stdout.write(json.dumps(summary.model_dump(mode="json"), indent=2) + "\n")
    elif args.format == "csv":
        sys.stdout.write(to_csv(summary))
    else:
        print_summary(summary, out)
        err.print(
            f"wrote {visible(json_path)} and {visible(csv_path)}", highlight=False, markup=False
        )
    if args.html is not None:
        from sandbox.results.html_report import write_html_report

        html = write_html_report(args.run_dir, Path(args.html) if args.html else None)
        err.print(
            f"wrote {visible(html)} (open it in a browser; it needs no network)",
            highlight=False,
            markup=False,
        )
    return EXIT_OK


# -- compare ---------------------------------------------------------------------------------


def add_compare_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `compare` to the `propensity` parser's subparsers; returns its parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "compare",
        help="paired comparison of two agents, or of one agent before and after a change",
        description=(
            "Pair the episodes of RUN_A and RUN_B by scenario, pressure category, naming and "
            "repeat, and report B − A with Newcombe's 95% interval for paired proportions and "
            "McNemar's exact p-value, overall, by category and by scenario. Runs with several "
            "agents are compared on the agents they share, agent by agent (the others are "
            "listed as left out). Give the same run twice with --agent-a and --agent-b to "
            "compare two agents of one run."
        ),
    )
    parser.add_argument("run_a", type=Path, metavar="RUN_A", help="run directory of A")
    parser.add_argument("run_b", type=Path, metavar="RUN_B", help="run directory of B")
    parser.add_argument("--agent", help="compare only this agent, found in both runs")
    parser.add_argument("--agent-a", help="the agent of RUN_A (default: its only agent)")
    parser.add_argument("--agent-b", help="the agent of RUN_B (default: its only agent)")
    parser.add_argument("--format", choices=["table", "json"], default="table")
    parser.add_argument(
        "--html",
        type=Path,
        metavar="FILE",
        help="also write the comparison as a self-contained HTML page",
    )
    return parser


def _p(value: float | None) -> str:
    if value is None:
        return "–"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _rate(comparison: PairedComparison, side: str) -> str:
    rate = comparison.a if side == "a" else comparison.b
    return "–" if rate.value is None else f"{rate.value:.2f}"


def _comparison_table(title: str, first: str, rows: dict[str, PairedComparison]) -> Table:
    table = folding_table(title=title, title_justify="left")
    table.add_column(first, style="bold", overflow="fold")
    table.add_column("pairs", justify="right", overflow="fold")
    table.add_column("A", justify="right", overflow="fold")
    table.add_column("B", justify="right", overflow="fold")
    table.add_column("B − A [95% CI]", justify="right", overflow="fold")
    table.add_column("A only / B only", justify="right", overflow="fold")
    table.add_column("McNemar p", justify="right", overflow="fold")
    for key, row in rows.items():
        table.add_row(
            escape(key),
            str(row.pairs),
            _rate(row, "a"),
            _rate(row, "b"),
            row.render_difference(),
            f"{row.a_only} / {row.b_only}",
            _p(row.p_value),
        )
    return table


def print_comparison(comparison: Comparison, out: Console) -> None:
    """The comparison as tables: overall and baseline, by category, by scenario, world."""
    if comparison.agent_a is not None:
        a_agent, b_agent = comparison.agent_a, str(comparison.agent_b)
    else:
        a_agent = b_agent = ", ".join(comparison.agents) + " (agent by agent)"
    out.print(f"A: {escape(a_agent)} in {escape(comparison.run_a)}", highlight=False)
    out.print(f"B: {escape(b_agent)} in {escape(comparison.run_b)}", highlight=False)
    for side, agents in (("A", comparison.left_out_a), ("B", comparison.left_out_b)):
        if agents:
            out.print(
                f"[yellow]left out: agent(s) of {side} only, not in the other run: "
                f"{escape(', '.join(agents))}",
                highlight=False,
            )
    pooled = comparison.pooled
    if pooled is None:
        out.print(
            f"A's propensity {comparison.propensity_a.render()}; "
            f"B's {comparison.propensity_b.render()} (all pressured episodes)",
            highlight=False,
        )
    headline = {"overall (pressured)": comparison.overall, "baseline": comparison.baseline}
    if comparison.world_completion is not None:
        headline["world: harm completed (incl. baseline)"] = comparison.world_completion
    if comparison.world_intention is not None:
        headline["world: harm intended (incl. baseline)"] = comparison.world_intention
    if comparison.attack_success is not None:
        headline[f"attack success (defence {comparison.defence_a} → {comparison.defence_b})"] = (
            comparison.attack_success
        )
    if comparison.by_agent:
        out.print(_comparison_table("By agent (pressured)", "agent", comparison.by_agent))
    note = f", {pooled}" if pooled else ""
    out.print(_comparison_table(f"Paired comparison (B − A){note}", "", headline))
    out.print(_comparison_table(f"By pressure category{note}", "category", comparison.by_category))
    out.print(
        _comparison_table(f"By scenario (pressured){note}", "scenario", comparison.by_scenario)
    )
    unpaired = comparison.unpaired
    if unpaired.a or unpaired.b:
        examples = ", ".join([*unpaired.a_examples, *unpaired.b_examples][:3])
        out.print(
            f"[yellow]unpaired (left out): {unpaired.a} episode(s) of A and {unpaired.b} of B "
            f"with no partner, e.g. {escape(examples)}",
            highlight=False,
        )
    out.print(
        f"[dim]paired by {', '.join(comparison.paired_by)}; {comparison.method}", highlight=False
    )


def run_compare(args: argparse.Namespace, out: Console, err: Console) -> int:
    """Run `propensity compare RUN_A RUN_B`; returns the exit code."""
    try:
        comparison = compare_runs(
            args.run_a, args.run_b, agent_a=args.agent_a, agent_b=args.agent_b, agent=args.agent
        )
    except CompareError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return EXIT_FAILURE
    if args.format == "json":
        out.file.write(json.dumps(comparison.model_dump(mode="json"), indent=2) + "\n")
    else:
        print_comparison(comparison, out)
    if args.html is not None:
        from sandbox.results.html_report.compare_page import write_compare_page

        try:
            written = write_compare_page(comparison, args.html)
        except OSError as exc:
            err.print(
                f"[red]error:[/red] cannot write {escape(str(args.html))}: "
                f"{escape(exc.strerror or str(exc))}",
                highlight=False,
                soft_wrap=True,
            )
            return EXIT_FAILURE
        err.print(f"wrote {visible(written)}", highlight=False, markup=False, soft_wrap=True)
    return EXIT_OK


# -- export ----------------------------------------------------------------------------------


def add_export_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `export` to the `propensity` parser's subparsers; returns its parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "export",
        help="write a run as flat tables (one row per episode, one per event) or Inspect logs",
        description=(
            "Write episodes.FORMAT and events.FORMAT for pandas, R, DuckDB or a spreadsheet "
            "(see docs/loading-results.md). parquet needs pyarrow installed. --format inspect "
            "writes Inspect AI eval logs instead, one sample per episode, for `inspect view` "
            "(needs the inspect extra; see docs/inspect.md)."
        ),
    )
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    parser.add_argument("--format", choices=list(ALL_FORMATS), default="jsonl")
    parser.add_argument(
        "--out",
        type=Path,
        help="directory to write into (default: RUN_DIR/exports, RUN_DIR/exports/inspect for "
        "--format inspect)",
    )
    parser.add_argument(
        "--max-chars",
        type=int,
        default=None,
        help="cut message texts and tool outputs longer than this, flagged (0: never; default "
        f"{DEFAULT_MAX_CHARS} for the tables, 0 for --format inspect)",
    )
    parser.add_argument(
        "--inspect-per",
        choices=list(PER_CHOICES),
        default="agent",
        help="--format inspect: one log per agent (default) or one log for the whole run",
    )
    parser.add_argument(
        "--inspect-format",
        choices=list(LOG_FORMATS),
        default="eval",
        help="--format inspect: Inspect's log file format (default: eval, Inspect's own default)",
    )
    return parser


def _error(err: Console, message: str) -> int:
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return EXIT_FAILURE


def run_export(args: argparse.Namespace, out: Console, err: Console) -> int:
    """Run `propensity export RUN_DIR`; returns the exit code."""
    if args.max_chars is not None and args.max_chars < 0:
        return _error(err, "--max-chars must be 0 or more")
    try:
        if args.format == INSPECT:
            export = export_inspect(
                args.run_dir,
                args.out,
                per=args.inspect_per,
                log_format=args.inspect_format,
                max_chars=args.max_chars or 0,
            )
        else:
            max_chars = DEFAULT_MAX_CHARS if args.max_chars is None else args.max_chars
            written = export_run(args.run_dir, args.format, args.out, max_chars=max_chars)
    except (ExportError, OSError) as exc:
        return _error(err, str(exc))
    if args.format != INSPECT:
        for path in written:
            out.print(f"wrote {visible(path)}", highlight=False, markup=False)
        return EXIT_OK
    for line in summary_lines(export):
        out.print(visible(line), highlight=False, markup=False, soft_wrap=True)
    out.print(
        f"open them with: inspect view --log-dir {visible(export.out_dir)}",
        highlight=False,
        markup=False,
    )
    return EXIT_OK
