"""The index's tables, and queries turned into SQL conditions. Pure: strings and tuples.

``mails`` has one row per mail and direction: the MailRow's fields as columns, case-folded
copies for matching, and ``terms``, the one string free-text search (``q``) looks in.
Substring filters are ``instr`` over whole columns (measured: ~50 ms a pass over 150,000
mails, see docs/performance.md and decision D34, "The mail index"), so no text index is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from agentkit.mailindex.errors import QueryRefused
from agentkit.mailindex.fold import MailRow
from agentkit.mailindex.query import MailQuery

__all__ = [
    "COLUMNS",
    "GROUP_COLUMN",
    "INSERT",
    "SCHEMA",
    "SELECT",
    "UPDATE",
    "columns",
    "cursor_bounds",
    "joined",
    "needs_scan",
    "per_day_select",
    "row_of",
    "where",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS mails (
    id                INTEGER PRIMARY KEY,
    mail_id           TEXT NOT NULL,
    direction         TEXT NOT NULL,
    first_ts          REAL NOT NULL,
    last_ts           REAL NOT NULL,
    outcome           TEXT NOT NULL,
    sender            TEXT NOT NULL,
    sender_domain     TEXT NOT NULL,
    recipients        TEXT NOT NULL,  -- one per line
    recipient_domains TEXT NOT NULL,  -- each one between two line breaks
    subject           TEXT NOT NULL,
    subject_key       TEXT NOT NULL,  -- case folded, for matching
    client            TEXT NOT NULL,
    rule              TEXT NOT NULL,
    reason            TEXT NOT NULL,
    department        TEXT NOT NULL,
    attachments       TEXT NOT NULL,  -- names, one per line
    attachments_key   TEXT NOT NULL,  -- case folded
    attachment_count  INTEGER NOT NULL,
    withheld_count    INTEGER NOT NULL,
    size              INTEGER,
    steps             TEXT NOT NULL,  -- space separated
    agents            TEXT NOT NULL,
    terms             TEXT NOT NULL,  -- what q looks in: id, addresses, subject, names; folded
    UNIQUE (mail_id, direction)
);
CREATE INDEX IF NOT EXISTS mails_time ON mails (first_ts);
CREATE INDEX IF NOT EXISTS mails_outcome ON mails (outcome, first_ts);
-- Statistics read only these columns: a scan of this index is a quarter of the table's.
CREATE INDEX IF NOT EXISTS mails_stats ON mails (first_ts, direction, outcome, rule, reason,
    department, sender_domain, sender, recipient_domains);
"""
COLUMNS = (
    "mail_id", "direction", "first_ts", "last_ts", "outcome", "sender", "sender_domain",
    "recipients", "recipient_domains", "subject", "subject_key", "client", "rule", "reason",
    "department", "attachments", "attachments_key", "attachment_count", "withheld_count",
    "size", "steps", "agents", "terms",
)  # fmt: skip
# The statements are built from the fixed names above, never from a value (S608).
SELECT = f"SELECT id, {', '.join(COLUMNS)} FROM mails"  # noqa: S608
INSERT = f"INSERT INTO mails ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"  # noqa: S608
UPDATE = f"UPDATE mails SET {', '.join(f'{c} = ?' for c in COLUMNS)} WHERE id = ?"  # noqa: S608
GROUP_COLUMN = {
    "none": "''", "rule": "rule", "sender-domain": "sender_domain",
    "recipient-domain": "recipient_domains", "sender-user": "sender",
    "department": "department", "outcome": "outcome", "reason": "reason",
    "direction": "direction",
}  # fmt: skip

Add = Callable[..., None]


def columns(row: MailRow) -> tuple[Any, ...]:
    """``row`` as the values of COLUMNS."""
    domains = row.recipient_domains
    names = "\n".join(row.attachments)
    return (
        row.mail_id, row.direction, row.first_ts, row.last_ts, row.outcome, row.sender,
        row.sender_domain, "\n".join(row.recipients), "\n" + "".join(f"{d}\n" for d in domains),
        row.subject, row.subject.casefold(), row.client, row.rule, row.reason, row.department,
        names, names.casefold(), row.attachment_count, row.withheld_count, row.size,
        " ".join(sorted(row.steps)), " ".join(sorted(row.agents)), terms(row),
    )  # fmt: skip


