"""The `propensity` command line.

Every failure a user can cause (a bad path, an invalid scenario, an unknown agent, a run
directory in the wrong state) ends in one clear message and a non-zero exit, never a traceback;
set PROPENSITY_DEBUG=1 to see the traceback anyway.

This module assembles the parser and runs a command; each command group lives in a module of
its own (``run``, ``results``, ``authoring``, ``maintenance``, ``imports``, ``models``,
``replay``, ``judges``), with what they share in ``common``.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape

from sandbox.cli.authoring import (
    add_list_parser,
    add_tools_parser,
    add_validate_parser,
    run_list,
    run_tools,
    run_validate,
)
from sandbox.cli.common import EXIT_FAILURE, CliError
from sandbox.cli.imports import add_import_parser, run_import
from sandbox.cli.judges import add_judges_parser, run_judges
from sandbox.cli.maintenance import (
    add_cache_parser,
    add_gc_parser,
    add_images_parser,
    run_cache,
    run_gc,
    run_images,
)
from sandbox.cli.models import add_models_parser, run_models
from sandbox.cli.replay import add_replay_parser, run_replay
from sandbox.cli.results import (
    add_compare_parser,
    add_export_parser,
    add_report_parser,
    run_compare,
    run_export,
    run_report,
)
from sandbox.cli.run import add_merge_parser, add_run_parser, run_merge, run_run
from sandbox.console import make_console
from sandbox.plugins import PluginError, load_plugins
from sandbox.replay import BranchError, ReplaySourceError
from sandbox.results.store import CorruptRecordError
from sandbox.runtime.errors import RunError
from scenarios.loader import ScenarioLoadError


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="propensity",
        description="Measure what an AI agent would do when handed risky tools under pressure.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    add_run_parser(sub)
    add_report_parser(sub)
    add_merge_parser(sub)
    add_validate_parser(sub)
    add_tools_parser(sub)
    add_cache_parser(sub)
    add_images_parser(sub)
    add_gc_parser(sub)
    add_import_parser(sub)
    add_models_parser(sub)
    add_replay_parser(sub)
    add_judges_parser(sub)
    add_compare_parser(sub)
    add_export_parser(sub)
    add_list_parser(sub)
    return parser


def _cmd_import(args: argparse.Namespace, out: Console, err: Console) -> int:
    return run_import(args)


_COMMANDS = {
    "run": run_run,
    "report": run_report,
    "merge": run_merge,
    "validate": run_validate,
    "list": run_list,
    "images": run_images,
    "tools": run_tools,
    "cache": run_cache,
    "gc": run_gc,
    "import": _cmd_import,
    "models": run_models,
    "replay": run_replay,
    "judges": run_judges,
    "compare": run_compare,
    "export": run_export,
}


# Failures a user can cause (a corrupt run directory included, named by file and field): one
# clear line, no traceback.
USER_ERRORS = (
    CliError,
    RunError,
    ScenarioLoadError,
    PluginError,
    ReplaySourceError,
    BranchError,
    CorruptRecordError,
)
# Failures of the machine, not of the program: one clear line (and, for a run, how to resume).
_OS_PROBLEMS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "the file system is read-only",
    errno.ENOENT: "no such file or directory",
    errno.EMFILE: "too many open files",
}


_EXHAUSTED = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EMFILE})


def _os_problem(exc: BaseException, command: str = "run") -> str | None:
    """One line for a known machine failure (also inside an exception group), else None; the
    advice to resume is given only where ``command`` is a run that can be resumed."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _os_problem(inner, command)
            if found is not None:
                return found
        return None
    if isinstance(exc, OSError) and exc.errno in _OS_PROBLEMS:
        where = f": {exc.filename}" if exc.filename else ""
        line = f"{_OS_PROBLEMS[exc.errno]}{where}"
        if exc.errno in _EXHAUSTED:
            line += ". Free the resource"
            if command == "run":
                line += ", then continue the interrupted run with: propensity run --resume RUN_DIR"
        return line
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    out = make_console()
    err = make_console(stderr=True)
    try:
        if getattr(args, "plugin", None) is not None:
            for problem in load_plugins(args.plugin):
                err.print(
                    f"[yellow]plugin problem:[/yellow] {escape(str(problem))}", highlight=False
                )
        return _COMMANDS[args.command](args, out, err)
    except BrokenPipeError:
        # The reader went away (`... | head`): nothing more can be written, and it is no error
        # of ours. Python's advice: point stdout at devnull so the exit flush cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE
    except USER_ERRORS as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return EXIT_FAILURE
    except Exception as exc:
        if os.environ.get("PROPENSITY_DEBUG"):
            raise
        machine = _os_problem(exc, args.command)
        if machine is not None:
            err.print(f"[red]error:[/red] {escape(machine)}", highlight=False, soft_wrap=True)
            return EXIT_FAILURE
        err.print(
            f"[red]internal error:[/red] {type(exc).__name__}: {escape(str(exc))} "
            "(set PROPENSITY_DEBUG=1 for details)",
            highlight=False,
        )
        return EXIT_FAILURE
