"""The figure machinery the report's charts share: one matplotlib figure per chart saved as SVG
and made fit for inlining (see :mod:`sandbox.results.html_report.charts`), marks that link to
a cell's episodes, the colours and sizes used throughout, and whole-name wrapping for labels
and legends.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from html import escape
from typing import Any, Literal

import matplotlib
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from evaluators.risky_choice import LevelEstimate
from sandbox.results.html_report.data import Rate

PALETTE = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#8C564B",
    "#444444",
)
FONT = 12
# Legend and label text: characters per line before a name wraps, and pixels per line.
LEGEND_CHARS = 22
LINE_PX = 15
MUTED = "#5b6570"
GRID = "#e3e6ea"
EMPTY = "#f3f4f6"

# Settings read while a figure is built and saved. matplotlib has no per-figure switch for the
# SVG options, so they are applied with ``rc_context`` around each chart only.
# (Typed loosely: the key type of rc_context differs between matplotlib versions.)
_RC: dict[Any, Any] = {
    "svg.fonttype": "none",  # <text>, not glyph outlines: smaller, selectable, searchable
    "svg.hashsalt": "propensity-report",  # deterministic ids
    # Labels are user text (agent names, scenario ids): "cost$5$" is a name, not mathtext.
    "text.parse_math": False,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],  # bundled with matplotlib: the metrics used for layout
    "font.size": FONT,
    "axes.edgecolor": "#9aa3ad",
    "axes.labelcolor": "#1f2328",
    "axes.linewidth": 0.8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "xtick.labelsize": FONT - 1,
    "ytick.labelsize": FONT - 1,
    "legend.fontsize": FONT - 1,
    "legend.frameon": False,
}

_Kind = Literal["main", "part", "hit", "tip"]


def esc(text: object) -> str:
    return escape(str(text), quote=True)


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def describe(rate: Rate) -> str:
    """``0.25 [0.12, 0.44] n=48 (k=12)``: the tooltip and table text of a rate."""
    e = rate.estimate
    if e.value is None or e.ci is None:
        return f"– (n={e.n})"
    text = f"{e.value:.2f} [{e.ci[0]:.2f}, {e.ci[1]:.2f}] n={e.n} (k={e.k})"
    if isinstance(e, LevelEstimate) and e.ended_before:
        text += f"; {e.ended_before} of n ended before this level without a misaligned call"
    return text


_STRONG_BREAKS = frozenset(" :/")
_WEAK_BREAKS = frozenset("._-@+")


def wrap_name(text: str, width: int) -> list[str]:
    """``text`` as lines of at most ``width`` characters, broken after a space, ``:`` or ``/``
    (else after ``.``, ``_``, ``-``, ``@`` or ``+``) that falls in the second half of a line,
    else at ``width``. ``"".join(lines) == text``: nothing is cut or added."""
    width = max(4, width)
    lines: list[str] = []
    rest = text
    while len(rest) > width:
        cut = 0
        for breaks in (_STRONG_BREAKS, _WEAK_BREAKS):
            cut = max((i + 1 for i, ch in enumerate(rest[:width]) if ch in breaks), default=0)
            if cut > width // 2:
                break
        if cut <= width // 2:
            cut = width
        lines.append(rest[:cut])
        rest = rest[cut:]
    lines.append(rest)
    return lines


def _wrapped(text: str, width: int) -> str:
    return "\n".join(wrap_name(text, width))


def _lines(text: str, width: int) -> int:
    return len(wrap_name(text, width))


def legend_px(names: Sequence[str]) -> int:
    """Height the legend of ``names`` needs (wrapped lines plus the space between entries)."""
    return sum(_lines(n, LEGEND_CHARS) for n in names) * LINE_PX + 6 * len(names) + 10


def _shown(rate: Rate | None) -> tuple[float, float, float] | None:
    """Value and interval of a rate that has one."""
    if rate is None or rate.estimate.value is None or rate.estimate.ci is None:
        return None
    return rate.estimate.value, rate.estimate.ci[0], rate.estimate.ci[1]


@dataclass
class _Mark:
    kind: _Kind
    label: str
    cell: int | None


@dataclass
class _Chart:
    """One figure of ``width`` × ``height`` pixels (1 pt = 1 SVG unit = 1 CSS px here) and
    the marks registered on it."""

    title: str
    width: int
    height: int
    fig: Figure = field(init=False)
    marks: list[_Mark] = field(default_factory=list)
    svg: str = ""

    def __post_init__(self) -> None:
        self.fig = Figure(figsize=(self.width / 72, self.height / 72), dpi=72)
        self.fig.text(
            0.5,
            1 - 17 / self.height,
            self.title,
            ha="center",
            va="baseline",
            fontsize=FONT + 2,
            fontweight="bold",
        )

    def axes(self, left: float, right: float, top: float, bottom: float) -> Axes:
        """Axes with the given margins in pixels."""
        w, h = self.width, self.height
        return self.fig.add_axes(
            (left / w, bottom / h, (w - left - right) / w, (h - top - bottom) / h)
        )

    def mark(self, artist: Artist, label: str, rate: Rate | None, kind: _Kind = "main") -> None:
        """Make ``artist`` a link to ``rate``'s episodes (``main``: focusable, ``part``: a
        further piece of the same mark, ``hit``: an invisible click area) or, with ``tip``,
        just give it a tooltip."""
        artist.set_gid(f"mark-{len(self.marks)}")
        self.marks.append(_Mark(kind, label, rate.cell if rate is not None else None))


# Scoped replacement of matplotlib's global ``*{...}`` rule, plus hover and focus feedback.
_STYLE = (
    "<style>svg.chart *{stroke-linejoin:round;stroke-linecap:butt}"
    "svg.chart .hit path{pointer-events:all}"
    "svg.chart .cell:hover>path,svg.chart .cell:focus>path,"
    "svg.chart .cell:hover use,svg.chart .cell:focus use"
    "{stroke:#111!important;stroke-width:2px!important}"
    "svg.chart .hit:hover>path,svg.chart .hit:focus>path"
    "{fill:rgba(11,98,196,.07)!important;stroke:none!important}"
    "svg.chart .cell:focus{outline:none}</style>"
)
_MARK = re.compile(r'<g id="mark-(\d+)"(/?)>')
_OTHER_ID = re.compile(r'<g id="[^"]*"(/?)>')


def _inline(svg: str, chart: _Chart) -> str:
    """matplotlib's SVG document as an element to place inside an HTML page."""
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.DOTALL)
    svg = re.sub(r"<style[^>]*>.*?</style>", "", svg, flags=re.DOTALL)
    svg = re.sub(r'\s*<clipPath id="[^"]*">.*?</clipPath>', "", svg, flags=re.DOTALL)
    svg = re.sub(r' clip-path="url\(#[^"]*\)"', "", svg)
    svg = re.sub(r"\s*<defs>\s*</defs>", "", svg)
    root = (
        f'<svg class="chart" width="{chart.width}" height="{chart.height}" '
        f'viewBox="0 0 {chart.width} {chart.height}" role="img" '
        f'aria-label="{esc(chart.title)}">{_STYLE}'
    )
    svg = re.sub(r"<svg\b[^>]*>", lambda _: root, svg, count=1)

    def group(match: re.Match[str]) -> str:
        mark = chart.marks[int(match.group(1))]
        if match.group(2):  # the artist drew nothing
            return "<g/>"
        title = f"<title>{esc(mark.label)}</title>"
        if mark.cell is None:
            return f"<g>{title}"
        attrs = f'class="cell" data-cell="{mark.cell}"'
        if mark.kind == "hit":
            attrs = f'class="cell hit" data-cell="{mark.cell}"'
        if mark.kind in ("main", "hit"):
            attrs += f' tabindex="0" role="button" aria-label="{esc(mark.label)}"'
        return f"<g {attrs}>{title}"

    svg = _MARK.sub(group, svg)
    # matplotlib numbers its groups per figure (figure_1, axes_1, ...): drop them, or every
    # chart on the page would repeat the same ids.
    return _OTHER_ID.sub(r"<g\1>", svg).strip()


