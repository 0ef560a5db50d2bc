"""Consoles and tables that never cut an identifier.

Rich sizes a console that is not a terminal (a pipe, a CI log, a file) to 80 columns and, by
default, ends a cell that does not fit with an ellipsis: two agents
``python:my_agents:self_preserver`` and ``python:my_agents:self_preserver_v2`` would both print
as ``python:my_agents:self_…``. Everything we print goes through these two helpers instead:

- ``make_console()``: on a terminal, the terminal's width; elsewhere ``COLUMNS`` when set, else
  ``WIDE`` columns, so piped tables keep whole names on one line (tables are only as wide as their
  content; plain lines are not padded);
- ``folding_table()``: a ``rich.table.Table`` whose every column folds (wraps inside the cell)
  instead of truncating, for the terminal that is narrower than a table.
"""

from __future__ import annotations

import os
from typing import Any

from rich.console import Console
from rich.table import Column, Table

WIDE = 400  # columns for output that is not a terminal (no truncation in logs)


def make_console(*, stderr: bool = False) -> Console:
    """A console for the CLI: terminal width on a terminal, ``COLUMNS`` or ``WIDE`` elsewhere."""
    console = Console(stderr=stderr)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console = Console(stderr=stderr, width=WIDE)
    return console


def fold(column: str | Column, **options: Any) -> Column:
    """A column that wraps long cells inside itself; never an ellipsis."""
    if isinstance(column, Column):
        column.overflow = "fold"
        return column
    return Column(column, overflow="fold", **options)


def folding_table(*headers: str | Column, **options: Any) -> Table:
    """``rich.table.Table(*headers, **options)`` whose every column folds instead of cutting;
    give columns added later with ``add_column`` ``overflow="fold"``."""
    return Table(*(fold(h) for h in headers), **options)
