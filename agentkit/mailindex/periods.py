"""Times in the site's time zone: ISO 8601 with offset, parsing, and day/month/year periods.
Pure (zoneinfo reads the system's time zone database once per zone).

Statistics count a mail in the period of its time (its first event) in a named zone
(default Asia/Seoul). SQLite knows no time zones, so a range of time is cut into spans of
constant UTC offset (``offset_spans``): inside a span, a local day is a whole number of
``(ts + offset) // 86400``, which SQLite computes; the days are then labelled and rolled up
into months and years here.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agentkit.mailindex.errors import QueryRefused

__all__ = [
    "PERIODS",
    "SITE_ZONE",
    "Period",
    "iso_time",
    "offset_spans",
    "parse_instant",
    "period_label",
    "zone_named",
]

Period = Literal["day", "month", "year"]
PERIODS: tuple[Period, ...] = ("day", "month", "year")
SITE_ZONE = "Asia/Seoul"  # the default site time zone (issue 16)
DAY_S = 86400
_FORMAT = {"day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}
_EPOCH_DAY = date(1970, 1, 1)
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


def zone_named(name: str | None) -> tzinfo:
    """The zone of that IANA name (default SITE_ZONE); QueryRefused for an unknown name."""
    try:
        return ZoneInfo(name or SITE_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        raise QueryRefused("tz", name, "not a time zone name such as Asia/Seoul") from None


def iso_time(ts: float, zone: tzinfo) -> str:
    """``2026-11-02T08:30:00+09:00``: seconds, with the zone's offset at that moment."""
    return datetime.fromtimestamp(ts, zone).isoformat(timespec="seconds")


def parse_instant(text: str, zone: tzinfo, *, parameter: str, end_of_day: bool = False) -> float:
    """An ISO 8601 time; one without an offset is in ``zone``. A date alone is the start of
    that day, or with ``end_of_day`` the start of the next (so ``until=2026-11-02`` includes
    the 2nd)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise QueryRefused(parameter, text, "not an ISO 8601 date or time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    if end_of_day and _DATE_ONLY.fullmatch(text.strip()):
        following = moment.date() + timedelta(days=1)
        moment = datetime(following.year, following.month, following.day, tzinfo=zone)
    return moment.timestamp()


def offset_spans(zone: tzinfo, lo: float, hi: float) -> list[tuple[float, float, int]]:
    """[lo, hi) cut into (start, end, UTC offset in seconds) spans of constant offset.

    Walks a day at a time and finds each change of offset to the second (zones change their
    offset on whole seconds, a few times a year at most, never twice within a day)."""
    spans: list[tuple[float, float, int]] = []
    start, offset, probe = lo, _offset(zone, lo), lo
    while probe < hi:
        following = min(probe + DAY_S, hi)
        change = _change_between(zone, probe, following, offset)
        if change is None:
            probe = following
            continue
        spans.append((start, change, offset))
        start, offset, probe = change, _offset(zone, change), change
    spans.append((start, hi, offset))
    return [span for span in spans if span[0] < span[1]] or [(lo, hi, offset)]


def period_label(local_day: int, period: Period) -> str:
    """The label of a local day number (days since 1970-01-01, local) in ``period``."""
    return (_EPOCH_DAY + timedelta(days=local_day)).strftime(_FORMAT[period])


def _offset(zone: tzinfo, ts: float) -> int:
    delta = datetime.fromtimestamp(ts, UTC).astimezone(zone).utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


def _change_between(zone: tzinfo, lo: float, hi: float, offset: int) -> int | None:
    """The first whole second in (lo, hi] where the offset is no longer ``offset``."""
    if _offset(zone, hi) == offset:
        return None
    low, high = math.floor(lo), math.ceil(hi)
    while high - low > 1:
        middle = (low + high) // 2
        if _offset(zone, middle) == offset:
            low = middle
        else:
            high = middle
    return high