def row_of(record: Sequence[Any]) -> MailRow:
    """The MailRow of a record of SELECT (its first value is the row id)."""
    r = dict(zip(COLUMNS, record[1:], strict=True))  # terms is derived: not read back
    return MailRow(
        mail_id=r["mail_id"], direction=r["direction"], first_ts=r["first_ts"],
        last_ts=r["last_ts"], sender=r["sender"], recipients=_lines(r["recipients"]),
        subject=r["subject"], client=r["client"], rule=r["rule"], reason=r["reason"],
        department=r["department"], attachments=_lines(r["attachments"]),
        attachment_count=r["attachment_count"], withheld_count=r["withheld_count"],
        size=r["size"], steps=frozenset(r["steps"].split()),
        agents=frozenset(r["agents"].split()),
    )  # fmt: skip


def terms(row: MailRow) -> str:
    """What ``q`` looks in: id, addresses, subject and attachment names, case folded."""
    return "\n".join((row.mail_id, row.sender, *row.recipients, row.subject,
                      *row.attachments)).casefold()  # fmt: skip


def needs_scan(query: MailQuery) -> bool:
    """True when a filter is not answered by an index (text, exact values, counts): then
    the page is the newest of a full pass, not a walk down the time index (which reads rows
    at random until the page is full: slow when matches are rare)."""
    indexed = {"direction", "since", "until", "outcomes", "limit", "offset", "after"}
    return any(
        getattr(query, name) not in ("", None, ())
        for name in MailQuery.__dataclass_fields__
        if name not in indexed
    )


def where(query: MailQuery) -> tuple[list[str], list[Any]]:
    """SQL conditions (with their arguments) for every filter ``query`` sets."""
    clauses: list[str] = []
    args: list[Any] = []

    def add(clause: str, *values: Any) -> None:
        clauses.append(clause)
        args.extend(values)

    _kind_and_time(query, add)
    _text(query, add)
    _exact(query, add)
    return clauses, args


def per_day_select(group: str, clauses: list[str], day_s: int) -> str:
    """Each selected mail's local day (the first argument is the UTC offset) and group, in
    a span of constant offset (the last two arguments)."""
    day = f"CAST((first_ts + ?) / {day_s} AS INTEGER)"
    within = joined([*clauses, "first_ts >= ?", "first_ts < ?"])
    return f"SELECT {day}, {GROUP_COLUMN[group]} FROM mails{within}"  # noqa: S608


def joined(clauses: list[str]) -> str:
    return " WHERE " + " AND ".join(clauses) if clauses else ""


def cursor_bounds(text: str) -> tuple[float, int]:
    """(time, row id) of a cursor an item of a page carried."""
    first, _, row_id = text.partition(":")
    try:
        return float(first), int(row_id)
    except ValueError:
        raise QueryRefused("after", text, "is not a cursor from a page of this list") from None


def _kind_and_time(query: MailQuery, add: Add) -> None:
    if query.direction:
        add("direction = ?", query.direction)
    if query.since is not None:
        add("first_ts >= ?", query.since)
    if query.until is not None:
        add("first_ts < ?", query.until)
    if query.outcomes:
        add(f"outcome IN ({', '.join('?' * len(query.outcomes))})", *query.outcomes)


def _text(query: MailQuery, add: Add) -> None:
    """Substrings, ignoring case: addresses are stored in lower case, the subject and the
    attachment names also case folded."""
    if query.q:
        add("instr(terms, ?)", query.q.casefold())
    for column, value in (("sender", query.sender), ("recipients", query.recipient)):
        if value:
            add(f"instr({column}, ?)", value.lower())
    for column, value in (("subject_key", query.subject), ("attachments_key", query.attachment)):
        if value:
            add(f"instr({column}, ?)", value.casefold())


def _exact(query: MailQuery, add: Add) -> None:
    if query.domain:
        domain = query.domain.lower()
        add("(sender_domain = ? OR instr(recipient_domains, ?))", domain, f"\n{domain}\n")
    if query.client.endswith((".", ":")):  # a prefix: every address in that network
        add("substr(client, 1, ?) = ?", len(query.client), query.client)
    elif query.client:
        add("client = ?", query.client)
    if query.address:
        address = query.address.lower()
        add("(sender = ? OR instr(char(10) || recipients || char(10), ?))",
            address, f"\n{address}\n")  # fmt: skip
    for column in ("rule", "reason", "department"):
        if getattr(query, column):
            add(f"{column} = ?", getattr(query, column))
    if query.attachment_count is not None:
        add("attachment_count = ?", query.attachment_count)
    if query.attachment_count_min is not None:
        add("attachment_count >= ?", query.attachment_count_min)


def _lines(text: str) -> tuple[str, ...]:
    return tuple(text.split("\n")) if text else ()
