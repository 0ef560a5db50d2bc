"""The `propensity` command line.

Every failure a user can cause (a bad path, an invalid scenario, an unknown agent, a run
directory in the wrong state) ends in one clear message and a non-zero exit, never a traceback;
set PROPENSITY_DEBUG=1 to see the traceback anyway.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from sandbox.agents import AGENT_KINDS
from sandbox.cli_import import add_import_parser, run_import
from sandbox.cli_models import add_models_parser, run_models
from sandbox.cli_replay import add_replay_parser, run_replay
from sandbox.cli_results import add_compare_parser, add_export_parser, run_compare, run_export
from sandbox.config import RunConfig, Shard
from sandbox.console import folding_table, make_console
from sandbox.merge import MergeError, merge_runs
from sandbox.orchestrator import RunError, default_run_dir, resume_run, start_run
from sandbox.plugins import (
    PluginError,
    differing_run_inputs,
    load_plugins,
    restore_run_inputs,
)
from sandbox.pressure import ALL_CATEGORIES, MIXED
from sandbox.progress import ConsoleProgress
from sandbox.replay import BranchError, ReplaySourceError
from sandbox.report import print_summary, to_csv
from sandbox.store import RunStore
from sandbox.summary import build_summary
from scenarios.loader import ScenarioLoadError, builtin_packs, load_pack, read_pack_contents
from tools import default_registry
from tools.execution import SandboxLimits

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    pass


def _csv_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _levels(text: str) -> list[int]:
    """``--levels``: comma-separated levels and ranges (``1,3,5-7``), in increasing order;
    anything else is a ``CliError`` naming the part (range and order are checked again by
    ``PressureSchedule``)."""
    usage = "give whole numbers and ranges, comma-separated, e.g. --levels 1-10 or 2,4,6-8"
    levels: list[int] = []
    for part in _csv_list(text):
        bounds = part.split("-")
        if len(bounds) > 2 or not all(b.strip().isascii() and b.strip().isdigit() for b in bounds):
            raise CliError(f"--levels {text!r}: {part!r} is not a level or a range ({usage})")
        low, high = int(bounds[0]), int(bounds[-1])
        if high < low:
            raise CliError(
                f"--levels {text!r}: the range {part!r} goes down; pressure escalates, so write "
                f"it as {high}-{low}"
            )
        levels.extend(range(low, high + 1))
    if not levels:
        raise CliError(f"--levels {text!r}: no level given ({usage})")
    from itertools import pairwise

    drop = next(((a, b) for a, b in pairwise(levels) if b < a), None)
    if drop is not None:
        raise CliError(
            f"--levels {text!r}: levels must not decrease ({drop[0]} then {drop[1]}): pressure "
            "escalates, and by-level results count an episode at every level up to the one it "
            f"reached; give them in increasing order ({','.join(map(str, sorted(levels)))})"
        )
    return levels


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="propensity",
        description="Measure what an AI agent would do when handed risky tools under pressure.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a propensity suite against one or more agents")
    run.add_argument("--suite", help="built-in pack name (e.g. starter) or a path to a pack")
    run.add_argument(
        "--agent",
        action="append",
        default=[],
        help="agent spec; repeat for several agents (see `propensity list agents`)",
    )
    run.add_argument("--config", type=Path, help="YAML/JSON run configuration to start from")
    run.add_argument("--out", type=Path, help="run directory (default: runs/<time>-<suite>-<id>)")
    run.add_argument("--resume", type=Path, metavar="RUN_DIR", help="finish an interrupted run")
    run.add_argument(
        "--retry-errored", action="store_true", help="with --resume, re-run errored episodes too"
    )
    run.add_argument("--concurrency", type=int, help="episodes run at once (default 16)")
    run.add_argument("--limit", type=int, help="use only the first N scenarios of the suite")
    run.add_argument("--scenario", action="append", default=[], help="run only this scenario id")
    run.add_argument(
        "--pressure",
        help=f"comma-separated categories ({', '.join(ALL_CATEGORIES)}, {MIXED}); default: all six",
    )
    run.add_argument("--no-baseline", action="store_true", help="skip zero-pressure episodes")
    run.add_argument("--naming", help="harmful,benign (default both)")
    run.add_argument("--levels", help="pressure levels to visit, e.g. 1-10 or 2,4,6,8,10")
    run.add_argument("--messages-per-level", type=int)
    run.add_argument(
        "--trigger",
        choices=["turn", "failed-aligned-call"],
        help="when the next pressure message is due (default: after every agent turn)",
    )
    run.add_argument("--repeats", type=int, help="repeats of every episode (default 1)")
    run.add_argument(
        "--max-turns",
        type=int,
        help="most agent turns in any episode, a safety stop (default 40); a pressured episode "
        "normally ends one turn after its last pressure message",
    )
    run.add_argument(
        "--baseline-turns",
        type=int,
        help="agent turns of a zero-pressure baseline episode (default: as many as a pressured "
        "episode of the schedule gets, so the two differ in pressure only)",
    )
    run.add_argument("--call-timeout", type=float, help="seconds per LLM call (default 120)")
    run.add_argument("--episode-timeout", type=float, help="seconds per episode (default 900)")
    run.add_argument("--max-attempts", type=int, help="attempts per LLM call (default 6)")
    run.add_argument("--shard", help="run shard I of N (1-based), e.g. 2/4; merge them later")
    run.add_argument("--seed", type=int)
    run.add_argument("--api-base", help="base URL of an OpenAI-compatible server")
    run.add_argument("--api-key-env", help="name of the environment variable holding the API key")
    run.add_argument(
        "--tool-protocol",
        choices=["auto", "native", "text"],
        help="native function calling, a text protocol, or auto (default: native, and an "
        "episode switches to text only when the provider says the model takes no tools)",
    )
    run.add_argument(
        "--recover-calls",
        choices=["auto", "off"],
        help="read tool calls a model wrote in its text instead of natively (default auto)",
    )
    run.add_argument("--temperature", type=float)
    run.add_argument("--max-tokens", type=int)
    run.add_argument("--quiet", action="store_true", help="no progress display")
    run.add_argument(
        "--environment",
        choices=["docker", "local"],
        help="where code-interpreter tasks run (default docker; local is NOT a security boundary)",
    )
    run.add_argument(
        "--unsafe-local",
        action="store_true",
        help="allow resource-exhaustion code tasks in the local environment",
    )
    run.add_argument("--sandbox-timeout", type=float, help="seconds per code execution (5)")
    run.add_argument("--sandbox-memory", type=int, help="MiB of memory+swap per sandbox (256)")
    run.add_argument("--sandbox-pool", type=int, help="warm sandbox containers (4)")
    run.add_argument(
        "--sandbox-fresh",
        action="store_true",
        help="a fresh container for every code episode instead of a warm one reset in between",
    )
    run.add_argument("--judge-model", help="litellm model judging replies that ran no code")
    run.add_argument("--judge-api-base", help="OpenAI-compatible server of the judge model")
    run.add_argument(
        "--toolkits",
        action="append",
        default=[],
        metavar="PATH",
        help="toolkit specs for emulated tools (our YAML/JSON, or ToolEmu's all_toolkits.json)",
    )
    run.add_argument("--emulator-model", help="litellm model that emulates toolkit tools")
    run.add_argument("--emulator-api-base", help="OpenAI-compatible server of the emulator")
    run.add_argument("--emulator-mode", choices=["standard", "adversarial"])
    run.add_argument("--cache-dir", help="emulator/judge response cache (PROPENSITY_CACHE_DIR)")

    report = sub.add_parser("report", help="print a run's tables and write them as JSON/CSV")
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

    merge = sub.add_parser(
        "merge",
        help="merge shards of one run, or runs of one suite with other agents, into one run",
        description=(
            "Combine run directories into one run with one report: the shards of a run "
            "(--shard i/N), or runs of the same suite and settings that differ in their agents "
            "(e.g. an agent added later). Settings that decide what an episode measures must be "
            "equal (each difference is listed); an episode found in two runs is refused."
        ),
    )
    merge.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    merge.add_argument("--out", type=Path, required=True)

    validate = sub.add_parser(
        "validate", help="check scenario files and report every problem and warning"
    )
    validate.add_argument("path")
    validate.add_argument(
        "--strict", action="store_true", help="fail on warnings too (exit status 1)"
    )
    validate.add_argument(
        "--toolkits", action="append", default=[], metavar="PATH",
        help="toolkit specs of open scenarios' emulated toolkits, as `run --toolkits` takes: "
        "their world graphs are checked against the tools' qualified names and parameters",
    )  # fmt: skip

    tools_cmd = sub.add_parser("tools", help="tool emulators: list, try one, scaffold a new one")
    tools_sub = tools_cmd.add_subparsers(dest="tools_command", required=True)
    tools_list = tools_sub.add_parser("list", help="registered backends and Python toolkits")
    tools_try = tools_sub.add_parser("try", help="run one tool once, outside any episode")
    tools_try.add_argument("name", help="qualified tool name, e.g. BankLedgerTransfer")
    tools_try.add_argument("--args", default="{}", help="arguments as a JSON object")
    tools_try.add_argument("--seed", default="{}", help="the toolkit's starting world (JSON)")
    for parser_with_toolkits in (tools_list, tools_try):
        parser_with_toolkits.add_argument(
            "--toolkits", action="append", default=[], metavar="PATH",
            help="toolkit specs of LLM-emulated tools (our YAML/JSON or ToolEmu's JSON)",
        )  # fmt: skip
    tools_try.add_argument("--emulator-model", help="litellm model emulating toolkit tools")
    tools_try.add_argument("--emulator-api-base", help="its OpenAI-compatible server")
    tools_try.add_argument(
        "--emulator-mode", choices=["standard", "adversarial"], default="standard"
    )
    tools_new = tools_sub.add_parser("new", help="scaffold a Python tool emulator and its test")
    tools_new.add_argument("name", help="CamelCase toolkit name, e.g. Greenhouse")
    tools_new.add_argument("--dir", type=Path, default=Path("."), help="where to write it")
    for parser_with_plugins in (run, validate, tools_list, tools_try, report, merge):
        _add_plugin_option(parser_with_plugins)

    cache = sub.add_parser("cache", help="the emulator/judge response cache: stats or prune")
    cache.add_argument("action", choices=["stats", "prune"])
    cache.add_argument("--dir", help="cache directory (default: PROPENSITY_CACHE_DIR or ~/.cache)")
    cache.add_argument("--older-than-days", type=float, help="prune: drop entries older than this")
    cache.add_argument("--max-mb", type=float, help="prune: drop oldest entries until under this")

    images = sub.add_parser("images", help="container images for containerized tools")
    images_sub = images.add_subparsers(dest="images_command", required=True)
    build = images_sub.add_parser(
        "build", help="build the images (bootstraps a Debian base when no registry answers)"
    )
    build.add_argument("--force", action="store_true", help="rebuild even if up to date")
    build.add_argument("--no-start-engine", action="store_true", help="never start dockerd")

    gc = sub.add_parser("gc", help="remove sandbox containers left behind (e.g. after a crash)")
    gc.add_argument(
        "--all", action="store_true", help="also remove containers of runs still in progress"
    )

    add_import_parser(sub)
    add_models_parser(sub)
    add_replay_parser(sub)
    add_compare_parser(sub)
    add_export_parser(sub)

    listing = sub.add_parser("list", help="show packs, scenarios, tools or agents")
    listing.add_argument(
        "what", nargs="?", choices=["packs", "scenarios", "tools", "agents"], default="packs"
    )
    listing.add_argument("--suite", default=None, help="pack for `scenarios` and `tools`")
    _add_plugin_option(listing)
    return parser


def _add_plugin_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first (registers its toolkits); also PROPENSITY_PLUGINS. A run "
        "records its plugins: --resume, replay verify --against sandbox, replay branch and "
        "merge load them again (never from inside a run directory)",
    )


def _config_from_args(args: argparse.Namespace) -> RunConfig:
    data: dict[str, Any] = {}
    if args.config is not None:
        try:
            loaded = yaml.safe_load(args.config.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise CliError(f"cannot read {args.config}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise CliError(f"{args.config}: expected a mapping of run settings")
        data = loaded
    if args.suite:
        data["suite"] = args.suite
    if args.agent:
        agent_options: dict[str, Any] = {}
        for option in ("api_base", "api_key_env", "tool_protocol", "temperature", "max_tokens"):
            value = getattr(args, option)
            if value is not None:
                agent_options[option] = value
        data["agents"] = [{"spec": spec, **agent_options} for spec in args.agent]
    if "suite" not in data:
        raise CliError("--suite is required (a built-in pack such as `starter`, or a path)")
    if not data.get("agents"):
        raise CliError("at least one --agent is required (see `propensity list agents`)")
    schedule: dict[str, Any] = dict(data.get("schedule") or {})
    if args.levels:
        schedule["levels"] = _levels(args.levels)
    if args.messages_per_level is not None:
        schedule["messages_per_level"] = args.messages_per_level
    if args.trigger:
        schedule["trigger"] = args.trigger.replace("-", "_")
    if args.baseline_turns is not None:
        schedule["baseline_turns"] = args.baseline_turns
    data["schedule"] = schedule
    simple = {
        "concurrency": args.concurrency,
        "limit": args.limit,
        "repeats": args.repeats,
        "max_turns": args.max_turns,
        "call_timeout_s": args.call_timeout,
        "episode_timeout_s": args.episode_timeout,
        "seed": args.seed,
    }
    data.update({k: v for k, v in simple.items() if v is not None})
    if args.scenario:
        data["scenario_ids"] = args.scenario
    if args.pressure:
        data["categories"] = _csv_list(args.pressure)
    if args.no_baseline:
        data["include_baseline"] = False
    if args.naming:
        data["namings"] = _csv_list(args.naming)
    if args.max_attempts is not None:
        data.setdefault("retry", {})["max_attempts"] = args.max_attempts
    if args.shard:
        data["shard"] = Shard.parse(args.shard).model_dump()
    for option, key in (
        ("environment", "environment"),
        ("sandbox_pool", "sandbox_pool"),
        ("judge_model", "judge_model"),
        ("judge_api_base", "judge_api_base"),
        ("emulator_model", "emulator_model"),
        ("emulator_api_base", "emulator_api_base"),
        ("emulator_mode", "emulator_mode"),
        ("cache_dir", "cache_dir"),
        ("recover_calls", "recover_calls"),
    ):
        if getattr(args, option) is not None:
            data[key] = getattr(args, option)
    if args.toolkits:
        data["toolkit_paths"] = [str(Path(p).resolve()) for p in args.toolkits]
    if args.unsafe_local:
        data["unsafe_local"] = True
    if args.sandbox_fresh:
        data["sandbox_fresh"] = True
    sandbox = dict(data.get("sandbox") or {})
    if args.sandbox_timeout is not None:
        sandbox["timeout_s"] = args.sandbox_timeout
    if args.sandbox_memory is not None:
        sandbox["memory_mb"] = args.sandbox_memory
    data["sandbox"] = sandbox
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}" for e in exc.errors()
        )
        raise CliError(f"invalid run configuration: {problems}") from None


def _cmd_run(args: argparse.Namespace, out: Console, err: Console) -> int:
    progress = ConsoleProgress(err) if not args.quiet else None
    if args.resume is not None:
        if args.suite or args.agent or args.config:
            raise CliError("--resume takes its configuration from the run directory's manifest")
        coroutine = resume_run(
            args.resume,
            retry_errored=args.retry_errored,
            concurrency=args.concurrency,
            progress=progress,
            log=lambda text: err.print(text, highlight=False, markup=False, soft_wrap=True),
        )
    else:
        if args.retry_errored:
            raise CliError("--retry-errored only makes sense with --resume")
        config = _config_from_args(args)
        run_dir = args.out or default_run_dir(config.suite)
        # start_run says "run directory: ..." once it has made it (not before a refusal).
        coroutine = start_run(
            config,
            run_dir,
            progress=progress,
            argv=sys.argv,
            log=lambda text: err.print(text, highlight=False, markup=False, soft_wrap=True),
        )
    # SIGTERM stops a run like Ctrl-C does: its containers are removed and its local model
    # servers stopped on the way out, and it can be resumed; the exit status says which signal
    # (128 + its number: 130 for SIGINT, 143 for SIGTERM), as a shell would.
    stopped_by = [signal.SIGINT]

    def _terminate(signum: int, frame: object) -> None:
        stopped_by[0] = signal.Signals(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    try:
        if progress is not None:
            with progress:
                result = asyncio.run(coroutine)
        else:
            result = asyncio.run(coroutine)
    except KeyboardInterrupt:
        # The directory really used (a default one too), on one line that can be copied.
        target = args.resume if args.resume is not None else run_dir
        err.print(
            f"[yellow]interrupted; finish it with: propensity run --resume {escape(str(target))}",
            soft_wrap=True,
            highlight=False,
        )
        return 128 + int(stopped_by[0])
    print_summary(result.summary, out)
    if result.summary.errored:
        err.print(
            f"[yellow]{result.summary.errored} episode(s) errored (infrastructure, not scored); "
            "re-run them with: propensity run --resume "
            f"{escape(str(result.run_dir))} --retry-errored",
            soft_wrap=True,
            highlight=False,
        )
    err.print(f"results in {result.run_dir}", highlight=False, markup=False)
    return EXIT_OK


def _warn(err: Console) -> Callable[[str], None]:
    return lambda text: err.print(
        f"[yellow]warning:[/yellow] {escape(text)}", highlight=False, soft_wrap=True
    )


def _cmd_report(args: argparse.Namespace, out: Console, err: Console) -> int:
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
        err.print(f"wrote {json_path} and {csv_path}", highlight=False, markup=False)
    if args.html is not None:
        from sandbox.html_report import write_html_report

        html = write_html_report(args.run_dir, Path(args.html) if args.html else None)
        err.print(
            f"wrote {html} (open it in a browser; it needs no network)",
            highlight=False,
            markup=False,
        )
    return EXIT_OK


def _cmd_merge(args: argparse.Namespace, out: Console, err: Console) -> int:
    warn = _warn(err)
    # The runs' recorded plugins and toolkit modules: the merge loads their pack, whose Python
    # toolkits they register. Imported through the guard (never from inside a run directory);
    # one that cannot be imported is a warning here.
    for run_dir in args.run_dirs:
        restore_run_inputs(run_dir, required=False, check_files=False, warn=warn)
    for problem in differing_run_inputs(args.run_dirs):
        warn(problem)
    try:
        summary = merge_runs(
            args.run_dirs,
            args.out,
            log=lambda text: err.print(text, highlight=False, markup=False, soft_wrap=True),
        )
    except MergeError as exc:
        raise CliError(str(exc)) from exc
    print_summary(summary, out)
    if summary.incomplete:
        err.print(
            f"{summary.incomplete} of the {summary.episodes} episodes of the merged run are not "
            f"finished (counted as incomplete): the merged run is partial; finish it with "
            f"propensity run --resume {args.out}",
            style="yellow",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    err.print(f"merged {len(args.run_dirs)} run(s) into {args.out}", highlight=False, markup=False)
    return EXIT_OK


def _cmd_validate(args: argparse.Namespace, out: Console, err: Console) -> int:
    """Print every warning (``warning: FILE [SCENARIO] FIELD: MESSAGE``) and every error
    (``error: ...``) in a pack; exit 1 on any error, or with ``--strict`` on any warning too.
    Tools backed by a registered toolkit are checked against the toolkit's own parameters, and
    open scenarios' world graphs against the emulated toolkits' specs (``--toolkits``)."""
    from sandbox.orchestrator import toolkit_tools

    toolkits = toolkit_tools(_toolkit_library(args.toolkits)) if args.toolkits else None
    contents = read_pack_contents(
        args.path, parameters_of=default_registry.parameters_of, toolkits=toolkits
    )
    scenarios = contents.scenarios
    messages = [str(problem) for problem in contents.problems]
    messages += [f"{args.path}: {text}" for s in scenarios for text in default_registry.check(s)]
    for task in contents.code_tasks:
        try:
            SandboxLimits.model_validate(task.sandbox)
        except ValidationError as exc:
            messages += [
                f"{args.path} [{task.id}] sandbox.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                for e in exc.errors()
            ]
    for warning in contents.warnings:
        err.print(f"warning: {warning}", highlight=False, markup=False, soft_wrap=True)
    for message in messages:
        err.print(f"error: {message}", highlight=False, markup=False, soft_wrap=True)
    warned = len(contents.warnings)
    failing = len(messages) + (warned if args.strict else 0)
    if failing:
        if args.strict:
            said = (
                f"{failing} problem(s) found in {args.path} ({warned} of them warning(s), "
                "counted by --strict)"
            )
        else:
            also = f", and {warned} warning(s)" if warned else ""
            said = f"{failing} error(s) found in {args.path}{also}"
        err.print(f"[red]{escape(said)}", highlight=False)
        return EXIT_FAILURE
    noted = f", {warned} warning(s)" if warned else ""
    out.print(
        f"OK: {len(scenarios)} scenario(s) and {len(contents.code_tasks)} code task(s) "
        f"in {args.path}{noted}",
        highlight=False,
        markup=False,
    )
    return EXIT_OK


def _cmd_list(args: argparse.Namespace, out: Console, err: Console) -> int:
    if args.what == "agents":
        table = folding_table("agent spec", "what it is", title="Agents")
        for kind, description in AGENT_KINDS:
            table.add_row(kind, description)
        out.print(table)
        return EXIT_OK
    if args.what == "packs":
        table = folding_table(
            "pack", "scenarios", "code tasks", "domains / resources", title="Packs"
        )
        for name in builtin_packs():
            pack = load_pack(name)
            kinds = {s.domain for s in pack.scenarios} | {t.resource.value for t in pack.code_tasks}
            table.add_row(
                name, str(len(pack.scenarios)), str(len(pack.code_tasks)), ", ".join(sorted(kinds))
            )
        out.print(table)
        return EXIT_OK
    packs = [args.suite] if args.suite else builtin_packs()
    if args.what == "scenarios":
        table = folding_table(
            "pack", "id", "domain / resource", "title", title="Scenarios and code tasks"
        )
        for name in packs:
            pack = load_pack(name)
            for scenario in pack.scenarios:
                table.add_row(pack.name, scenario.id, scenario.domain, scenario.title)
            for task in pack.code_tasks:
                kind = f"{task.resource.value} ({task.framing.value})"
                table.add_row(pack.name, task.id, kind, task.title)
        out.print(table)
        return EXIT_OK
    backends = folding_table("backend", title="Tool backends")
    for backend in default_registry.backends:
        backends.add_row(backend)
    out.print(backends)
    table = folding_table(
        "pack", "scenario", "tool", "risk", "backend", "harmful / benign name", title="Tools"
    )
    for name in packs:
        pack = load_pack(name)
        for scenario in pack.scenarios:
            for tool in scenario.tools:
                names = f"{tool.harmful_name} / {tool.benign_name}" if tool.harmful_name else ""
                table.add_row(
                    pack.name, scenario.id, tool.name, tool.risk.value, tool.backend, names
                )
    out.print(table)
    return EXIT_OK


def _cmd_tools(args: argparse.Namespace, out: Console, err: Console) -> int:
    from sandbox.scaffold import scaffold

    if args.tools_command == "new":
        try:
            written = scaffold(args.name, args.dir)
        except (ValueError, FileExistsError) as exc:
            raise CliError(str(exc)) from exc
        for path in written:
            out.print(f"wrote {path}", highlight=False)
        module = written[0].stem
        out.print(
            f"next: PYTHONPATH={args.dir} python -m pytest {written[1]}\n"
            f"      PYTHONPATH={args.dir} propensity tools list --plugin {module}\n"
            "      (see docs/adding-a-tool-emulator.md)",
            highlight=False,
        )
        return EXIT_OK
    from tools.python_emulators import python_toolkits

    if args.tools_command == "list":
        backends = folding_table("backend", title="Tool backends")
        for backend in default_registry.backends:
            backends.add_row(backend)
        out.print(backends)
        table = folding_table("toolkit", "tool (call name)", "parameters", title="Python toolkits")
        for name, toolkit in sorted(python_toolkits().items()):
            spec = toolkit.spec()
            for tooldef in spec.tools:
                params = ", ".join(p.name for p in tooldef.parameters)
                table.add_row(name, spec.qualified_name(tooldef), params)
        out.print(table)
        if args.toolkits:
            emulated = folding_table(
                "toolkit", "tool (call name)", "parameters", title="Emulated toolkits"
            )
            for name, kit in sorted(_toolkit_library(args.toolkits).items()):
                for tooldef in kit.tools:
                    params = ", ".join(p.name for p in tooldef.parameters)
                    emulated.add_row(name, kit.qualified_name(tooldef), params)
            out.print(emulated)
        return EXIT_OK
    return asyncio.run(_try_tool(args, out))


def _toolkit_library(paths: list[str]) -> dict[str, Any]:
    from tools.emulated_backend import load_toolkit_library
    from tools.toolkits import ToolkitLoadError

    try:
        return load_toolkit_library(paths)
    except (OSError, ValueError, ToolkitLoadError) as exc:
        raise CliError(f"cannot load toolkits: {exc}") from exc


async def _try_tool(args: argparse.Namespace, out: Console) -> int:
    from scenarios.records import Naming, ToolCall
    from tools import ToolContext, ToolSet
    from tools.python_emulators import python_toolkits

    try:
        arguments = json.loads(args.args)
        seed = json.loads(args.seed)
    except json.JSONDecodeError as exc:
        raise CliError(f"--args and --seed take JSON objects: {exc}") from exc
    for toolkit in python_toolkits().values():
        spec = toolkit.spec()
        for tooldef in spec.tools:
            if args.name in (spec.qualified_name(tooldef), f"{spec.name}.{tooldef.name}"):
                toolset = ToolSet(toolkit.tools(seed, only=[tooldef.name]))
                ctx = ToolContext(episode_id="try", scenario=None, naming=Naming.HARMFUL)
                call = ToolCall(id="try", name=spec.qualified_name(tooldef), arguments=arguments)
                result = await toolset.execute(call, ctx)
                out.print_json(json.dumps(result.model_dump(mode="json")))
                return EXIT_OK if result.ok else EXIT_FAILURE
    for kit in _toolkit_library(args.toolkits).values():
        for tooldef in kit.tools:
            if args.name == kit.qualified_name(tooldef):
                return await _try_emulated(args, out, kit, tooldef, arguments)
    raise CliError(f"no tool {args.name!r} (see `propensity tools list`)")


async def _try_emulated(
    args: argparse.Namespace, out: Console, kit: Any, tooldef: Any, arguments: dict[str, Any]
) -> int:
    from scenarios.records import Naming, ToolCall
    from tools import ToolContext, ToolSet
    from tools.cache import ResponseCache, default_cache_dir
    from tools.emulated_backend import EMULATOR_KEY, EmulatedTool, EmulatorSession
    from tools.emulator import EmulationContext, EmulatorMode, LLMEmulator

    if not args.emulator_model:
        raise CliError(
            f"{args.name} is LLM-emulated: give --emulator-model (and --emulator-api-base)"
        )
    emulator = LLMEmulator(
        args.emulator_model,
        mode=EmulatorMode(args.emulator_mode),
        cache=ResponseCache(default_cache_dir()),
        api_base=args.emulator_api_base,
    )
    ctx = ToolContext(
        episode_id="try",
        scenario=None,
        naming=Naming.HARMFUL,
        environments={EMULATOR_KEY: EmulatorSession(emulator, EmulationContext())},
    )
    tool = EmulatedTool(kit, tooldef)
    result = await ToolSet([tool]).execute(
        ToolCall(id="try", name=tool.name, arguments=arguments), ctx
    )
    out.print_json(json.dumps(result.model_dump(mode="json")))
    return EXIT_OK if result.ok else EXIT_FAILURE


def _cmd_cache(args: argparse.Namespace, out: Console, err: Console) -> int:
    from tools.cache import ResponseCache, default_cache_dir

    cache = ResponseCache(Path(args.dir) if args.dir else default_cache_dir())
    if args.action == "prune":
        if args.older_than_days is None and args.max_mb is None:
            raise CliError("prune needs --older-than-days and/or --max-mb")
        removed = cache.prune(
            older_than_s=args.older_than_days * 86400 if args.older_than_days else None,
            max_bytes=int(args.max_mb * (1 << 20)) if args.max_mb else None,
        )
        out.print(f"removed {removed} cached response(s) from {cache.root}", highlight=False)
    stats = cache.stats()
    out.print(
        f"{cache.root}: {stats.entries} response(s), {stats.bytes / (1 << 20):.1f} MiB",
        highlight=False,
    )
    return EXIT_OK


def _cmd_images(args: argparse.Namespace, out: Console, err: Console) -> int:
    from containers import BuildError, ImageBuilder, code_interpreter_spec
    from sandbox.environments import EngineUnavailable, ensure_engine

    try:
        client = ensure_engine(start=not args.no_start_engine)
        tag = ImageBuilder(client, log=lambda text: err.print(text, highlight=False)).ensure(
            code_interpreter_spec(), force=args.force
        )
    except (EngineUnavailable, BuildError) as exc:
        raise CliError(str(exc)) from exc
    out.print(tag, highlight=False)
    return EXIT_OK


def _cmd_gc(args: argparse.Namespace, out: Console, err: Console) -> int:
    from sandbox.environments import EngineUnavailable, collect_garbage, ensure_engine

    try:
        removed = collect_garbage(ensure_engine(start=False), only_orphans=not args.all)
    except EngineUnavailable as exc:
        raise CliError(str(exc)) from exc
    out.print(f"removed {len(removed)} sandbox container(s)", highlight=False)
    return EXIT_OK


def _cmd_import(args: argparse.Namespace, out: Console, err: Console) -> int:
    return run_import(args)


_COMMANDS = {
    "run": _cmd_run,
    "report": _cmd_report,
    "merge": _cmd_merge,
    "validate": _cmd_validate,
    "list": _cmd_list,
    "images": _cmd_images,
    "tools": _cmd_tools,
    "cache": _cmd_cache,
    "gc": _cmd_gc,
    "import": _cmd_import,
    "models": run_models,
    "replay": run_replay,
    "compare": run_compare,
    "export": run_export,
}


# Failures a user can cause: one clear line, no traceback.
USER_ERRORS = (CliError, RunError, ScenarioLoadError, PluginError, ReplaySourceError, BranchError)
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


def _os_problem(exc: BaseException) -> str | None:
    """One line for a known machine failure (also inside an exception group), else None."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _os_problem(inner)
            if found is not None:
                return found
        return None
    if isinstance(exc, OSError) and exc.errno in _OS_PROBLEMS:
        where = f": {exc.filename}" if exc.filename else ""
        return (
            f"{_OS_PROBLEMS[exc.errno]}{where}. Free the resource, then continue an interrupted "
            "run with: propensity run --resume RUN_DIR"
        )
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
    except USER_ERRORS as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return EXIT_FAILURE
    except Exception as exc:
        if os.environ.get("PROPENSITY_DEBUG"):
            raise
        machine = _os_problem(exc)
        if machine is not None:
            err.print(f"[red]error:[/red] {escape(machine)}", highlight=False, soft_wrap=True)
            return EXIT_FAILURE
        err.print(
            f"[red]internal error:[/red] {type(exc).__name__}: {escape(str(exc))} "
            "(set PROPENSITY_DEBUG=1 for details)",
            highlight=False,
        )
        return EXIT_FAILURE


if __name__ == "__main__":
    raise SystemExit(main())
