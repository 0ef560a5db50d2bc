"""`propensity judges agreement A B`: how far two label sources agree on the same trajectories.

A and B are any two of: a run directory (or a rescore output directory) with judge scores, a
scores JSONL file, a recorded source with labels (a ToolEmu dump and its evaluator files), a
CSV of human labels (``episode_id,label``); see :mod:`sandbox.replay.labels`. The figures come
from :func:`evaluators.agreement.agreement`: confusion matrix (rows A, columns B), exact
agreement, Cohen's κ, quadratic-weighted κ and κ on the scale's binary cut, each with its
percentile-bootstrap 95% interval. See docs/judges.md.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from evaluators.agreement import HELPFULNESS_LOW, SAFETY_RISKY, Agreement, Coefficient, agreement
from evaluators.judges import HELPFULNESS_EVALUATOR, SAFETY_EVALUATOR
from sandbox.cli.common import EXIT_FAILURE, EXIT_OK, CliError
from sandbox.console import folding_table
from sandbox.replay.labels import SCALE_VALUES, LabelScale, LabelSet, judges_in, read_labels

__all__ = ["add_judges_parser", "agreement_csv", "agreement_json", "run_judges"]

# The binary cut of each scale (ToolEmu binarises both at 2: 0-1 fail, 2-3 pass).
_BINARY = {
    "safety": (SAFETY_RISKY, "risky (0-1) vs safe (2-3)"),
    "helpfulness": (HELPFULNESS_LOW, "unhelpful (0-1) vs helpful (2-3)"),
}
# The binary table's axes (predicate false, true) by scale.
_AXES = {"safety": ("safe", "risky"), "helpfulness": ("helpful", "unhelpful")}
_SHOWN_PROBLEMS = 5


def add_judges_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "judges", help="measure judges: agreement of two label sources"
    )
    modes = parser.add_subparsers(dest="judges_mode", required=True)
    agree = modes.add_parser(
        "agreement",
        help="agreement of two label sources on the same trajectories (κ with intervals)",
        description="Compare two label sources for the same trajectories: run or rescore "
        "directories (judge scores), scores .jsonl files, ToolEmu dumps with their label "
        "files, or CSV files of human labels (episode_id,label).",
    )
    agree.add_argument("a", type=Path, help="label source A (rows of the confusion matrix)")
    agree.add_argument("b", type=Path, help="label source B (columns)")
    agree.add_argument("--scale", choices=sorted(_BINARY), default="safety")
    agree.add_argument("--format", choices=["table", "json", "csv"], default="table")
    agree.add_argument(
        "--resamples",
        type=int,
        default=2000,
        help="bootstrap resamples for the 95%% intervals (0: no intervals; default 2000)",
    )
    agree.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    for side in ("a", "b"):
        agree.add_argument(
            f"--{side}-judge",
            metavar="MODEL",
            help=f"in a panel's rescore directory {side.upper()}: the labels of judge MODEL "
            "(as --judge-model named it) instead of the panel verdict",
        )
    return parser


def _source_json(labels: LabelSet) -> dict[str, Any]:
    return {
        "source": labels.source,
        "kind": labels.kind,
        "labels": len(labels.labels),
        "rule_judge": labels.rule_judge,
        "problems": labels.problems,
    }


def agreement_json(
    result: Agreement, a: LabelSet, b: LabelSet, scale: str, binary: str
) -> dict[str, Any]:
    """The machine-readable record of one comparison (``--format json``)."""
    return {
        "scale": scale,
        "binary": binary,
        "a": _source_json(a),
        "b": _source_json(b),
        "agreement": result.model_dump(mode="json"),
    }


def _figures(result: Agreement) -> list[tuple[str, Coefficient | None]]:
    return [
        ("exact", result.exact),
        ("kappa", result.kappa),
        ("weighted_kappa", result.weighted_kappa),
        ("risky_kappa", result.risky_kappa),
    ]


def agreement_csv(result: Agreement, scale: str = "safety") -> str:
    """One row per figure (``figure,value,ci_low,ci_high,n,reason``), then the counts: ``n``,
    ``only_a``, ``only_b``, the ``scale`` compared, the bootstrap's ``resamples`` and
    ``seed``, ``confusion_aI_bJ`` (A labelled I, B labelled J) and the binary cut's
    ``binary_a_X_b_Y`` (X, Y: safe / risky on safety, helpful / unhelpful on helpfulness)."""
    axes = _AXES[scale]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["figure", "value", "ci_low", "ci_high", "n", "reason"])
    for name, figure in _figures(result):
        if figure is None:
            continue
        low, high = figure.ci if figure.ci is not None else ("", "")
        value = "" if figure.value is None else figure.value
        writer.writerow([name, value, low, high, figure.n, figure.reason or ""])
    for name, count in (("n", result.n), ("only_a", result.only_a), ("only_b", result.only_b)):
        writer.writerow([name, count, "", "", "", ""])
    writer.writerow(["scale", scale, "", "", "", ""])
    for name, count in (("resamples", result.resamples), ("seed", result.seed)):
        writer.writerow([name, count, "", "", "", ""])
    for i, row in zip(result.labels, result.confusion, strict=True):
        for j, count in zip(result.labels, row, strict=True):
            writer.writerow([f"confusion_a{i}_b{j}", count, "", "", "", ""])
    for row_axis, row in zip(axes, result.risky_confusion or [], strict=False):
        for column_axis, cell in zip(axes, row, strict=True):
            writer.writerow([f"binary_a_{row_axis}_b_{column_axis}", cell, "", "", "", ""])
    return buffer.getvalue()


_RULES = "; the rule judge: a keyword heuristic, not validated"


def _only(mine: LabelSet, other: LabelSet) -> str:
    """The first few episode ids one source labels and the other does not (typos show here)."""
    ids = sorted(set(mine.labels) - set(other.labels))
    if not ids:
        return ""
    more = f", ... {len(ids) - _SHOWN_PROBLEMS} more" if len(ids) > _SHOWN_PROBLEMS else ""
    return f" ({', '.join(ids[:_SHOWN_PROBLEMS])}{more})"


def _print_table(
    result: Agreement, a: LabelSet, b: LabelSet, scale: str, binary: str, out: Console
) -> None:
    out.print(
        f"scale: {scale} (ToolEmu 0-3)\n"
        f"A: {a.source} ({a.kind}, {len(a.labels)} labels{_RULES if a.rule_judge else ''})\n"
        f"B: {b.source} ({b.kind}, {len(b.labels)} labels{_RULES if b.rule_judge else ''})\n"
        f"paired: {result.n}; only in A: {result.only_a}{_only(a, b)}; "
        f"only in B: {result.only_b}{_only(b, a)}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    matrix = folding_table(title="Confusion matrix (rows A, columns B)", title_justify="left")
    matrix.add_column("A \\ B", overflow="fold")
    for label in result.labels:
        matrix.add_column(str(label), justify="right", overflow="fold")
    matrix.add_column("total", justify="right", overflow="fold")
    for label, row in zip(result.labels, result.confusion, strict=True):
        matrix.add_row(str(label), *(str(c) for c in row), str(sum(row)))
    totals = [sum(row[j] for row in result.confusion) for j in range(len(result.labels))]
    matrix.add_row("total", *(str(t) for t in totals), str(result.n))
    out.print(matrix)
    figures = folding_table(
        title=f"Agreement (95% percentile bootstrap, {result.resamples} resamples, "
        f"seed {result.seed})",
        title_justify="left",
    )
    for column in ("figure", "value", "95% interval"):
        figures.add_column(column, overflow="fold")
    names = {
        "exact": "exact agreement",
        "kappa": "Cohen's κ",
        "weighted_kappa": "κ, quadratic weights",
        "risky_kappa": f"κ, {binary}",
    }
    for name, figure in _figures(result):
        if figure is None:
            continue
        if figure.value is None:
            figures.add_row(names[name], "n/a", escape(figure.reason or ""))
            continue
        interval = f"[{figure.ci[0]:.3f}, {figure.ci[1]:.3f}]" if figure.ci else "–"
        if figure.ci and figure.dropped:
            interval += f" ({figure.dropped} undefined resamples left out)"
        figures.add_row(names[name], f"{figure.value:.3f}", interval)
    out.print(figures)


def _print_problems(labels: LabelSet, side: str, err: Console) -> None:
    if not labels.problems:
        return
    err.print(
        f"{side}: {len(labels.problems)} episode(s) without a usable label:",
        highlight=False,
        markup=False,
    )
    for problem in labels.problems[:_SHOWN_PROBLEMS]:
        err.print(f"  {problem}", highlight=False, markup=False, soft_wrap=True)
    if len(labels.problems) > _SHOWN_PROBLEMS:
        err.print(f"  ... and {len(labels.problems) - _SHOWN_PROBLEMS} more", highlight=False)


def _side(path: Path, model: str | None, scale: LabelScale, side: str) -> LabelSet:
    """One side's labels: the source's own (a panel's verdict), or with ``--a-judge MODEL``
    one panel judge's. A local model is stored under its served name (``local/NAME`` is
    judged as ``openai/NAME``), so either spelling finds it; a name the source lacks is an
    error listing the judges it has."""
    if model is None:
        return read_labels(path, scale)
    judges = judges_in(path, scale)
    option = f"--{side}-judge {model}"
    if not judges:
        raise CliError(
            f"{option}: {path} holds no panel judges' labels (only a rescore with several "
            "--judge-model keeps each judge's; a single judge's labels are the source's own: "
            f"drop --{side}-judge)"
        )
    served = f"openai/{model.removeprefix('local/')}" if model.startswith("local/") else model
    name = model if model in judges else served if served in judges else None
    if name is None:
        raise CliError(f"{option}: no such judge in {path}; it has: {', '.join(judges)}")
    base = {"safety": SAFETY_EVALUATOR, "helpfulness": HELPFULNESS_EVALUATOR}[scale]
    labels = read_labels(path, scale, evaluator=f"{base}@{name}")
    return labels.model_copy(update={"source": f"{labels.source} [judge {name}]"})


def _agreement(args: argparse.Namespace, out: Console, err: Console) -> int:
    if args.resamples < 0:
        raise CliError(f"--resamples must be 0 or more, got {args.resamples}")
    if args.resamples == 1:
        raise CliError("--resamples 1 gives no interval: use 0 (none) or 2 or more (2000 default)")
    if args.seed < 0:
        raise CliError(f"--seed must be 0 or more, got {args.seed}")
    a = _side(args.a, args.a_judge, args.scale, "a")
    b = _side(args.b, args.b_judge, args.scale, "b")
    risky, binary = _BINARY[args.scale]
    if not set(a.labels) & set(b.labels):
        sample_a = ", ".join(sorted(a.labels)[:3]) or "none"
        sample_b = ", ".join(sorted(b.labels)[:3]) or "none"
        raise CliError(
            f"no episode is labelled by both sources (A has {len(a.labels)}, e.g. {sample_a}; "
            f"B has {len(b.labels)}, e.g. {sample_b}): are they the same trajectories?"
        )
    result = agreement(
        a.labels,
        b.labels,
        scale=SCALE_VALUES,
        risky=risky,
        resamples=args.resamples,
        seed=args.seed,
        binary_names=_AXES[args.scale],
    )
    if args.format == "json":
        out.file.write(json.dumps(agreement_json(result, a, b, args.scale, binary), indent=2))
        out.file.write("\n")
    elif args.format == "csv":
        out.file.write(agreement_csv(result, args.scale))
    else:
        _print_table(result, a, b, args.scale, binary, out)
        _print_problems(a, "A", err)
        _print_problems(b, "B", err)
    return EXIT_OK


def run_judges(args: argparse.Namespace, out: Console, err: Console) -> int:
    if args.judges_mode == "agreement":
        return _agreement(args, out, err)
    return EXIT_FAILURE  # pragma: no cover - argparse allows only the modes above
