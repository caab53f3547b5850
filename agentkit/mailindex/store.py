"""The mail index in SQLite: one row per mail and direction, kept up to date from the audit log.

The index is a file of its own beside the audit log (``audit.db`` -> ``audit-index.db``): it is
derived data, rebuilt from the events when it is missing, when its schema version changes or
when the audit log it followed was replaced (the event at its position is not the one it
indexed). The agents never write it; recording an audit
event costs what it cost before. ``catch_up`` reads the events after the last one indexed, in
batches, folds them (``fold.fold``) into the rows they touch and stores the rows and the new
position in one transaction, so a catch-up killed at any point resumes where the last batch
ended and never folds an event twice. The console calls it before answering, or
``IndexFollower`` calls it every second.

Queries answer in the shapes of ``shapes`` (the API's contract, docs/console-data.md).
"""

from __future__ import annotations

import heapq
import json
import logging
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import tzinfo
from pathlib import Path
from typing import Any

from agentkit.audit import AuditEvent
from agentkit.mailindex import shapes
from agentkit.mailindex.errors import AmbiguousMail, QueryRefused
from agentkit.mailindex.fold import DIRECTIONS, Direction, MailRow, direction_of, fold, mail_key
from agentkit.mailindex.periods import DAY_S, offset_spans, period_label
from agentkit.mailindex.query import MAX_LIMIT, MailQuery, StatsQuery
from agentkit.mailindex.sql import (
    INSERT,
    SCHEMA,
    SELECT,
    UPDATE,
    columns,
    cursor_bounds,
    joined,
    needs_scan,
    per_day_select,
    row_of,
    where,
)
from agentkit.periodic import PeriodicPass
from protocol.sqlite import (
    Synchronous,
    open_read_only_database,
    open_wal_database,
    read_meta,
    write_meta,
)

__all__ = ["BATCH_EVENTS", "MAX_EXPORT_ROWS", "SCHEMA_VERSION", "IndexFollower", "MailIndex",
           "index_path_for"]  # fmt: skip

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1  # a different version in the file: the index is dropped and rebuilt
BATCH_EVENTS = 5000  # events per catch-up transaction: ~0.1 s of work, then readers go first
MAX_EXPORT_ROWS = 100_000  # an export of more is cut here (a spreadsheet is not an archive)
_ID_CHUNK = 500  # ids per "IN (...)" when loading the rows a batch touches
Key = tuple[str, Direction]
Page = tuple[int, list[Any]]  # the total, and the page's records
# Matches one pass carries into Python to find the total and the page itself. Measured on
# 150,000 mails, carrying every pair costs about what a second pass costs (~110 ms either way
# when all match); the cap bounds the memory (~10 MB) of a far larger index.
ONE_PASS_MATCHES = 100_000


def index_path_for(audit_path: Path) -> Path:
    """Where the index of the audit log at ``audit_path`` lives: beside it."""
    return audit_path.with_name(f"{audit_path.stem}-index.db")


