"""The same mail arriving on two inbound streams: a sender retried at the second MX after a
timeout at the first, and both outer agents published it (decision D74).

:func:`mail_identity` is a pure function of the checked package: SHA-256 over what both outer
agents compute alike from the same message (Message-ID, envelope, Date, Subject, the text
layer, the withheld files' hashes, the page count, the receive filters' verdict), never over
the pictures (two hosts may draw them differently: a miss only delivers twice). A mail without
a Message-ID has no identity and is never taken for a duplicate.

:class:`DuplicateBook` remembers each identity's first stream and bundle for a bounded window
(``streams.dedup_window_s``) in ``state.dir/duplicates.db``. A copy on another stream is a
duplicate; a copy on the same stream is not (the single-stream behaviour is unchanged), and the
first bundle asked again (a crash before the reader marked it done) is still itself.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from inner_agent.notify import CheckedMail
from protocol.sqlite import (
    AGENT_BUSY_TIMEOUT_S,
    StoreVersions,
    Synchronous,
    open_wal_database,
    schema_made,
)

__all__ = ["DuplicateBook", "FirstSeen", "mail_identity"]

# The identity of the format below; a new field is a new version, so old rows never match.
IDENTITY_VERSION = 1
# Old identities are deleted every this many new ones, not at every insert.
PRUNE_EVERY = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    identity  BLOB PRIMARY KEY,
    stream    TEXT NOT NULL,
    bundle_id BLOB NOT NULL,
    mail_id   TEXT NOT NULL,
    seen_ms   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_time ON seen (seen_ms);
"""

# The schema's history (protocol.sqlite). Version 1 (D109): this schema, made where missing,
# so a file of the release before versions (0) is upgraded and recorded like any other.
VERSIONS = StoreVersions("mail seen on several streams", (schema_made(_SCHEMA),))


def mail_identity(mail: CheckedMail) -> bytes | None:
    """The mail's identity across outer agents, or None when it has no Message-ID."""
    manifest = mail.manifest
    message_id = manifest.headers.message_id.strip()
    if not message_id:
        return None
    mark = manifest.inbound
    text = (mail.text or "").encode("utf-8", "surrogatepass")
    fields = [
        IDENTITY_VERSION, message_id, manifest.envelope.mail_from.lower(),
        sorted(r.lower() for r in manifest.envelope.rcpt_to), manifest.headers.date,
        manifest.headers.subject, hashlib.sha256(text).hexdigest(),
        sorted(w.sha256 for w in manifest.withheld), len(manifest.pages), manifest.status,
        [mark.action, mark.rule] if mark is not None else None,
    ]  # fmt: skip
    canonical = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).digest()


@dataclass(frozen=True)
class FirstSeen:
    """Where a mail of this identity arrived first."""

    stream: str
    bundle_id: bytes
    mail_id: str
    seen_ms: int


class DuplicateBook:
    """The identities of the window (SQLite, WAL, synchronous NORMAL: one more fsync per mail
    on the link thread is not worth it; a power cut can lose the last rows, and a copy of one
    of those mails still to come on another stream is then delivered twice, never lost)."""

    def __init__(
        self, path: Path, window_s: float, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._added = 0
        self._db = open_wal_database(
            path,
            _SCHEMA,
            synchronous=Synchronous.NORMAL,
            busy_timeout_s=AGENT_BUSY_TIMEOUT_S,
            versions=VERSIONS,
        )

    def first_elsewhere(
        self, identity: bytes, stream: str, bundle_id: bytes, mail_id: str
    ) -> FirstSeen | None:
        """The first arrival on another stream within the window, or None: then this bundle
        is (or stays) the first of its identity, recorded before it is handed on."""
        now_ms = int(self._clock() * 1000)
        oldest_ms = now_ms - int(self.window_s * 1000)
        with self._lock:
            row = self._db.execute(
                "SELECT stream, bundle_id, mail_id, seen_ms FROM seen WHERE identity = ?",
                (identity,),
            ).fetchone()
            if row is not None and row[3] >= oldest_ms:
                first = FirstSeen(row[0], bytes(row[1]), row[2], row[3])
                return first if first.stream != stream else None
            self._db.execute(
                "INSERT OR REPLACE INTO seen (identity, stream, bundle_id, mail_id, seen_ms) "
                "VALUES (?, ?, ?, ?, ?)",
                (identity, stream, bundle_id, mail_id, now_ms),
            )
            self._prune_if_due(oldest_ms)
        return None

    def _prune_if_due(self, oldest_ms: int) -> None:
        self._added += 1
        if self._added % PRUNE_EVERY == 0:
            self._db.execute("DELETE FROM seen WHERE seen_ms < ?", (oldest_ms,))

    def count(self) -> int:
        with self._lock:
            (found,) = self._db.execute("SELECT COUNT(*) FROM seen").fetchone()
        return int(found)

    def close(self) -> None:
        with self._lock:
            self._db.close()
