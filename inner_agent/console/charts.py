"""Bar charts drawn from data on the server, as geometry for an inline SVG. Pure.

No chart library and no script: the page gets ``<svg>`` with one ``<rect>`` per bar, drawn
by its template from the ``Chart`` here (labels are text nodes there, escaped like every
value). The SVG has a ``viewBox`` and scales to the page's width, a phone's included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Bar", "Chart", "column_chart", "row_chart"]

# Bars drawn at most; the rest of a long series is summed into the table, not the picture.
MAX_COLUMNS = 62  # two months of days
MAX_ROWS = 12
WIDTH = 1000  # viewBox units; the SVG is drawn at the page's width
TOP_SPACE = 16  # above the tallest column: its count
COLUMN_AREA = 180  # height of the columns themselves
LABEL_SPACE = 24  # under the columns: their labels
ROW_HEIGHT = 22
ROW_LABEL_WIDTH = 260


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    count: int
    label_x: float  # where the label's text starts (or is centred, for columns)
    label_y: float
    show_label: bool  # columns: only every n-th label, so they do not overlap


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: tuple[Bar, ...]
    highest: int  # the count of the tallest bar (the scale)
    baseline: float = 0.0  # columns: where they stand (the axis line)


def column_chart(series: Sequence[tuple[str, int]]) -> Chart:
    """One column per (label, count), left to right: counts per period."""
    shown = list(series)[-MAX_COLUMNS:]
    highest = max((count for _, count in shown), default=0)
    slot = WIDTH / max(1, len(shown))
    every = max(1, len(shown) // 8)  # about eight labels fit under the columns
    bars = []
    for n, (label, count) in enumerate(shown):
        height = COLUMN_AREA * count / highest if highest else 0.0
        bars.append(Bar(
            x=round(n * slot + slot * 0.1, 2), y=round(TOP_SPACE + COLUMN_AREA - height, 2),
            width=round(slot * 0.8, 2), height=round(height, 2), label=label, count=count,
            label_x=round(n * slot + slot / 2, 2), label_y=TOP_SPACE + COLUMN_AREA + 16,
            show_label=n % every == 0,
        ))  # fmt: skip
    height = TOP_SPACE + COLUMN_AREA + LABEL_SPACE
    return Chart(WIDTH, height, tuple(bars), highest, baseline=TOP_SPACE + COLUMN_AREA)


def row_chart(series: Sequence[tuple[str, int]]) -> Chart:
    """One row per (label, count), largest first, at most MAX_ROWS: counts per group."""
    shown = sorted(series, key=lambda item: (-item[1], item[0]))[:MAX_ROWS]
    highest = max((count for _, count in shown), default=0)
    room = WIDTH - ROW_LABEL_WIDTH - 60  # the count is written after the bar
    bars = [
        Bar(x=ROW_LABEL_WIDTH, y=n * ROW_HEIGHT + 3,
            width=round(room * count / highest, 2) if highest else 0.0, height=ROW_HEIGHT - 6,
            label=label, count=count, label_x=ROW_LABEL_WIDTH - 6, label_y=n * ROW_HEIGHT + 15,
            show_label=True)
        for n, (label, count) in enumerate(shown)
    ]  # fmt: skip
    return Chart(WIDTH, max(1, len(shown)) * ROW_HEIGHT, tuple(bars), highest)
