"""`propensity replay rescore|verify|reexecute|branch`: recorded trajectories, replayed safely.

Replay never reaches a real system: `rescore` makes no model call (unless judge models are
named with `--judge-model`: then only those are called, to judge what was recorded), `verify`
re-executes calls only against recorded observations or our own proxy/Python backends,
`reexecute` runs code only in the Docker sandbox, and `branch` continues live only with tools
that are themselves safe.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from evaluators.agreement import render_panel
from evaluators.judges import HELPFULNESS_EVALUATOR, RULE_JUDGE_VALIDITY, SAFETY_EVALUATOR
from sandbox.agents import AgentSpec
from sandbox.cli.common import EXIT_FAILURE, EXIT_OK, CliError
from sandbox.console import folding_table
from sandbox.plugins import TOOL_ROLES, restore_run_inputs
from sandbox.pressure import ALL_CATEGORIES, BASELINE, MIXED
from sandbox.replay import (
    Recorded,
    ReplaySourceError,
    agreement_table,
    render_agreement,
    rescore,
    safety_pair,
    verify,
)
from sandbox.replay.judged_run import check_out_dir
from sandbox.replay.judging import JudgedEpisode, RejudgeResult
from sandbox.replay.rejudge import pair_endpoints, rejudge_records
from sandbox.replay.rescore import declares_no_risks, scored_counts
from sandbox.replay.sources import (
    SourceFormat,
    branchable_inspect_record,
    detect_format,
    read_sources,
    run_dir_of,
)
from sandbox.results.report import print_summary
from sandbox.runtime.config import EpisodeSpec, RunConfig
from sandbox.runtime.orchestrator import RunResult
from sandbox.runtime.progress import ConsoleProgress
from scenarios.records import Naming, Score
from tools.execution import SandboxLimits


def add_replay_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "replay", help="re-score, verify, re-execute or branch recorded trajectories"
    )
    modes = parser.add_subparsers(dest="replay_mode", required=True)

    rescore = modes.add_parser(
        "rescore",
        help="score recorded trajectories with today's evaluators (no model calls unless "
        "--judge-model names judges)",
    )
    rescore.add_argument(
        "inputs",
        nargs="+",
        type=Path,
        help="run directories, trajectory .jsonl files, ToolEmu dumps, PropensityBench "
        "result files, Inspect AI logs (.eval, .json), or directories of these",
    )
    rescore.add_argument(
        "--out",
        type=Path,
        help="write the scores as JSONL here; with --judge-model, a run directory to write "
        "(propensity report reads it)",
    )
    rescore.add_argument(
        "--agreement", action="store_true", help="compare our safety labels with recorded ones"
    )
    add_judge_options(rescore)

    verify = modes.add_parser(
        "verify", help="re-execute recorded tool calls and report where the environment differs"
    )
    verify.add_argument(
        "inputs", nargs="+", type=Path, help="any source rescore reads (see rescore --help)"
    )
    verify.add_argument(
        "--against",
        choices=["recorded", "sandbox"],
        default="recorded",
        help="recorded observations (any format) or our own tool backends (our runs)",
    )
    verify.add_argument("--out", type=Path, help="write the per-call report as JSONL here")

    reexecute = modes.add_parser(
        "reexecute", help="run a recorded code episode's calls again in the container sandbox"
    )
    reexecute.add_argument("run_dir", type=Path)
    reexecute.add_argument("--episode", required=True, help="episode id in the run directory")
    reexecute.add_argument("--sandbox-timeout", type=float, help="override the recorded limit")
    reexecute.add_argument("--sandbox-memory", type=int, help="override the recorded limit (MiB)")
    reexecute.add_argument("--out", type=Path, help="write the report (JSON) here")

    branch = modes.add_parser(
        "branch", help="keep a recorded episode's steps before K and continue live"
    )
    branch.add_argument(
        "run_dir",
        type=Path,
        help="a run directory, or an Inspect AI log exported from one of our runs",
    )
    branch.add_argument(
        "--episode",
        required=True,
        help="episode id in the run directory (in an Inspect log: the episode id or sample id)",
    )
    branch.add_argument(
        "--at",
        type=int,
        required=True,
        metavar="K",
        help="first step run live, counting agent turns from 1 (1: the whole episode live; "
        "at most the recorded steps + 1, where the recording said something after its last "
        "step that a new step can answer)",
    )
    branch.add_argument("--agent", required=True, help="agent for the live part (any --agent)")
    branch.add_argument("--api-base", default=None, help="OpenAI-compatible endpoint of --agent")
    branch.add_argument(
        "--pressure",
        choices=[*ALL_CATEGORIES, BASELINE, MIXED],
        help="pressure category for the live part (default: the recording's)",
    )
    branch.add_argument("--out", type=Path, required=True, help="run directory to write")
    for mode in (rescore, verify, reexecute, branch):
        mode.add_argument(
            "--plugin",
            action="append",
            default=[],
            metavar="MODULE",
            help="import MODULE first (registers its toolkits); also PROPENSITY_PLUGINS. The "
            "plugins a run recorded in its manifest are loaded without it",
        )
    return parser


def add_judge_options(rescore: argparse.ArgumentParser) -> None:
    judges = rescore.add_argument_group(
        "judge models",
        "re-judge open (ToolEmu-style) episodes with LLM judges; several --judge-model make a "
        "panel (median verdict, Krippendorff's alpha, the episodes judges disagree on)",
    )
    judges.add_argument(
        "--judge-model",
        action="append",
        default=[],
        metavar="MODEL",
        help="a litellm model (openai/NAME with --judge-api-base for any OpenAI-compatible "
        "server) or local/NAME; repeat for a panel",
    )
    judges.add_argument(
        "--judge-api-base",
        action="append",
        default=[],
        metavar="URL",
        help="endpoint of the judge models: once for all, or once per --judge-model in order",
    )
    judges.add_argument(
        "--concurrency", type=int, default=8, help="judge calls at once (default 8)"
    )
    judges.add_argument(
        "--judge-timeout",
        type=float,
        default=120.0,
        metavar="S",
        help="seconds one judge call may take (default 120)",
    )
    judges.add_argument(
        "--no-cache",
        action="store_true",
        help="call the judges even for answers the response cache holds (rerun stability)",
    )
    judges.add_argument("--cache-dir", type=Path, help="response cache (default: the shared one)")
    judges.add_argument(
        "--judge-temperature",
        type=float,
        default=0.0,
        metavar="T",
        help="the judges' sampling temperature, 0-2 (default 0: greedy)",
    )
    judges.add_argument(
        "--judge-seed",
        type=int,
        metavar="N",
        help="the judges' sampling seed, for providers that honour one (with a temperature "
        "above 0, another seed re-samples every answer: rerun stability)",
    )


class _JudgeProgress(ConsoleProgress):
    """The run progress display, counting judge calls instead of agent calls. Judge calls are
    not tied to one episode, so the ETA is the throughput so far: the time elapsed per episode
    finished, times the episodes left."""

    def status(self) -> str:
        return super().status().replace("agent calls", "judge calls", 1)

    def eta_s(self) -> float | None:
        with self._lock:
            finished = self.completed - self._finished_before
            if finished <= 0 or self._started_at is None:
                return None
            elapsed = self._clock() - self._started_at
            return elapsed / finished * max(0, self.total - self.completed)


def _spec(episode_id: str) -> EpisodeSpec:
    return EpisodeSpec(
        id=episode_id,
        scenario_id="",
        domain="",
        category="",
        naming=Naming.HARMFUL,
        agent="",
        repeat=0,
        seed=0,
    )


def _print_rejudged(result: RejudgeResult, out: Console) -> None:
    labels: Counter[tuple[str, str]] = Counter()
    for episode in result.episodes:
        for score in episode.scores:
            labels[(score.evaluator, str(score.label))] += 1
    table = folding_table(title="Labels", title_justify="left")
    for column in ("evaluator", "label", "episodes"):
        table.add_column(column, overflow="fold")
    for (evaluator, label), count in sorted(labels.items()):
        table.add_row(escape(evaluator), escape(label), str(count))
    out.print(table)
    for scale, agreement in result.agreement.items():
        out.print(render_panel(agreement, scale=scale), highlight=False, markup=False)
    if result.failures:
        out.print(
            "[red]judge failures (no label made; episodes errored):[/red] "
            + escape(", ".join(f"{reason} {n}" for reason, n in result.failures.items())),
            highlight=False,
            soft_wrap=True,
        )
        for episode in result.errored:
            if episode.failures:
                out.print(
                    f"  {escape(episode.episode_id)}: {escape(episode.error_message)}",
                    highlight=False,
                    soft_wrap=True,
                )


async def run_rejudge(args: argparse.Namespace, records: list[Recorded], out: Console) -> int:
    """`rescore --judge-model ...`: judge the open episodes with LLM judges (a panel with
    several), report failures apart, and write a run directory with --out."""
    judges = pair_endpoints(args.judge_model, args.judge_api_base)
    if args.out is not None:
        check_out_dir(args.out)  # before any judge is called
    if args.concurrency < 1:
        raise ReplaySourceError(args.inputs[0], None, "--concurrency must be 1 or more")
    if not 0.0 <= args.judge_temperature <= 2.0:
        raise CliError(f"--judge-temperature must be within 0-2, not {args.judge_temperature}")
    judgeable = sum(r.kind == "open" and r.judge_input is not None for r in records)
    started = time.perf_counter()
    with _JudgeProgress(out) as progress:
        progress.start(len(records), 0)
        calls = _spec("judge-calls")

        def episode_done(episode: JudgedEpisode) -> None:
            progress.advance(_spec(episode.episode_id), episode.status)

        result, summary = await rejudge_records(
            records,
            judges,
            inputs=args.inputs,
            concurrency=args.concurrency,
            timeout_s=args.judge_timeout,
            use_cache=not args.no_cache,
            cache_dir=args.cache_dir,
            out=args.out,
            temperature=args.judge_temperature,
            seed=args.judge_seed,
            on_call=lambda: progress.agent_call(calls),
            on_episode=episode_done,
        )
    elapsed = time.perf_counter() - started
    # An episode the recording itself errored is an infrastructure failure of the source, not
    # a judge failure, and never behaviour: counted apart.
    recorded_errors = sum(1 for e in result.errored if not e.failures)
    judge_errors = len(result.errored) - recorded_errors
    out.print(
        f"re-judged {len(result.judged)} of {len(records)} episode(s) with "
        f"{', '.join(result.models)} in {elapsed:.2f} s: {result.calls} model call(s), "
        f"{result.cached_answers} answer(s) from the cache, {judge_errors} errored (judge "
        "failures)"
        + (
            f"; {recorded_errors} errored in the recording (not judged: infrastructure)"
            if recorded_errors
            else ""
        )
        + (
            f"; {len(records) - judgeable} not open (ToolEmu-style) episodes keep their "
            "offline scores"
            if len(records) > judgeable
            else ""
        ),
        highlight=False,
        soft_wrap=True,
    )
    _print_rejudged(result, out)
    if args.agreement:
        by_episode = {e.episode_id: e.scores for e in result.episodes}
        pairs = [safety_pair(r, by_episode.get(r.episode_id, [])) for r in records]
        out.print(
            render_agreement(
                agreement_table(pairs), title="Judged safety label (ours) vs the recorded label"
            ),
            highlight=False,
            markup=False,
        )
    if summary is not None:
        out.print(f"run directory written to {args.out} (propensity report {args.out})")
    return EXIT_FAILURE if result.errored and result.failures else EXIT_OK


def _restore_plugins(args: argparse.Namespace, err: Console) -> None:
    """Say which input (pack, toolkit spec) of each run being replayed changed since, and,
    only where the replay rebuilds the run's tools from our registry (verify --against
    sandbox, branch), load the plugins and toolkit modules the run recorded, as the run
    imported them (guarded: never from inside the run directory); one that cannot be imported
    is an error. rescore, verify --against recorded and reexecute (which builds only our own
    code tools) need no user code and import none."""
    mode = args.replay_mode
    paths = [args.run_dir] if mode in ("reexecute", "branch") else args.inputs
    rebuilds_tools = mode == "branch" or (mode == "verify" and args.against == "sandbox")
    seen: set[Path] = set()
    for path in paths:
        run_dir = run_dir_of(path)
        if run_dir is None or run_dir.resolve() in seen:
            continue
        seen.add(run_dir.resolve())
        restore_run_inputs(
            run_dir,
            roles=TOOL_ROLES if rebuilds_tools else frozenset(),
            warn=lambda text: err.print(
                f"[yellow]warning:[/yellow] {escape(text)}", highlight=False, soft_wrap=True
            ),
        )


def _limits(args: argparse.Namespace) -> SandboxLimits | None:
    overrides = {
        key: value
        for key, value in (("timeout_s", args.sandbox_timeout), ("memory_mb", args.sandbox_memory))
        if value is not None
    }
    return SandboxLimits.model_validate(overrides) if overrides else None


async def _reexecute(args: argparse.Namespace, out: Console) -> int:
    from sandbox.replay.reexecute import reexecute_episode

    report = await reexecute_episode(
        args.run_dir,
        args.episode,
        limits=_limits(args),
        log=lambda text: out.print(f"[dim]{text}[/dim]", highlight=False),
    )
    table = folding_table(title=f"Re-executed {args.episode}", title_justify="left")
    for column in ("step", "tool", "ok", "cpu s", "peak MiB", "written", "notes"):
        table.add_column(column, overflow="fold")
    for call in report.calls:
        facts = call.facts
        notes = call.not_run or ", ".join(
            name
            for name, flag in (
                ("oom", facts and facts.oom_killed),
                ("timeout", facts and facts.timed_out),
                ("pids", facts and facts.pids_limited),
                ("disk full", facts and facts.disk_full),
                ("output differs", call.output_differs),
            )
            if flag
        )
        table.add_row(
            str(call.step),
            call.tool,
            "-" if call.ok is None else str(call.ok),
            f"{facts.cpu_s:.2f}" if facts else "-",
            f"{facts.peak_memory_bytes / 2**20:.0f}" if facts else "-",
            str(facts.bytes_written) if facts else "-",
            notes,
        )
    out.print(table)
    if report.score is not None:
        out.print(f"outcome: {report.score.label}", highlight=False)
    if args.out:
        args.out.write_text(report.model_dump_json(indent=2), encoding="utf-8")
        out.print(f"report written to {args.out}", highlight=False)
    return EXIT_OK


async def _branch_inspect(
    args: argparse.Namespace, agent: AgentSpec, progress: ConsoleProgress
) -> RunResult:
    """`branch` from an Inspect log exported from one of our runs: its scenario, from its pack,
    and our run's configuration where the export kept it (else the defaults of a run)."""
    from sandbox.replay.branch import Branch, BranchPoint, branch_config, check_branch_point
    from sandbox.runtime.runs import start_run

    record = await asyncio.to_thread(branchable_inspect_record, args.run_dir, args.episode)
    check_branch_point(record.trajectory, args.at)
    started = record.trajectory.started
    assert started is not None  # every Inspect record starts with one
    pack = str(record.meta["pack"])
    recorded_config = record.meta.get("run_config")
    source = (
        RunConfig.model_validate(recorded_config)
        if recorded_config is not None
        else RunConfig(suite=pack, agents=[AgentSpec(spec=started.agent)])
    )
    config = branch_config(source, record.trajectory, agent=agent, category=args.pressure)
    config = config.model_copy(update={"suite": pack})
    point = BranchPoint(
        source_run=str(args.run_dir.resolve()), episode_id=record.episode_id, at=args.at
    )
    return await start_run(
        config, args.out, branch=Branch(record.trajectory, point), progress=progress
    )


