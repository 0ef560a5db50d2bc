"""Consoles and tables that never cut an identifier.

Rich sizes a console that is not a terminal (a pipe, a CI log, a file) to 80 columns and, by
default, ends a cell that does not fit with an ellipsis: two agents
``python:my_agents:self_preserver`` and ``python:my_agents:self_preserver_v2`` would both print
as ``python:my_agents:self_…``. Everything we print goes through these two helpers instead:

- ``make_console()``: on a terminal, the terminal's width; elsewhere ``COLUMNS`` when set, else
  ``WIDE`` columns, so piped tables keep whole names on one line (tables are only as wide as their
  content; plain lines are not padded);
- ``folding_table()``: a ``rich.table.Table`` whose every column folds (wraps inside the cell)
  instead of truncating; a table wider than the console (ten agents on 80 columns) is printed
  in groups of columns, each group repeating the leading (row-key) column.

Text that came from outside the program (an agent's or a tool's output, a model's error, an id
or a reason read back from a run directory) never reaches a terminal as it is: a NUL, an escape
sequence (``\\x1b[31m``, a cursor move, a title change) or a bidi override could hide or
forge what a reader sees. ``visible()`` makes every such character a visible escape
(``\\x1b``, ``\\n``, ``\\u202e``), ``markup_safe()`` also escapes rich markup, for text put
into a markup string; and the consoles of ``make_console()`` make control characters visible in
every string they print (newlines and tabs kept) as a second line of defence. The run
directory keeps the text faithfully: only what is printed is escaped.
"""

from __future__ import annotations

import os
import re
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Column, Table

WIDE = 400  # columns for output that is not a terminal (no truncation in logs)

# C0 and C1 control characters (DEL included), line and paragraph separators, and the bidi
# embedding, override and isolate marks: what can move the cursor, recolour, erase or reorder
# what a terminal shows.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# The same, less newline and tab: the consoles' own pass over whole strings they print.
_CONTROL_IN_LINES = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def visible(text: object) -> str:
    """``str(text)`` with every control character (newlines and tabs too) written as a visible
    escape (``\\x1b``, ``\\x00``, ``\\n``, ``\\u202e``): safe to print on one line of a
    terminal, whatever an agent, a tool, a model or a file put in it."""
    return _CONTROL.sub(_escape_char, str(text))


def markup_safe(text: object) -> str:
    """``visible(text)`` with rich markup escaped too: for outside text inside a markup string
    (``f"[red]error:[/red] {markup_safe(message)}"``)."""
    return escape(visible(text))


class SafeConsole(Console):
    """A console that makes control characters visible in every string it renders (newlines
    and tabs kept), so that nothing printed through it can drive the terminal. Rich's own
    styling is applied after, and is unaffected."""

    def render_str(self, text: str, **options: Any) -> Any:
        return super().render_str(_CONTROL_IN_LINES.sub(_escape_char, text), **options)


def make_console(*, stderr: bool = False) -> Console:
    """A console for the CLI: terminal width on a terminal, ``COLUMNS`` or ``WIDE`` elsewhere;
    control characters in what it prints are made visible (see :class:`SafeConsole`)."""
    console = SafeConsole(stderr=stderr)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console = SafeConsole(stderr=stderr, width=WIDE)
    return console


def fold(column: str | Column, **options: Any) -> Column:
    """A column that wraps long cells inside itself; never an ellipsis."""
    if isinstance(column, Column):
        column.overflow = "fold"
        return column
    return Column(column, overflow="fold", **options)


def folding_table(*headers: str | Column, **options: Any) -> Table:
    """``rich.table.Table(*headers, **options)`` whose every column folds instead of cutting;
    give columns added later with ``add_column`` ``overflow="fold"``. Printed on a console
    narrower than the table's natural width, it splits into groups of columns (see
    ``FoldingTable``)."""
    return FoldingTable(*(fold(h) for h in headers), **options)


class FoldingTable(Table):
    """A table that, when it does not fit the width, prints its columns in groups.

    Each group is a table of the first column (the row keys) and as many further columns as fit
    the width at their natural size (at least one; a single column wider than the width folds),
    titled ``TITLE (part k of n)``: every identifier is printed whole, none squeezed to nothing
    or cut."""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        if len(self.columns) <= 2 or self._natural(console, options, self.columns) <= width:
            yield from super().__rich_console__(console, options)
            return
        key, rest = self.columns[0], self.columns[1:]
        groups: list[list[Column]] = [[]]
        for column in rest:
            trial = [key, *groups[-1], column]
            if groups[-1] and self._natural(console, options, trial) > width:
                groups.append([])
            groups[-1].append(column)
        if len(groups) == 1:
            yield from super().__rich_console__(console, options)
            return
        for number, group in enumerate(groups, 1):
            yield self._part([key, *group], f"part {number} of {len(groups)}")

    def _part(self, columns: list[Column], which: str) -> Table:
        title = f"{self.title} ({which})" if self.title else f"({which})"
        part = Table(
            title=title,
            title_justify=self.title_justify,
            box=self.box,
            show_header=self.show_header,
            show_lines=self.show_lines,
        )
        for column in columns:
            copy = column.copy()
            copy._cells = list(column._cells)
            part.columns.append(copy)
        part.rows = list(self.rows)
        return part

    def _natural(self, console: Console, options: ConsoleOptions, columns: list[Column]) -> int:
        """The width ``columns`` need with every cell on one line."""
        probe = self._part(columns, "")
        return Measurement.get(console, options.update(max_width=100_000), probe).maximum
