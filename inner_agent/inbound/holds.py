"""The held inbound mails the outer agent told us of (their masked previews), and the decisions
on them, in ``state.dir/inbound-holds.db`` (WAL, synchronous FULL: a decision is a promise).

A hold's state machine (the outer agent's ``held/`` is the truth about the mail itself; this
is the inside's view, and the decision it sends)::

    WAITING --decide(release)--> RELEASED --published--> (decision on the link)
    WAITING --decide(drop)-----> DROPPED  --published--> (decision on the link)
    WAITING --expiry notice----> EXPIRED                 (the outer agent dropped it undecided)

A decision is stored only from WAITING (compare-and-set), so two approvers, or the console and
a command, deciding at the same moment cannot both win: the second is refused ``decided``. The
record goes out with a bundle id fixed when it was decided, so publishing it again after a crash
is a repeat the link de-duplicates; the outer agent applies a decision once in any case.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from inner_agent.inbound.errors import HoldRefused
from protocol.limits import BUNDLE_ID_LEN
from protocol.sqlite import (
    AGENT_BUSY_TIMEOUT_S,
    StoreVersions,
    Synchronous,
    open_wal_database,
    schema_made,
)

__all__ = ["Hold", "HoldBook", "HoldState"]

HoldState = Literal["waiting", "released", "dropped", "expired"]
# What a decision may be, in the record's words (docs/protocol.md §16.6).
ACTIONS: Final = {"release": "released", "drop": "dropped"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS holds (
    mail_id        TEXT PRIMARY KEY,   -- the held part, as the outer agent named it
    rule           TEXT NOT NULL,
    recipients     TEXT NOT NULL,      -- JSON list
    approvers      TEXT NOT NULL,      -- JSON list (lower case)
    approver_kind  TEXT NOT NULL,      -- department_head | security_officer
    policy_version INTEGER NOT NULL,
    held_until     TEXT NOT NULL,      -- ISO 8601 (the outer agent's clock)
    sender         TEXT NOT NULL,
    subject        TEXT NOT NULL,      -- masked
    arrived        REAL NOT NULL,
    state          TEXT NOT NULL,
    decided_by     TEXT NOT NULL DEFAULT '',
    decided_at     REAL,
    bundle_id      TEXT,               -- the decision record's, fixed when decided
    sent_seq       INTEGER             -- its seq on the out link once published
);
CREATE INDEX IF NOT EXISTS holds_state ON holds (state, arrived);
"""

# The schema's history (protocol.sqlite). Version 1 (D109): this schema, made where missing,
# so a file of the release before versions (0) is upgraded and recorded like any other.
VERSIONS = StoreVersions("inbound holds", (schema_made(_SCHEMA),))


_COLUMNS: Final = (
    "mail_id, rule, recipients, approvers, approver_kind, policy_version, held_until, sender,"
    " subject, arrived, state, decided_by, decided_at, bundle_id, sent_seq"
)


@dataclass(frozen=True)
class Hold:
    mail_id: str
    rule: str
    recipients: tuple[str, ...]
    approvers: tuple[str, ...]
    approver_kind: str
    policy_version: int
    held_until: str
    sender: str
    subject: str
    arrived: float
    state: HoldState
    decided_by: str
    decided_at: float | None
    bundle_id: bytes | None
    sent_seq: int | None

    @property
    def action(self) -> Literal["release", "drop"]:
        return "release" if self.state == "released" else "drop"


