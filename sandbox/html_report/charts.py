"""The report's charts, drawn with matplotlib and inlined in the page as SVG.

Each chart is one :class:`matplotlib.figure.Figure` (the object API: no pyplot, no global
figure registry), saved as SVG with text kept as text and a fixed hash salt, so the same run
gives the same bytes. The SVG is then made fit for inlining: the XML prolog, the namespace and
metadata URLs and the clip paths (every mark lies inside its axes) are dropped, and matplotlib's
one global style rule is scoped to the chart.

Marks that stand for a number are drawn as separate artists with a ``gid``; matplotlib writes
each one as ``<g id="mark-K">``, which becomes ``<g class="cell" data-cell="N" ...>`` with a
``<title>`` tooltip (the estimate, its 95% interval and n). The page's script filters the
trajectory viewer to that cell's episodes on click or Enter. All text goes through
:func:`esc`.

Names (agents, categories, resources) are never cut: a long one wraps over several lines
(:func:`wrap_name`, the lines put back together give the name), the chart grows to fit them,
and the group holding them carries the whole name as its tooltip.
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
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from evaluators.risky_choice import LevelEstimate
from sandbox.html_report.data import Rate

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
# Code-interpreter outcomes: greens and blues for declining or staying bounded, warm colours
# for the outcomes that exhausted (or had to be stopped from exhausting) a resource.
OUTCOME_COLORS = {
    "refusal": "#1b7837",
    "reframe": "#5aae61",
    "follow-up": "#a6dba0",
    "incorrect": "#999999",
    "safe-completion": "#4393c3",
    "fulfilled": "#d6604d",
    "timeout": "#f4a582",
    "contained": "#b2182b",
}
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


@dataclass(frozen=True)
class Series:
    name: str
    points: dict[int, Rate]


def line_chart(title: str, series: Sequence[Series], *, width: int = 460) -> str:
    """Propensity (y, 0–1) against pressure level (x), one line per series, with the Wilson
    95% interval as a shaded band, so overlapping bands show where agents do not differ."""
    levels = sorted({lv for s in series for lv in s.points}) or [0]
    top, bottom = 28, 40
    height = max(260, top + legend_px([s.name for s in series]) + bottom)
    with _chart(title, width, height) as chart:
        ax = chart.axes(left=48, right=170, top=top, bottom=bottom)
        _proportion_axis(ax, "propensity")
        ax.set_xlim(levels[0] - 0.3, max(levels[-1], levels[0] + 1) + 0.3)
        ax.set_xticks(levels, [str(lv) for lv in levels])
        ax.set_xlabel("pressure level (cumulative: called at this level or lower)")
        handles: list[Artist] = []
        for i, s in enumerate(series):
            handles.append(Line2D([], [], color=color(i), linewidth=2, marker="o"))
            points = [(lv, shown) for lv, r in sorted(s.points.items()) if (shown := _shown(r))]
            if not points:
                continue
            xs = [lv for lv, _ in points]
            ax.fill_between(
                xs,
                [low for _, (_, low, _) in points],
                [high for _, (_, _, high) in points],
                color=color(i),
                alpha=0.15,
                linewidth=0,
            )
            ax.plot(xs, [v for _, (v, _, _) in points], color=color(i), linewidth=2)
            for lv, (value, _, _) in points:
                rate = s.points[lv]
                (dot,) = ax.plot([lv], [value], "o", color=color(i), markersize=7, zorder=3)
                chart.mark(dot, f"{s.name} · level {lv}: {describe(rate)}", rate)
        _legend(chart, ax, handles, [s.name for s in series])
    return chart.svg


def grouped_bars(
    title: str,
    groups: Sequence[tuple[str, Sequence[tuple[str, Rate | None]]]],
    *,
    bar_names: Sequence[str],
    width: int = 640,
) -> str:
    """Proportions as bars grouped by ``groups`` (e.g. agents), one bar per ``bar_names`` entry
    (e.g. harmful / benign naming), each with its 95% interval as an error bar."""
    left, right, top = 48, 160, 28
    slot_px = (width - left - right) / max(1, len(groups))
    chars = max(6, int(slot_px / 7))
    label_lines = max((_lines(group, chars) for group, _ in groups), default=1)
    bottom = 34 + LINE_PX * label_lines
    height = max(280, top + 180 + bottom, top + legend_px(bar_names) + bottom)
    with _chart(title, width, height) as chart:
        ax = chart.axes(left=left, right=right, top=top, bottom=bottom)
        _proportion_axis(ax, "share")
        ax.set_xlim(0, max(1, len(groups)))
        ax.set_xticks([])
        bar = min(36 / slot_px, 0.8 / max(1, len(bar_names)))
        for g, (group, bars) in enumerate(groups):
            label = ax.text(
                g + 0.5,
                -10 / (height - top - bottom),
                _wrapped(group, chars),
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="top",
                fontsize=FONT - 1,
                linespacing=1.15,
            )
            chart.mark(label, group, None, "tip")
            start = g + (1 - bar * len(bar_names)) / 2
            for b, (name, rate) in enumerate(bars):
                shown = _shown(rate)
                if rate is None or shown is None:
                    continue
                value, low, high = shown
                text = f"{group} · {name}: {describe(rate)}"
                x = start + (b + 0.5) * bar
                # A transparent hit area over the whole column keeps a zero-height bar clickable.
                hit = Rectangle((x - bar / 2, 0), bar, 1, fill=False, linewidth=0)
                ax.add_patch(hit)
                chart.mark(hit, text, rate, "hit")
                # A zero share still shows as a sliver on the axis.
                (rect,) = ax.bar(
                    [x], [max(value, 0.006)], width=bar * 0.92, color=color(b), linewidth=0
                )
                chart.mark(rect, text, rate, "part")
                err = ax.errorbar(
                    [x],
                    [value],
                    yerr=[[value - low], [high - value]],
                    fmt="none",
                    ecolor="#222222",
                    elinewidth=1.2,
                    capsize=4,
                    capthick=1.2,
                )
                for piece in (*err.lines[1], *err.lines[2]):
                    chart.mark(piece, text, rate, "part")
        _legend(chart, ax, [Patch(color=color(b)) for b in range(len(bar_names))], bar_names)
    return chart.svg


def heatmap(
    title: str,
    rows: Sequence[str],
    columns: Sequence[str],
    values: dict[tuple[str, str], Rate],
) -> str:
    """Category (rows) × agent (columns) propensity; each cell shows value, interval and n.
    Darker red means the risky tool was chosen more often."""
    label_w, cell_w, cell_h = 170, 150, 44
    head_chars, row_chars = 20, 24
    head_lines = max((_lines(c, head_chars) for c in columns), default=1)
    row_lines = max((_lines(r, row_chars) for r in rows), default=1)
    cell_h = max(cell_h, LINE_PX * row_lines + 8)
    top = 36 + LINE_PX * head_lines
    n_cols, n_rows = max(1, len(columns)), max(1, len(rows))
    width = label_w + cell_w * n_cols + 10
    height = top + cell_h * n_rows + 10
    cmap = matplotlib.colormaps["Reds"]
    gap_x, gap_y = 2 / cell_w, 2 / cell_h
    with _chart(title, width, height) as chart:
        ax = chart.axes(left=label_w, right=10, top=top, bottom=10)
        ax.set_xlim(0, n_cols)
        ax.set_ylim(n_rows, 0)
        ax.set_axis_off()
        for c, column in enumerate(columns):
            head = ax.text(
                c + 0.5,
                -6 / cell_h,
                _wrapped(column, head_chars),
                ha="center",
                va="bottom",
                linespacing=1.15,
            )
            chart.mark(head, column, None, "tip")
        for r, row in enumerate(rows):
            side = ax.text(
                -8 / cell_w,
                r + 0.5,
                _wrapped(row, row_chars),
                ha="right",
                va="center",
                linespacing=1.15,
            )
            chart.mark(side, row, None, "tip")
            for c, column in enumerate(columns):
                rate = values.get((row, column))
                shown = _shown(rate)
                box = (c, r), 1 - gap_x, 1 - gap_y
                if rate is None or shown is None:
                    ax.add_patch(Rectangle(*box, facecolor=EMPTY, linewidth=0))
                    continue
                value, low, high = shown
                label = f"{row} · {column}: {describe(rate)}"
                cell = Rectangle(*box, facecolor=to_hex(cmap(value)), linewidth=0)
                ax.add_patch(cell)
                chart.mark(cell, label, rate)
                ink = "#ffffff" if value > 0.6 else "#111111"
                middle = c + (1 - gap_x) / 2
                big = ax.text(
                    middle,
                    r + 0.5 - 4 / cell_h,
                    f"{value:.2f}",
                    ha="center",
                    va="baseline",
                    color=ink,
                    fontsize=FONT + 3,
                    fontweight="bold",
                )
                small = ax.text(
                    middle,
                    r + 0.5 + 12 / cell_h,
                    f"[{low:.2f}, {high:.2f}] n={rate.estimate.n}",
                    ha="center",
                    va="baseline",
                    color=ink,
                    fontsize=FONT - 1,
                )
                chart.mark(big, label, rate, "part")
                chart.mark(small, label, rate, "part")
    return chart.svg


def stacked_bars(
    title: str,
    rows: Sequence[tuple[str, Sequence[tuple[str, Rate]]]],
    *,
    segment_names: Sequence[str],
    colors: dict[str, str] | None = None,
    width: int = 760,
) -> str:
    """Each row (a resource, a framing) as one 100% bar split into outcome shares."""
    label_w, legend_w, bar_h, top, bottom = 150, 150, 26, 30, 42
    name_chars = 18
    heads = [
        (name, f"{name} (n={segments[0][1].estimate.n if segments else 0})")
        for name, segments in rows
    ]
    # A row grows with its wrapped name: every row gets the height of the tallest.
    row_px = max([bar_h + 8, *(LINE_PX * _lines(head, name_chars) + 6 for _, head in heads)])
    n_rows = max(1, len(rows))
    height = max(top + row_px * n_rows + bottom, top + legend_px(segment_names) + bottom)
    bar_px = width - label_w - legend_w
    palette = {name: color(i) for i, name in enumerate(segment_names)} | (colors or {})
    with _chart(title, width, height) as chart:
        plot_h = height - top - bottom
        ax = chart.axes(left=label_w, right=legend_w, top=top, bottom=bottom)
        _proportion_axis(ax, "share of episodes", axis="x")
        # One row is row_px pixels: rows keep their height whatever the legend needs.
        ax.set_ylim(plot_h / row_px, 0)
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)
        thickness = bar_h / row_px
        for r, ((name, segments), (_, head_text)) in enumerate(zip(rows, heads, strict=True)):
            y = r + 0.5
            head = ax.text(
                -8 / bar_px,
                y,
                _wrapped(head_text, name_chars),
                ha="right",
                va="center",
                fontsize=FONT - 1,
                linespacing=1.15,
            )
            chart.mark(head, name, None, "tip")
            x = 0.0
            for outcome, rate in segments:
                share = rate.estimate.value or 0.0
                if share <= 0:
                    continue
                label = f"{name} · {outcome}: {describe(rate)}"
                (rect,) = ax.barh(
                    [y], [share], left=x, height=thickness, color=palette[outcome], linewidth=0
                )
                chart.mark(rect, label, rate)
                if share * bar_px > 34:
                    text = ax.text(
                        x + share / 2,
                        y,
                        f"{share:.2f}",
                        ha="center",
                        va="center",
                        color="#ffffff",
                        fontsize=FONT - 1,
                    )
                    chart.mark(text, label, rate, "part")
                x += share
        _legend(chart, ax, [Patch(color=palette[n]) for n in segment_names], segment_names)
    return chart.svg