class MailIndex:
    """The index of one audit log. Safe to share between the threads of one process."""

    def __init__(self, audit_path: Path, index_path: Path | None = None) -> None:
        self._audit_path = audit_path
        self._lock = threading.Lock()
        # NORMAL: a power cut loses the last batches, which the next catch-up folds again.
        self._db = open_wal_database(
            index_path or index_path_for(audit_path), SCHEMA, synchronous=Synchronous.NORMAL
        )
        version = read_meta(self._db, "schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            self._rebuild(f"schema version {version}, this code's is {SCHEMA_VERSION}")
        write_meta(self._db, "schema_version", SCHEMA_VERSION)

    # ------------------------------------------------------------------------------ catch-up

    def catch_up(self, *, batch_events: int = BATCH_EVENTS, max_batches: int | None = None) -> int:
        """Fold the events not indexed yet, ``batch_events`` per transaction; returns how many
        events were read. Idempotent; resumes after any interruption."""
        read = batches = 0
        while max_batches is None or batches < max_batches:
            with self._lock:
                done = self._one_batch(batch_events)
            if done == 0:
                break
            read, batches = read + done, batches + 1
        return read

    def indexed_up_to(self) -> int:
        """The id of the last audit event folded in (0: none)."""
        with self._lock:
            return read_meta(self._db, "last_event_id")

    def _one_batch(self, size: int) -> int:
        with self._audit_log() as events:
            if events is None:
                return 0  # no audit log yet
            self._db.execute("BEGIN IMMEDIATE")  # another process catching up waits, then goes on
            try:
                records = self._next_events(events, size)
                self._fold_in([_event(r) for r in records])
                self._forget_pruned(events)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return len(records)

    def _next_events(self, events: sqlite3.Connection, size: int) -> list[Any]:
        """Up to ``size`` events after the index's position; from the start, after clearing
        the index, when the event at that position is not the one indexed (the audit log
        was replaced, or pruned past it)."""
        last = read_meta(self._db, "last_event_id")
        if last and _stamp(events, last) != read_meta(self._db, "last_event_ms"):
            self._clear(f"event {last} of the audit log is not the one indexed")
            last = 0
        records = events.execute(
            "SELECT id, ts, agent, mail_id, step, details FROM events WHERE id > ? "
            "ORDER BY id LIMIT ?",
            (last, size),
        ).fetchall()
        if records:
            write_meta(self._db, "last_event_id", records[-1][0])
            write_meta(self._db, "last_event_ms", round(records[-1][1] * 1000))
        return records

    def _forget_pruned(self, events: sqlite3.Connection) -> None:
        """Drop the rows of mails the audit log's prune took every event of (the chain's base
        moved on): the index is derived from the events and keeps no more than they do."""
        try:
            base = events.execute("SELECT id FROM chain WHERE name = 'base'").fetchone()
        except sqlite3.OperationalError:
            return  # a log from before the chain: never pruned
        if base is None or base[0] <= read_meta(self._db, "pruned_through"):
            return
        (oldest,) = events.execute("SELECT MIN(ts) FROM events").fetchone()
        if oldest is not None:
            gone = self._db.execute("DELETE FROM mails WHERE last_ts < ?", (oldest,)).rowcount
            log.info("mail index: %d mail(s) whose events were all pruned forgotten", gone)
        write_meta(self._db, "pruned_through", base[0])

    def _fold_in(self, events: list[AuditEvent]) -> None:
        keyed = [(key, e) for e in events if (key := mail_key(e)) is not None]
        stored = self._load({key for key, _ in keyed})
        rows: dict[Key, MailRow] = {key: row for key, (_, row) in stored.items()}
        for key, event in keyed:
            rows[key] = fold(rows.get(key), event)
        updates = [
            (*columns(rows[key]), row_id)
            for key, (row_id, before) in stored.items()
            if rows[key] != before
        ]
        self._db.executemany(UPDATE, updates)
        self._db.executemany(INSERT, [columns(rows[k]) for k in rows.keys() - stored.keys()])

    def _load(self, keys: set[Key]) -> dict[Key, tuple[int, MailRow]]:
        """The stored rows of ``keys``: key -> (row id, MailRow)."""
        ids = sorted({mail_id for mail_id, _ in keys})
        found: dict[Key, tuple[int, MailRow]] = {}
        for start in range(0, len(ids), _ID_CHUNK):
            chunk = ids[start : start + _ID_CHUNK]
            marks = ", ".join("?" * len(chunk))
            for record in self._db.execute(f"{SELECT} WHERE mail_id IN ({marks})", chunk):
                row = row_of(record)
                if (row.mail_id, row.direction) in keys:
                    found[(row.mail_id, row.direction)] = (record[0], row)
        return found

    @contextmanager
    def _audit_log(self) -> Iterator[sqlite3.Connection | None]:
        """The audit log, read-only, for one use (None while it does not exist). Opened each
        time: a connection kept open would be bound to the thread that opened it, and to
        the file it opened even after the log was replaced."""
        if not self._audit_path.exists():
            yield None
            return
        events = open_read_only_database(self._audit_path)
        try:
            yield events
        finally:
            events.close()

    def _rebuild(self, why: str) -> None:
        log.warning("mail index of %s: rebuilt from the audit log (%s)", self._audit_path, why)
        self._db.executescript("DROP TABLE IF EXISTS mails;")
        self._db.executescript(SCHEMA)
        write_meta(self._db, "last_event_id", 0)
        write_meta(self._db, "last_event_ms", 0)
        write_meta(self._db, "pruned_through", 0)

    def _clear(self, why: str) -> None:
        log.warning("mail index of %s: rebuilt from the audit log (%s)", self._audit_path, why)
        self._db.execute("DELETE FROM mails")
        write_meta(self._db, "last_event_id", 0)
        write_meta(self._db, "last_event_ms", 0)
        write_meta(self._db, "pruned_through", 0)

    # ------------------------------------------------------------------------------ queries

    def search(self, query: MailQuery, zone: tzinfo) -> dict[str, Any]:
        """``{"items": [mail, ...], "total": N}``: one page, newest first, of the mails
        ``query`` selects, and how many it selects in all (whatever page this is)."""
        clauses, args = where(query)
        with self._lock:
            if needs_scan(query):
                total, records = self._page_by_scan(query, clauses, args)
            else:
                total, records = self._page_by_index(query, clauses, args)
        return {"items": [shapes.mail(row_of(r), r[0], zone) for r in records], "total": total}

    def _page_by_index(self, query: MailQuery, clauses: list[str], args: list[Any]) -> Page:
        """Time, direction and outcome only: the count and the page both follow an index."""
        (total,) = self._db.execute(f"SELECT COUNT(*) FROM mails{joined(clauses)}", args).fetchone()  # noqa: S608
        page_clauses, page_args = _after(query, clauses, args)
        records = self._db.execute(
            f"{SELECT}{joined(page_clauses)} ORDER BY first_ts DESC, id DESC LIMIT ? OFFSET ?",
            [*page_args, query.limit, query.offset],
        ).fetchall()
        return int(total), records

    def _page_by_scan(self, query: MailQuery, clauses: list[str], args: list[Any]) -> Page:
        """A filter no index answers. One pass collects (time, id) of every match, up to
        ONE_PASS_MATCHES: then the total is their number and the page their newest. With more
        matches, that pass stopped early, and SQL counts them and sorts out the page (two
        passes, but no more pairs carried into Python)."""
        sql = f"SELECT first_ts, id FROM mails{joined(clauses)} LIMIT ?"  # noqa: S608
        matches = self._db.execute(sql, [*args, ONE_PASS_MATCHES + 1]).fetchall()
        if len(matches) > ONE_PASS_MATCHES:
            return self._page_by_sorting(query, clauses, args)
        total = len(matches)
        if query.after:
            bound = cursor_bounds(query.after)
            matches = [m for m in matches if tuple(m) < bound]
        newest = heapq.nlargest(query.offset + query.limit, matches)[query.offset :]
        ids = [row_id for _, row_id in newest]
        by_id = {r[0]: r for r in self._db.execute(_by_ids(len(ids)), ids)}
        return total, [by_id[i] for i in ids]

    def _page_by_sorting(self, query: MailQuery, clauses: list[str], args: list[Any]) -> Page:
        """Many matches: a pass counting them, a pass keeping the newest ``offset + limit``
        (``+first_ts``: sorted, not walked along the time index, which reads at random)."""
        (total,) = self._db.execute(f"SELECT COUNT(*) FROM mails{joined(clauses)}", args).fetchone()  # noqa: S608
        page_clauses, page_args = _after(query, clauses, args)
        records = self._db.execute(
            f"{SELECT}{joined(page_clauses)} ORDER BY +first_ts DESC, id DESC LIMIT ? OFFSET ?",
            [*page_args, query.limit, query.offset],
        ).fetchall()
        return int(total), records

    def iter_mails(self, query: MailQuery, zone: tzinfo) -> Iterator[dict[str, Any]]:
        """Every mail ``query``'s filters select, newest first, at most MAX_EXPORT_ROWS: what
        an export writes. Reads a page at a time, so other callers are not held up."""
        page = replace(query.filters, limit=MAX_LIMIT)
        given = 0
        while given < MAX_EXPORT_ROWS:
            items = self.search(page, zone)["items"]
            yield from items[: MAX_EXPORT_ROWS - given]
            given += len(items)
            if len(items) < MAX_LIMIT:
                return
            page = replace(page, after=items[-1]["cursor"])

    def detail(
        self, mail_id: str, zone: tzinfo, direction: Direction | None = None
    ) -> dict[str, Any] | None:
        """The mail as in a list, plus ``"trail"``: every event of it, oldest first. None when
        the index has no such mail; AmbiguousMail when the id has both directions and none
        is named."""
        if direction is not None and direction not in DIRECTIONS:
            raise QueryRefused("direction", direction, "is in or out")
        with self._lock:
            records = self._db.execute(f"{SELECT} WHERE mail_id = ?", (mail_id,)).fetchall()
            records = [r for r in records if direction in (None, r[2])]
            if len(records) > 1:
                raise AmbiguousMail(mail_id)
            if not records:
                return None
            row = row_of(records[0])
            item = shapes.mail(row, records[0][0], zone)
            item["trail"] = [shapes.trail_item(e, zone) for e in self._events_of(row)]
        return item

    def _events_of(self, row: MailRow) -> list[AuditEvent]:
        with self._audit_log() as events:
            if events is None:
                return []
            records = events.execute(
                "SELECT id, ts, agent, mail_id, step, details FROM events WHERE mail_id = ? "
                "ORDER BY ts, id",
                (row.mail_id,),
            ).fetchall()
        return [e for e in map(_event, records) if direction_of(e) == row.direction]

    def statistics(self, query: StatsQuery) -> dict[str, Any]:
        """``{"rows": [{"period", "group", "count"}, ...]}``: mails per period of their time
        in ``query.zone`` and per group, in order of period then group. A mail to two
        recipient domains counts once in each when grouped by recipient domain."""
        clauses, args = where(query.filters)
        per_day: Counter[tuple[int, str]] = Counter()
        with self._lock:
            lo, hi = self._time_range(query.filters, clauses, args)
            for start, end, offset in offset_spans(query.zone, lo, hi) if hi > lo else []:
                sql = per_day_select(query.group, clauses, DAY_S)
                per_day.update(self._db.execute(sql, [offset, *args, start, end]))
        return {"rows": _rows(per_day, query)}

    def _time_range(
        self, query: MailQuery, clauses: list[str], args: list[Any]
    ) -> tuple[float, float]:
        if query.since is not None and query.until is not None:
            return query.since, query.until
        sql = f"SELECT MIN(first_ts), MAX(first_ts) FROM mails{joined(clauses)}"  # noqa: S608
        low, high = self._db.execute(sql, args).fetchone()
        if low is None:
            return 0.0, 0.0
        lo = query.since if query.since is not None else float(low)
        hi = query.until if query.until is not None else float(high) + 1
        return lo, hi

    def close(self) -> None:
        with self._lock:
            self._db.close()


class IndexFollower:
    """Calls ``catch_up`` every ``interval_s`` on a thread of its own, until ``stop``."""

    def __init__(self, index: MailIndex, interval_s: float = 1.0) -> None:
        self._index, self._interval_s = index, interval_s
        # a busy file, a full disk, a bug: logged, and tried again, so the index is never
        # silently stale behind a dead thread
        self._runner = PeriodicPass(
            "mail-index", index.catch_up, lambda: interval_s, "mail index catch-up failed",
            threading.Event(),
        )  # fmt: skip

    def start(self) -> None:
        self._runner.start()

    def stop(self) -> None:
        self._runner.stop()


def _stamp(events: sqlite3.Connection, event_id: int) -> int | None:
    """The time (ms) of the audit event ``event_id``: what tells it is the one indexed."""
    found = events.execute("SELECT ts FROM events WHERE id = ?", (event_id,)).fetchone()
    return None if found is None else round(found[0] * 1000)


def _event(record: Sequence[Any]) -> AuditEvent:
    try:
        details = json.loads(record[5])
    except ValueError:
        details = {}
    return AuditEvent(record[1], record[2], record[3], record[4],
                      details if isinstance(details, dict) else {})  # fmt: skip


def _by_ids(count: int) -> str:
    return f"{SELECT} WHERE id IN ({', '.join('?' * count)})"


def _after(query: MailQuery, clauses: list[str], args: list[Any]) -> tuple[list[str], list[Any]]:
    """The conditions of the page: the query's, and below the cursor when there is one."""
    if not query.after:
        return clauses, args
    return [*clauses, "(first_ts, id) < (?, ?)"], [*args, *cursor_bounds(query.after)]


def _rows(per_day: Counter[tuple[int, str]], query: StatsQuery) -> list[dict[str, Any]]:
    """Days rolled up into the periods asked for; recipient domains split one per group."""
    labels: dict[int, str] = {}
    counts: Counter[tuple[str, str]] = Counter()
    for (day, group), count in per_day.items():
        label = labels.get(day) or labels.setdefault(day, period_label(day, query.by))
        for key in _group_keys(query.group, group):
            counts[(label, key)] += count
    return [{"period": p, "group": g, "count": c} for (p, g), c in sorted(counts.items())]


def _group_keys(group: str, value: Any) -> list[str]:
    if group == "recipient-domain":
        return [d for d in str(value).split("\n") if d] or [""]
    return [str(value)]