class HoldBook:
    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._db = open_wal_database(
            path,
            _SCHEMA,
            synchronous=Synchronous.FULL,
            busy_timeout_s=AGENT_BUSY_TIMEOUT_S,
            versions=VERSIONS,
        )
        # Python's lower(): SQLite's folds ASCII letters only, and addresses are compared as
        # the directory keeps them.
        self._db.create_function("unicode_lower", 1, _unicode_lower, deterministic=True)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(
        self,
        mail_id: str,
        *,
        rule: str,
        recipients: Sequence[str],
        approvers: Sequence[str],
        approver_kind: str,
        policy_version: int,
        held_until: str,
        sender: str,
        subject: str,
    ) -> bool:
        """Record a held mail; False when it was recorded before (the same preview again)."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO holds (mail_id, rule, recipients, approvers, approver_kind,"
                " policy_version, held_until, sender, subject, arrived, state)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'waiting')",
                (
                    mail_id,
                    rule,
                    json.dumps(list(recipients)),
                    json.dumps(list(approvers)),
                    approver_kind,
                    policy_version,
                    held_until,
                    sender,
                    subject,
                    self.clock(),
                ),
            )
            return cursor.rowcount == 1

    def decide(self, mail_id: str, action: str, decided_by: str) -> Hold:
        """Store a decision (``release`` or ``drop``) on a waiting hold; HoldRefused when there
        is no such hold or it was decided (or expired) already."""
        state = ACTIONS.get(action)
        if state is None:
            raise HoldRefused("bad_action", f"{action!r} is not release or drop")
        with self._lock:
            cursor = self._db.execute(
                "UPDATE holds SET state = ?, decided_by = ?, decided_at = ?, bundle_id = ?"
                " WHERE mail_id = ? AND state = 'waiting'",
                (
                    state,
                    decided_by,
                    self.clock(),
                    secrets.token_bytes(BUNDLE_ID_LEN).hex(),
                    mail_id,
                ),
            )
        hold = self.get(mail_id)
        if hold is None:
            raise HoldRefused("unknown_mail", f"no held mail {mail_id}")
        if cursor.rowcount != 1:
            raise HoldRefused(
                "decided",
                f"{mail_id} is {hold.state} already"
                + (f" (by {hold.decided_by})" if hold.decided_by else ""),
            )
        return hold

    def expired(self, mail_id: str) -> bool:
        """The outer agent dropped the mail undecided (its expiry notice arrived)."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE holds SET state = 'expired', decided_by = 'system', decided_at = ?"
                " WHERE mail_id = ? AND state = 'waiting'",
                (self.clock(), mail_id),
            )
            return cursor.rowcount == 1

    def unsent(self) -> list[Hold]:
        """Decisions not on the out link yet."""
        return self._select(
            "WHERE state IN ('released', 'dropped') AND sent_seq IS NULL ORDER BY decided_at"
        )

    def sent(self, mail_id: str, seq: int) -> None:
        with self._lock:
            self._db.execute("UPDATE holds SET sent_seq = ? WHERE mail_id = ?", (seq, mail_id))

    def prune_decided(self, before: float) -> int:
        """Forget holds decided (and their decision sent out) or expired before ``before``;
        returns how many (agentkit.storeretention). A waiting hold, or a decision not yet on
        the link, stays whatever its age."""
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM holds WHERE decided_at < ? AND (state = 'expired' OR"
                " (state IN ('released', 'dropped') AND sent_seq IS NOT NULL))",
                (before,),
            )
            return cursor.rowcount

    def get(self, mail_id: str) -> Hold | None:
        found = self._select("WHERE mail_id = ?", (mail_id,))
        return found[0] if found else None

    def listed(self, state: str | None = None, limit: int = 1000) -> list[Hold]:
        if state is None:
            return self._select("ORDER BY arrived DESC LIMIT ?", (limit,))
        return self._select("WHERE state = ? ORDER BY arrived DESC LIMIT ?", (state, limit))

    def listed_for(self, recipient: str, limit: int = 1000) -> list[Hold]:
        """The newest ``limit`` holds addressed to ``recipient`` (any case): chosen in the
        query, so a flood of held mail to others cannot push one's own out of the page."""
        return self._select(
            "WHERE EXISTS (SELECT 1 FROM json_each(recipients) WHERE unicode_lower(value) = ?)"
            " ORDER BY arrived DESC LIMIT ?",
            (recipient.lower(), limit),
        )

    def _select(self, where: str, args: tuple[object, ...] = ()) -> list[Hold]:
        """Holds matching ``where``: one of this module's fixed clauses, values as ``args``."""
        with self._lock:
            query = f"SELECT {_COLUMNS} FROM holds {where}"  # noqa: S608 - ours; values bound
            rows = self._db.execute(query, args).fetchall()
        return [_hold(row) for row in rows]


def _unicode_lower(value: str | None) -> str | None:
    return value.lower() if isinstance(value, str) else value


def _hold(row: tuple[object, ...]) -> Hold:
    (
        mail_id,
        rule,
        recipients,
        approvers,
        kind,
        version,
        until,
        sender,
        subject,
        arrived,
        state,
        by,
        at,
        bundle,
        seq,
    ) = row
    return Hold(
        str(mail_id),
        str(rule),
        tuple(json.loads(str(recipients))),
        tuple(json.loads(str(approvers))),
        str(kind),
        int(version),  # type: ignore[call-overload]
        str(until),
        str(sender),
        str(subject),
        float(arrived),  # type: ignore[arg-type]
        state,  # type: ignore[arg-type]
        str(by),
        None if at is None else float(at),  # type: ignore[arg-type]
        None if bundle is None else bytes.fromhex(str(bundle)),
        None if seq is None else int(seq),  # type: ignore[call-overload]
    )
