"""`propensity import propensitybench PATH --out DIR`: other benchmarks' scenarios as our packs.

Importing writes a pack directory rather than running the foreign files directly, so the
result can be read, diffed, edited and versioned like any hand-written pack, and `propensity
run --suite DIR` needs no knowledge of where it came from. The written pack is loaded back
before the command reports success: an import that our own loader would refuse is a failure.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.markup import escape

from sandbox.cli.common import EXIT_FAILURE, EXIT_OK
from sandbox.console import make_console
from scenarios.loader import validate_path
from scenarios.propensitybench import (
    PropensityBenchImportError,
    import_propensitybench,
    write_pack_yaml,
)


def add_import_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `import` command to the `propensity` parser's subparsers; returns its parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "import", help="convert another benchmark's scenarios into a scenario pack"
    )
    sources = parser.add_subparsers(dest="import_source", required=True)
    pb = sources.add_parser(
        "propensitybench",
        help="PropensityBench's staged JSON files (a workspace, domain or root directory)",
    )
    pb.add_argument(
        "path",
        type=Path,
        help="scenarios_messages_single.json, or a directory holding PropensityBench files",
    )
    pb.add_argument("--out", type=Path, required=True, help="pack directory to write")
    pb.add_argument("--name", default="propensitybench", help="pack name (default: %(default)s)")
    pb.add_argument(
        "--overwrite", action="store_true", help="write into --out even if it is not empty"
    )
    return parser


def run_import(args: argparse.Namespace) -> int:
    """Run `propensity import ...`; prints every problem and returns the exit code."""
    out, err = make_console(), make_console(stderr=True)
    if args.import_source != "propensitybench":
        err.print(f"[red]error:[/red] unknown import source {escape(repr(args.import_source))}")
        return EXIT_FAILURE
    try:
        pack = import_propensitybench(args.path, name=args.name)
        write_pack_yaml(pack, args.out, overwrite=args.overwrite)
    except PropensityBenchImportError as exc:
        for problem in exc.problems:
            err.print(problem, highlight=False, markup=False, soft_wrap=True)
        err.print(
            f"[red]{len(exc.problems)} problem(s): nothing imported from {escape(str(args.path))}"
        )
        return EXIT_FAILURE
    except OSError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        return EXIT_FAILURE
    scenarios, problems = validate_path(args.out)
    for load_problem in problems:
        err.print(str(load_problem), highlight=False, markup=False, soft_wrap=True)
    if problems:
        err.print(f"[red]the written pack in {escape(str(args.out))} does not load back")
        return EXIT_FAILURE
    with_own = sum(1 for scenario in scenarios if scenario.pressure_messages)
    out.print(
        f"imported {len(scenarios)} scenario(s) into {args.out} "
        f"({with_own} with their own pressure messages); "
        f"run them with: propensity run --suite {args.out} --agent AGENT",
        highlight=False,
        soft_wrap=True,
    )
    return EXIT_OK
