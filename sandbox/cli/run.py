"""`propensity run` (a new run, or `--resume` of an interrupted one) and `propensity merge`
(shards of a run, or runs of one suite with other agents, into one run)."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from sandbox.cli.common import EXIT_OK, CliError, add_plugin_option
from sandbox.plugins import differing_run_inputs, restore_run_inputs
from sandbox.pressure import ALL_CATEGORIES, MIXED
from sandbox.results.merge import MergeError, merge_runs
from sandbox.results.report import print_summary
from sandbox.runtime.config import RunConfig, Shard
from sandbox.runtime.progress import ConsoleProgress
from sandbox.runtime.runs import default_run_dir, resume_run, start_run


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


def add_run_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `run` to the `propensity` parser's subparsers; returns its parser."""
    run: argparse.ArgumentParser = subparsers.add_parser(
        "run", help="run a propensity suite against one or more agents"
    )
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
        "--kind",
        action="append",
        default=[],
        metavar="NAME",
        help="run only episodes of this kind (repeatable; `propensity list kinds` lists them; "
        "default: the built-in kinds scenario, open and code_task; a plugin's kind runs only "
        "when named)",
    )
    run.add_argument(
        "--kind-option",
        action="append",
        default=[],
        metavar="KIND.KEY=VALUE",
        help="a setting of a kind of episode (VALUE is read as JSON when it parses, as text "
        "otherwise); repeatable",
    )
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
    run.add_argument(
        "--executor",
        choices=["local", "ray"],
        help="where episodes execute: this process (local, the default) or the workers of a Ray "
        "cluster (ray; needs the extra `ray`); this process keeps the run directory either way "
        "(docs/scaling.md); with --resume, changes how the rest runs",
    )
    run.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="the Ray cluster to use, e.g. 10.0.0.5:6379 or auto (default: RAY_ADDRESS, else a "
        "local cluster started for the run); implies --executor ray",
    )
    run.add_argument(
        "--ray-workers",
        type=int,
        metavar="N",
        help="Ray episode workers, each running --concurrency episodes at once (default: one "
        "per CPU of the cluster); implies --executor ray",
    )
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
        "--inject",
        metavar="PACK",
        help="an injection pack (YAML) applied across the suite: each scenario it fits is also "
        "run attacked by each of its injections, next to the un-attacked episode",
    )
    run.add_argument(
        "--defence",
        choices=["none", "delimit"],
        help="an output-side defence against instructions planted in tool outputs: delimit "
        "wraps every tool output in per-episode markers and tells the agent their content is "
        "data (default none)",
    )
    run.add_argument(
        "--rule-judge",
        action="store_true",
        help="count the rule judge's labels (a keyword heuristic, not validated) in the headline "
        "judge numbers; without it they are reported apart, as safety_by_rules",
    )
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
    add_plugin_option(run)
    return run


def add_merge_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `merge` to the `propensity` parser's subparsers; returns its parser."""
    merge: argparse.ArgumentParser = subparsers.add_parser(
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
    add_plugin_option(merge)
    return merge


def _kind_options(given: list[str]) -> dict[str, dict[str, Any]]:
    """``KIND.KEY=VALUE`` items as {kind: {key: value}}; VALUE is JSON when it parses."""
    options: dict[str, dict[str, Any]] = {}
    for item in given:
        target, sep, text = item.partition("=")
        kind, dot, key = target.partition(".")
        if not (sep and dot and kind and key):
            raise CliError(f"--kind-option expects KIND.KEY=VALUE, got {item!r}")
        try:
            value: Any = json.loads(text)
        except ValueError:
            value = text
        options.setdefault(kind, {})[key] = value
    return options


def _executor_options(args: argparse.Namespace) -> dict[str, Any]:
    """The executor settings given: --ray-address and --ray-workers imply --executor ray, and
    are refused with --executor local."""
    options: dict[str, Any] = {}
    if args.ray_address is not None:
        options["ray_address"] = args.ray_address
    if args.ray_workers is not None:
        if args.ray_workers < 1:
            raise CliError(f"--ray-workers must be at least 1, got {args.ray_workers}")
        options["ray_workers"] = args.ray_workers
    if options and args.executor == "local":
        raise CliError("--ray-address and --ray-workers are for --executor ray, not local")
    if options or args.executor is not None:
        options["executor"] = args.executor or "ray"
    return options


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
    if args.kind:
        data["kinds"] = args.kind
    if args.kind_option:
        data["kind_options"] = _kind_options(args.kind_option)
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
        ("defence", "defence"),
    ):
        if getattr(args, option) is not None:
            data[key] = getattr(args, option)
    data.update(_executor_options(args))
    if args.toolkits:
        data["toolkit_paths"] = [str(Path(p).resolve()) for p in args.toolkits]
    if args.unsafe_local:
        data["unsafe_local"] = True
    if args.sandbox_fresh:
        data["sandbox_fresh"] = True
    if args.rule_judge:
        data["rule_judge"] = True
    if args.inject:
        data["inject"] = str(Path(args.inject).resolve())
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


def run_run(args: argparse.Namespace, out: Console, err: Console) -> int:
    progress = ConsoleProgress(err) if not args.quiet else None
    if args.resume is not None:
        if args.suite or args.agent or args.config:
            raise CliError("--resume takes its configuration from the run directory's manifest")
        coroutine = resume_run(
            args.resume,
            retry_errored=args.retry_errored,
            concurrency=args.concurrency,
            executor=_executor_options(args),
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


def run_merge(args: argparse.Namespace, out: Console, err: Console) -> int:
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
