"""The questions the console and the API ask, built from query parameters and checked."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from agentkit.mailindex import MailQuery, QueryRefused, StatsQuery, zone_named
from agentkit.mailindex.periods import iso_time, offset_spans, parse_instant

SEOUL = ZoneInfo("Asia/Seoul")


def seoul(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=SEOUL).timestamp()


def test_parameters_become_a_query() -> None:
    query = MailQuery.from_params(
        {"direction": "out", "q": " 견적 ", "since": "2026-11-01", "until": "2026-11-02",
         "outcome": "held,approved", "limit": "20", "offset": "40", "attachment_count_min": "1",
         "client": "10.1."},
        SEOUL,
    )  # fmt: skip
    assert query.direction == "out"
    assert query.q == "견적"
    assert query.since == seoul("2026-11-01T00:00:00")
    assert query.until == seoul("2026-11-03T00:00:00")  # a date alone as until includes that day
    assert query.outcomes == ("held", "approved")
    assert (query.limit, query.offset, query.attachment_count_min) == (20, 40, 1)


def test_times_without_an_offset_are_in_the_given_zone() -> None:
    assert parse_instant("2026-11-01T09:00", SEOUL, parameter="since") == seoul("2026-11-01T09:00")
    assert parse_instant("2026-11-01T00:00Z", SEOUL, parameter="since") == seoul("2026-11-01T09:00")
    assert parse_instant("2026-11-01T09:00:00+09:00", UTC, parameter="s") == seoul(
        "2026-11-01T09:00"
    )


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"direction": "sideways"}, "direction"),
        ({"outcome": "delivered,lost"}, "outcome"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"offset": "10001"}, "offset"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-11-02", "until": "2026-11-01T00:00"}, "until"),
        ({"q": "x" * 301}, "q"),
        ({"attachment_count": "1.5"}, "attachment_count"),
        ({"sendr": "kim"}, "sendr"),  # a typo is refused, not ignored
    ],
)
def test_bad_parameters_are_refused_with_what_where_and_why(
    params: dict[str, str], parameter: str
) -> None:
    with pytest.raises(QueryRefused) as refused:
        MailQuery.from_params(params, SEOUL)
    assert refused.value.parameter == parameter
    assert parameter in str(refused.value)
    assert refused.value.why


def test_statistics_parameters() -> None:
    query = StatsQuery.from_params({"by": "month", "group": "sender-domain", "direction": "in",
                                    "limit": "5"}, SEOUL)  # fmt: skip
    assert (query.by, query.group, query.filters.direction) == ("month", "sender-domain", "in")
    assert query.filters.limit == 50  # paging does not apply to statistics
    assert StatsQuery.from_params({}, SEOUL).by == "day"
    for params, parameter in (({"by": "week"}, "by"), ({"group": "colour"}, "group")):
        with pytest.raises(QueryRefused, match=parameter):
            StatsQuery.from_params(params, SEOUL)


def test_other_parameters_may_be_allowed_by_the_caller() -> None:
    params = {"q": "x", "format": "xlsx", "lang": "en"}
    with pytest.raises(QueryRefused, match="format"):
        MailQuery.from_params(params, SEOUL)
    assert MailQuery.from_params(params, SEOUL, also_allowed=frozenset({"format", "lang"})).q == "x"


def test_zones() -> None:
    assert zone_named(None) == SEOUL  # the site's default
    assert zone_named("UTC") == ZoneInfo("UTC")
    for bad in ("Mars/Olympus", "../../etc/passwd"):
        with pytest.raises(QueryRefused, match="tz"):
            zone_named(bad)
    assert iso_time(seoul("2026-11-02T08:30:00"), SEOUL) == "2026-11-02T08:30:00+09:00"


def test_offset_spans_follow_daylight_saving_to_the_second() -> None:
    york = ZoneInfo("America/New_York")
    lo = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    hi = datetime(2027, 1, 1, tzinfo=UTC).timestamp()
    spans = offset_spans(york, lo, hi)
    assert [(s[2] // 3600) for s in spans] == [-5, -4, -5]
    assert spans[0][1] == datetime(2026, 3, 8, 7, tzinfo=UTC).timestamp()
    assert spans[1][1] == datetime(2026, 11, 1, 6, tzinfo=UTC).timestamp()
    assert spans[0][0] == lo
    assert spans[-1][1] == hi
    assert offset_spans(SEOUL, lo, hi) == [(lo, hi, 9 * 3600)]