@contextmanager
def _chart(title: str, width: int, height: int) -> Iterator[_Chart]:
    with matplotlib.rc_context(_RC):
        chart = _Chart(title, width, height)
        yield chart
        out = io.StringIO()
        chart.fig.savefig(
            out,
            format="svg",
            metadata={"Creator": None, "Date": None, "Format": None, "Type": None},
        )
    chart.svg = _inline(out.getvalue(), chart)


def _proportion_axis(ax: Axes, label: str, *, axis: Literal["x", "y"] = "y") -> None:
    """A 0–1 axis with light gridlines at quarters, drawn behind the marks."""
    ticks = [0.0, 0.25, 0.5, 0.75, 1.0]
    labels = [f"{t:g}" for t in ticks]
    if axis == "y":
        ax.set_ylim(0, 1.0)
        ax.set_yticks(ticks, labels)
        ax.set_ylabel(label)
    else:
        ax.set_xlim(0, 1.0)
        ax.set_xticks(ticks, labels)
        ax.set_xlabel(label)
    ax.set_axisbelow(True)
    ax.grid(axis=axis, color=GRID, linewidth=0.8)


def _legend(chart: _Chart, ax: Axes, handles: Sequence[Artist], names: Sequence[str]) -> None:
    """The legend right of the axes, every name whole (wrapped), each entry's text carrying
    the name as its tooltip."""
    legend = ax.legend(
        handles,
        [_wrapped(n, LEGEND_CHARS) for n in names],
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        borderaxespad=0.0,
        handlelength=1.2,
    )
    for text, name in zip(legend.get_texts(), names, strict=True):
        chart.mark(text, name, None, "tip")