async def _branch(args: argparse.Namespace, out: Console) -> int:
    from sandbox.replay.branch import branch_run

    agent = AgentSpec(spec=args.agent, api_base=args.api_base)
    with ConsoleProgress(out) as progress:  # the bar (or plain-line timer) stops, failed or not
        if run_dir_of(args.run_dir) is None and detect_format(args.run_dir) is SourceFormat.INSPECT:
            result = await _branch_inspect(args, agent, progress)
        else:
            result = await branch_run(
                args.run_dir,
                args.episode,
                args.at,
                agent,
                args.out,
                category=args.pressure,
                progress=progress,
            )
    print_summary(result.summary, out)
    out.print(f"branched run in {result.run_dir}", highlight=False)
    return EXIT_OK


def _read_all(paths: list[Path], err: Console) -> list[Recorded]:
    """Every recorded episode of ``paths``; one episode id recorded twice, in one path or
    across two, is refused naming both places (``read_sources``)."""
    loaded = read_sources(paths)
    for problem in loaded.problems:
        err.print(
            f"[yellow]warning:[/yellow] {escape(str(problem))}", highlight=False, soft_wrap=True
        )
    records = loaded.records
    if not records:
        raise ReplaySourceError(paths[0], None, "no recorded episodes found")
    return records


def _rescore(args: argparse.Namespace, out: Console, err: Console) -> int:
    records = _read_all(args.inputs, err)
    started = time.perf_counter()
    by_episode = {r.episode_id: rescore(r) for r in records}
    elapsed = time.perf_counter() - started
    labels: Counter[tuple[str, str]] = Counter()
    for scores in by_episode.values():
        for score in scores:
            labels[(score.evaluator, str(score.label))] += 1
    formats = Counter(r.source_format for r in records)
    out.print(
        f"re-scored {len(records)} episode(s) offline in {elapsed:.2f} s "
        f"({', '.join(f'{n} {f}' for f, n in sorted(formats.items()))}): "
        f"{scored_counts(records, by_episode)}",
        highlight=False,
        soft_wrap=True,
    )
    rule_judged = any(e in (SAFETY_EVALUATOR, HELPFULNESS_EVALUATOR) for e, _ in labels)
    table = folding_table(
        title="Today's labels"
        + (
            f" ({SAFETY_EVALUATOR}, {HELPFULNESS_EVALUATOR}: rule judge: heuristic, not validated)"
            if rule_judged
            else ""
        ),
        title_justify="left",
    )
    for column in ("evaluator", "label", "episodes"):
        table.add_column(column, overflow="fold")
    for (evaluator, label), count in sorted(labels.items()):
        table.add_row(escape(evaluator), escape(label), str(count))
    if rule_judged:
        table.caption = escape(
            "the rule judge (no model call) is a keyword heuristic, not validated: "
            + RULE_JUDGE_VALIDITY
        )
        table.caption_justify = "left"
    out.print(table)
    _note_no_risks(records, by_episode, out)
    if args.agreement:
        pairs = [safety_pair(r, by_episode[r.episode_id]) for r in records]
        out.print(
            render_agreement(
                agreement_table(pairs),
                title="Rule-based safety label (ours) vs the recorded label",
            ),
            highlight=False,
            markup=False,
        )
    if args.out:
        _jsonl(
            args.out,
            [s.model_dump(mode="json") for scores in by_episode.values() for s in scores],
        )
        out.print(f"scores written to {args.out}", highlight=False)
    return EXIT_OK


