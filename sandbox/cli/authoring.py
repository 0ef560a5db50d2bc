"""`propensity validate`, `propensity tools list|try|new` and `propensity list`: writing and
checking scenarios and tool emulators, and seeing what is there to use."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from sandbox.agents import AGENT_KINDS
from sandbox.cli.common import EXIT_FAILURE, EXIT_OK, CliError, add_plugin_option
from sandbox.console import folding_table
from scenarios.loader import builtin_packs, load_pack, read_pack_contents
from tools import default_registry
from tools.execution import SandboxLimits


def add_validate_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `validate` to the `propensity` parser's subparsers; returns its parser."""
    validate: argparse.ArgumentParser = subparsers.add_parser(
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
    add_plugin_option(validate)
    return validate


def add_tools_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `tools` to the `propensity` parser's subparsers; returns its parser."""
    tools_cmd: argparse.ArgumentParser = subparsers.add_parser(
        "tools", help="tool emulators: list, try one, scaffold a new one"
    )
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
    for parser_with_plugins in (tools_list, tools_try):
        add_plugin_option(parser_with_plugins)
    return tools_cmd


def add_list_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `list` to the `propensity` parser's subparsers; returns its parser."""
    listing: argparse.ArgumentParser = subparsers.add_parser(
        "list", help="show packs, scenarios, tools, agents or kinds of episode"
    )
    listing.add_argument(
        "what",
        nargs="?",
        choices=["packs", "scenarios", "tools", "agents", "kinds"],
        default="packs",
    )
    listing.add_argument("--suite", default=None, help="pack for `scenarios` and `tools`")
    add_plugin_option(listing)
    return listing


def run_validate(args: argparse.Namespace, out: Console, err: Console) -> int:
    """Print every warning (``warning: FILE [SCENARIO] FIELD: MESSAGE``) and every error
    (``error: ...``) in a pack; exit 1 on any error, or with ``--strict`` on any warning too.
    Tools backed by a registered toolkit are checked against the toolkit's own parameters, and
    open scenarios' world graphs against the emulated toolkits' specs (``--toolkits``)."""
    from sandbox.runtime.runs import toolkit_tools

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


def run_list(args: argparse.Namespace, out: Console, err: Console) -> int:
    if args.what == "kinds":
        from sandbox.runtime.kinds import BUILTIN_KINDS, load_kind_entry_points, registered_kinds

        for problem in load_kind_entry_points():
            err.print(f"[yellow]warning:[/yellow] episode-kind entry point {escape(problem)}")

        table = folding_table("kind (--kind)", "runs by default", "what it is", "defined in")
        table.title = "Kinds of episode"
        for name, kind_class in sorted(registered_kinds().items()):
            doc = (kind_class.__doc__ or "").replace("``", "").strip().splitlines()
            table.add_row(
                name,
                "yes" if name in BUILTIN_KINDS else "no (name it with --kind)",
                doc[0] if doc else "",
                f"{kind_class.__module__}.{kind_class.__qualname__}",
            )
        out.print(table)
        return EXIT_OK
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


def run_tools(args: argparse.Namespace, out: Console, err: Console) -> int:
    from sandbox.cli.scaffold import scaffold

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
