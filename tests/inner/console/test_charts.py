"""Charts drawn from data: every bar inside the picture, the tallest one full height, an
empty series an empty chart (no division by zero)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from inner_agent.console.charts import COLUMN_AREA, MAX_COLUMNS, MAX_ROWS, column_chart, row_chart

series = st.lists(st.tuples(st.text(max_size=20), st.integers(0, 10**9)), max_size=100)


@given(series)
def test_columns_stay_inside_the_picture(items):
    chart = column_chart(items)
    assert len(chart.bars) == min(len(items), MAX_COLUMNS)
    for bar in chart.bars:
        assert 0 <= bar.x
        assert bar.x + bar.width <= chart.width + 0.01
        assert 0 <= bar.y
        assert bar.y + bar.height <= chart.baseline + 0.01
    if chart.highest:  # the tallest column fills the column area, the others less
        tallest = [b for b in chart.bars if b.count == chart.highest]
        assert all(b.height == COLUMN_AREA for b in tallest)
        assert all(b.height <= COLUMN_AREA for b in chart.bars)


@given(series)
def test_rows_are_the_largest_groups_largest_first(items):
    chart = row_chart(items)
    assert len(chart.bars) == min(len(items), MAX_ROWS)
    counts = [b.count for b in chart.bars]
    assert counts == sorted(counts, reverse=True)
    assert all(b.x + b.width <= chart.width for b in chart.bars)


def test_the_last_columns_are_kept_and_an_empty_series_draws_nothing():
    chart = column_chart([(f"d{n}", n) for n in range(100)])
    assert chart.bars[-1].label == "d99"
    assert chart.bars[-1].height == chart.baseline - chart.bars[-1].y
    assert column_chart([]).bars == ()
    assert column_chart([("a", 0)]).bars[0].height == 0


def test_a_long_statistics_table_is_cut_on_the_page_but_charts_count_everything():
    from inner_agent.console.text import words
    from inner_agent.console.views import MAX_TABLE_ROWS, stats_view

    rows = [{"period": f"2026-{m:02d}", "group": f"d{n}.example", "count": 1}
            for m in range(1, 13) for n in range(100)]  # fmt: skip
    view = stats_view(rows, "sender-domain", words("ko"))
    assert len(view["table"]) == MAX_TABLE_ROWS
    assert view["cut"] == len(rows) - MAX_TABLE_ROWS
    assert view["total"] == len(rows)
    assert sum(b.count for b in view["periods"].bars) == len(rows)
