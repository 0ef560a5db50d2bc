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

This module draws the kinds of chart (lines, grouped bars, heatmap, stacked bars); what they
share (the figure and its SVG inlining, marks, colours, name wrapping) is in
:mod:`sandbox.results.html_report.figure`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib
from matplotlib.artist import Artist
from matplotlib.colors import to_hex
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from sandbox.results.html_report.data import Rate
from sandbox.results.html_report.figure import (
    EMPTY,
    FONT,
    LINE_PX,
    _chart,
    _legend,
    _lines,
    _proportion_axis,
    _shown,
    _wrapped,
    color,
    describe,
    legend_px,
)

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
