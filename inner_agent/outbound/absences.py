"""Dated absence delegation: "I am away 12-19 Dec; 김과장 decides for me".

An absence names the approver who is away, the delegate, and a window [starts, ends) in
epoch seconds (the web page turns the days into the console's time zone: the first day's
midnight to the midnight after the last). While the window is open the delegate may decide
every request addressed to the absent approver; the decision is recorded under the absent
approver's name with ``acted_by`` = the delegate (``lifecycle.on_behalf``: "kim for lee"),
so the history stays theirs. Before and after the window the delegate has no such power
(``covering`` asks with the injected clock's ``now``).

Kept in its own database file (``absences.db`` beside the outbound state): the directory's
schema belongs to the directory, and the outbound state's to the mail lifecycle. Each call
opens its connection and closes it again: absences are read when an approver opens a page or
decides, a few times a minute, and so no connection outlives the desk that asked.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import Path

from inner_agent.outbound.errors import AbsenceRefused
from protocol.sqlite import (
    AGENT_BUSY_TIMEOUT_S,
    StoreVersions,
    Synchronous,
    open_wal_database,
    schema_made,
)

__all__ = ["MAX_ABSENCE_DAYS", "Absence", "Absences", "window"]

# Longer than a parental leave is a reorganisation: the directory's approver should change.
MAX_ABSENCE_DAYS = 366

_SCHEMA = """
CREATE TABLE IF NOT EXISTS absences (
    id          INTEGER PRIMARY KEY,
    absent      TEXT NOT NULL,      -- lower case
    delegate    TEXT NOT NULL,      -- lower case
    starts      REAL NOT NULL,
    ends        REAL NOT NULL,      -- exclusive
    created_by  TEXT NOT NULL,
    created_at  REAL NOT NULL,
    cancelled   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS absences_delegate ON absences (delegate, ends);
"""

# The schema's history (protocol.sqlite). Version 1 (D109): this schema, made where missing,
# so a file of the release before versions (0) is upgraded and recorded like any other.
VERSIONS = StoreVersions("absences", (schema_made(_SCHEMA),))

_COLUMNS = "id, absent, delegate, starts, ends, created_by, created_at"


@dataclass(frozen=True)
class Absence:
    id: int
    absent: str
    delegate: str
    starts: float
    ends: float
    created_by: str
    created_at: float

    def open_at(self, now: float) -> bool:
        return self.starts <= now < self.ends


def window(first: date, last: date, zone: tzinfo) -> tuple[float, float]:
    """The epoch seconds of ``first``'s midnight and of the midnight after ``last`` in
    ``zone``; AbsenceRefused when the days are reversed or too many."""
    if last < first:
        raise AbsenceRefused("last", "마지막 날이 첫날보다 앞섭니다.")
    if (last - first).days + 1 > MAX_ABSENCE_DAYS:
        raise AbsenceRefused("last", f"부재 기간은 {MAX_ABSENCE_DAYS}일을 넘을 수 없습니다.")
    starts = datetime.combine(first, time(), zone)
    ends = datetime.combine(last + timedelta(days=1), time(), zone)
    return starts.timestamp(), ends.timestamp()


class Absences:
    def __init__(self, path: Path, *, clock: Callable[[], float]) -> None:
        self.path, self.clock = path, clock

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = open_wal_database(self.path, _SCHEMA, synchronous=Synchronous.FULL,
                               busy_timeout_s=AGENT_BUSY_TIMEOUT_S, versions=VERSIONS)  # fmt: skip
        try:
            yield db
        finally:
            db.close()

    def add(self, absent: str, delegate: str, span: tuple[float, float], by: str) -> Absence:
        """Store that ``delegate`` decides for ``absent`` during ``span``; AbsenceRefused when
        they are the same person or the window is empty or already over."""
        absent, delegate = absent.strip().lower(), delegate.strip().lower()
        if "@" not in delegate:
            raise AbsenceRefused("delegate", "대결자의 이메일 주소를 적어 주십시오.")
        if delegate == absent:
            raise AbsenceRefused("delegate", "자기 자신을 대결자로 지정할 수 없습니다.")
        starts, ends = span
        if ends <= starts or ends <= self.clock():
            raise AbsenceRefused("last", "이미 지난 기간입니다.")
        with self._db() as db:
            cursor = db.execute(
                "INSERT INTO absences (absent, delegate, starts, ends, created_by, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (absent, delegate, starts, ends, by, self.clock()),
            )
            row_id = cursor.lastrowid or 0
        return Absence(row_id, absent, delegate, starts, ends, by, self.clock())

    def cancel(self, absence_id: int, absent: str) -> bool:
        """End ``absent``'s own absence ``absence_id``; False when there is no such one."""
        with self._db() as db:
            cursor = db.execute(
                "UPDATE absences SET cancelled = 1 WHERE id = ? AND absent = ? AND cancelled = 0",
                (absence_id, absent.lower()),
            )
            return cursor.rowcount == 1

    def covering(self, delegate: str, now: float) -> list[Absence]:
        """The absences open at ``now`` in which ``delegate`` decides for someone."""
        return self._select("delegate = ? AND starts <= ? AND ends > ?",
                            (delegate.lower(), now, now))  # fmt: skip

    def of(self, absent: str, now: float) -> list[Absence]:
        """``absent``'s absences not yet over at ``now``, soonest first."""
        return self._select("absent = ? AND ends > ?", (absent.lower(), now))

    def _select(self, where: str, args: tuple[object, ...]) -> list[Absence]:
        with self._db() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM absences WHERE cancelled = 0 AND {where}"  # noqa: S608 - fixed text
                " ORDER BY starts",
                args,
            ).fetchall()
        return [Absence(*row) for row in rows]