def _note_no_risks(
    records: list[Recorded], by_episode: dict[str, list[Score]], out: Console
) -> None:
    """Say how many rule-judged episodes come from a source that declares no risk (their
    safety label means "no risk found", never "safe"), with the source's own note."""
    judged = [
        r
        for r in records
        if any(s.evaluator == SAFETY_EVALUATOR for s in by_episode.get(r.episode_id, []))
    ]
    blind = [r for r in judged if declares_no_risks(r)]
    if not blind:
        return
    problems = Counter(
        str(r.meta.get("problem", "no risky outcomes or actions given")) for r in blind
    )
    out.print(
        f"[yellow]note:[/yellow] {len(blind)} of {len(judged)} rule-judged episode(s) come from "
        "a source that declares no risky outcomes or actions: the rule judge had no risk to "
        f"look for, so their {SAFETY_EVALUATOR} label is unassessable (no verdict, never "
        "counted as safe); a judge model (--judge-model) can read them",
        highlight=False,
        soft_wrap=True,
    )
    for problem, count in problems.most_common():
        out.print(f"  ({count}) {escape(problem)}", highlight=False, soft_wrap=True)


async def _verify(args: argparse.Namespace, out: Console, err: Console) -> int:
    records = await asyncio.to_thread(_read_all, args.inputs, err)
    reports = [await verify(record, args.against) for record in records]
    ran = sum(r.ran for r in reports)
    differences = sum(r.differences for r in reports)
    not_run = sum(r.not_run for r in reports)
    for report in reports:
        for check in report.calls:
            if check.status == "different":
                out.print(
                    f"[red]differs[/red] {escape(report.episode_id)} step {check.step} "
                    f"{escape(str(check.tool))}: recorded "
                    f"{escape(repr(str(check.recorded)[:120]))}, "
                    f"now {escape(repr(str(check.replayed)[:120]))}",
                    highlight=False,
                    soft_wrap=True,
                )
    not_checked = sum(r.not_checked for r in reports)
    out.print(
        f"verified {len(reports)} episode(s) against {args.against}: {ran} call(s) re-executed, "
        f"{differences} difference(s), {not_run} not run"
        + (
            f", {not_checked} not checked (nothing recorded to compare with)" if not_checked else ""
        ),
        highlight=False,
        soft_wrap=True,
    )
    # Every call not run or not checked, grouped by why, so the summary alone says it.
    for status, label in (("not_run", "not run"), ("not_checked", "not checked")):
        reasons = Counter(
            c.reason or "no reason recorded" for r in reports for c in r.calls if c.status == status
        )
        for reason, count in sorted(reasons.items(), key=lambda item: (-item[1], item[0])):
            out.print(f"  {label} ({count}): {escape(reason)}", highlight=False, soft_wrap=True)
    if args.out:
        _jsonl(args.out, [r.model_dump(mode="json") for r in reports])
        out.print(f"report written to {args.out}", highlight=False)
    return EXIT_FAILURE if differences else EXIT_OK


def run_replay(args: argparse.Namespace, out: Console, err: Console) -> int:
    mode = args.replay_mode
    _restore_plugins(args, err)
    if mode == "rescore" and args.judge_model:
        return asyncio.run(run_rejudge(args, _read_all(args.inputs, err), out))
    if mode == "rescore":
        given = [
            option
            for option, value in (
                ("--judge-api-base", args.judge_api_base),
                ("--no-cache", args.no_cache),
                ("--judge-temperature", args.judge_temperature != 0.0),
                ("--judge-seed", args.judge_seed is not None),
            )
            if value
        ]
        if given:  # judge-model options would be silently ignored by the offline rescore
            raise CliError(f"{', '.join(given)}: only with --judge-model (a judge model to call)")
    if mode == "rescore":
        return _rescore(args, out, err)
    if mode == "verify":
        return asyncio.run(_verify(args, out, err))
    if mode == "reexecute":
        return asyncio.run(_reexecute(args, out))
    if mode == "branch":
        return asyncio.run(_branch(args, out))
    err.print(f"[red]error:[/red] unknown replay mode {escape(repr(mode))}")
    return EXIT_FAILURE


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
