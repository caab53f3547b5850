"""The fencing lease on disk and in a running agent: a row in ``lease.db`` in the state folder,
taken before the agent opens anything else there, renewed by a thread, and a fence every write
that matters passes (the decisions themselves: :mod:`agentkit.lease`).

The row is read and written inside one ``BEGIN IMMEDIATE`` transaction, so two agents asking
at the same moment are serialised by SQLite's lock: one takes, the other sees it held.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agentkit.lease import (
    Claimant,
    Decision,
    Held,
    Lease,
    Lost,
    Renewed,
    Taken,
    Terms,
    decide,
    renew_every_s,
    role,
    still_trusted,
    trusted_for_s,
)
from agentkit.readonly import query_read_only
from protocol.sqlite import (
    AGENT_BUSY_TIMEOUT_S,
    StoreVersions,
    Synchronous,
    open_existing_database,
    open_wal_database,
    schema_made,
)

__all__ = [
    "FenceClosed",
    "LeaseKeeper",
    "LeaseRefused",
    "LeaseStore",
    "LeaseUnreadable",
    "LeaseWatch",
    "acquire",
    "lease_figures",
    "lease_held_still",
    "pid_running",
    "read_lease",
]

log = logging.getLogger(__name__)

LEASE_DB = "lease.db"
# How often a standby looks at the row while it waits (at most; a short TTL looks more often).
STANDBY_POLL_S = 1.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lease (
    one     INTEGER PRIMARY KEY CHECK (one = 1),  -- a single row
    holder  TEXT NOT NULL,
    pid     INTEGER NOT NULL,
    token   INTEGER NOT NULL,
    expires REAL NOT NULL
);
"""

# Opened (and its version checked) before the other stores are upgraded: it guards them.
# The schema's history (protocol.sqlite). Version 1 (D109): this schema, made where missing,
# so a file of the release before versions (0) is upgraded and recorded like any other.
VERSIONS = StoreVersions("fencing lease", (schema_made(_SCHEMA),))


class LeaseRefused(Exception):
    """Another agent holds the state's lease: this one must not start (a split-brain attempt)."""

    def __init__(self, where: Path, lease: Lease) -> None:
        until = time.strftime("%H:%M:%S UTC", time.gmtime(lease.expires))
        super().__init__(
            f"{where}: refused to start: the state is held by {lease.holder} (pid {lease.pid}, "
            f"fencing token {lease.token}) until {until} and renewed while it runs — two agents "
            "on one state would inject the same mail twice; stop that agent, or start this one "
            "with --standby to take over when its lease expires"
        )
        self.lease = lease


class LeaseUnreadable(Exception):
    """The lease row could not be read under its lock (locked too long, a damaged file)."""


class FenceClosed(Exception):
    """This agent no longer holds the lease (lost, or not renewed in time): do not write."""


def pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it runs
        return True
    return True


class LeaseStore:
    """The lease row of one state folder."""

    def __init__(
        self,
        state_dir: Path,
        *,
        clock: Callable[[], float] = time.time,
        process_running: Callable[[int], bool] = pid_running,
    ) -> None:
        self.path = state_dir / LEASE_DB
        self._clock = clock
        self._process_running = process_running
        self._lock = threading.Lock()
        # FULL: a take that is not on disk could be taken again by a standby after a crash.
        self._db = open_wal_database(
            self.path, _SCHEMA, synchronous=Synchronous.FULL,
            busy_timeout_s=AGENT_BUSY_TIMEOUT_S, versions=VERSIONS,
        )  # fmt: skip

    def attempt(self, claimant: Claimant, my_token: int | None = None) -> Decision:
        """Decide and, for Taken and Renewed, write the new row, in one transaction."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                decision = self._decide(claimant, my_token)
                if isinstance(decision, Taken | Renewed):
                    self._write(decision.lease)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return decision

    def _decide(self, claimant: Claimant, my_token: int | None) -> Decision:
        current = self._read()
        gone = (
            current is not None
            and current.holder == claimant.holder
            and current.pid != claimant.pid
            and not self._process_running(current.pid)
        )
        return decide(current, claimant, self._clock(), my_token=my_token, holder_process_gone=gone)

    def release(self, claimant: Claimant, token: int) -> None:
        """A clean stop: expire our row now, so a standby takes over at its next look."""
        with self._lock:
            self._db.execute(
                "UPDATE lease SET expires = 0 WHERE holder = ? AND pid = ? AND token = ?",
                (claimant.holder, claimant.pid, token),
            )

    def read(self) -> Lease | None:
        with self._lock:
            return self._read()

    def _read(self) -> Lease | None:
        row = self._db.execute("SELECT holder, pid, token, expires FROM lease").fetchone()
        return None if row is None else Lease(str(row[0]), int(row[1]), int(row[2]), float(row[3]))

    def _write(self, lease: Lease) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO lease (one, holder, pid, token, expires) "
            "VALUES (1, ?, ?, ?, ?)",
            (lease.holder, lease.pid, lease.token, lease.expires),
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()


def acquire(
    store: LeaseStore,
    claimant: Claimant,
    *,
    standby: bool,
    stop: threading.Event,
) -> Taken | None:
    """The lease, taken now; as a standby, taken when the holder's lease expires (None if
    ``stop`` is set first). Without ``standby`` a held lease raises :class:`LeaseRefused`."""
    poll_s = min(STANDBY_POLL_S, renew_every_s(claimant.ttl_s))
    announced = False
    while not stop.is_set():
        decision = store.attempt(claimant)
        if isinstance(decision, Taken):
            return decision
        if not isinstance(decision, Held):  # no token asked for: only Taken or Held come back
            raise AssertionError(f"lease: unexpected {decision!r} without a token")
        if not standby:
            raise LeaseRefused(store.path.parent, decision.lease)
        if not announced:
            log.info("standby: the state is held by %s (pid %d, token %d); taking over when "
                     "its lease expires", decision.lease.holder, decision.lease.pid,
                     decision.lease.token)  # fmt: skip
            announced = True
        stop.wait(poll_s)
    return None


def read_lease(state_dir: Path) -> Lease | None:
    """The state's lease row, read read-only (a status command, the web process): None when
    no agent ever took it."""
    rows = query_read_only(state_dir / LEASE_DB, "SELECT holder, pid, token, expires FROM lease")
    if not rows:
        return None
    holder, pid, token, expires = rows[0]
    return Lease(str(holder), int(pid), int(token), float(expires))


@contextmanager
def lease_held_still(
    state_dir: Path, *, busy_timeout_s: float = AGENT_BUSY_TIMEOUT_S
) -> Iterator[Lease | None]:
    """The state's lease row, kept as it is until the block ends: the block runs inside a
    ``BEGIN IMMEDIATE`` transaction on ``lease.db``, so no agent takes or renews the lease
    meanwhile (its :meth:`LeaseStore.attempt` waits for the lock). For a write that must not
    land after a takeover (a hand command's, ``maildiode.commands.standby_guard``): decide on
    the row, write, leave the block. Keep the block short: the holder's renewals wait for it.
    A state with no ``lease.db`` (no agent ever started on it) yields None and locks nothing;
    the file is never created here (the agent would find it made by another user)."""
    path = state_dir / LEASE_DB
    if not path.is_file():
        yield None
        return
    try:
        db = open_existing_database(path, busy_timeout_s)
    except sqlite3.Error as exc:  # removed since the look above, or not ours to open
        raise LeaseUnreadable(f"{path}: {exc}") from exc
    try:
        try:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT holder, pid, token, expires FROM lease").fetchone()
        except sqlite3.Error as exc:  # locked past the timeout, unreadable, not ours to open
            raise LeaseUnreadable(f"{path}: {exc}") from exc
        try:
            yield None if row is None else Lease(str(row[0]), int(row[1]), int(row[2]),
                                                 float(row[3]))  # fmt: skip
        finally:
            db.execute("ROLLBACK")  # nothing of the lease was changed: only its lock held
    finally:
        db.close()


def lease_figures(state_dir: Path, this_holder: str, now: float) -> dict[str, Any]:
    """What ``maildiode status`` and the console show of the lease: this agent's role (as
    :func:`agentkit.lease.role`), who holds it, its fencing token and when it expires."""
    current = read_lease(state_dir)
    figures: dict[str, Any] = {"role": role(current, this_holder, now),
                                  "this_holder": this_holder}  # fmt: skip
    if current is None:
        return {**figures, "holder": None, "pid": None, "token": None, "expires": None,
                "expires_in_s": None}  # fmt: skip
    left_s = round(current.expires - now, 1)
    return {**figures, "holder": current.holder, "pid": current.pid, "token": current.token,
            "expires": current.expires, "expires_in_s": left_s}  # fmt: skip


class LeaseWatch:
    """The fence in another process of the holder (its web process, which cannot ask the
    keeper's thread): the row, read read-only at each check, must still be the one taken under
    ``terms`` and renewed recently enough (:func:`agentkit.lease.still_trusted`)."""

    def __init__(
        self, state_dir: Path, terms: Terms, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.path, self.terms, self._clock = state_dir / LEASE_DB, terms, clock

    def fence(self) -> None:
        """Raise :class:`FenceClosed` unless the holder surely still holds the lease."""
        current = read_lease(self.path.parent)
        if not still_trusted(current, self.terms, self._clock()):
            raise FenceClosed(f"the lease (token {self.terms.token}) is no longer this agent's "
                              f"or was not renewed in time (the row: {current})")  # fmt: skip


class LeaseKeeper:
    """Renews a taken lease in a thread; :meth:`fence` says whether writing is still safe.

    The holder trusts its lease for :func:`agentkit.lease.trusted_for_s` after the start of the
    last successful renewal, measured on the monotonic clock (a wall-clock jump moves nothing).
    Losing the lease (the row is someone else's) or failing to renew in time calls ``on_lost``
    once; the fence stays closed from then on."""

    def __init__(
        self,
        store: LeaseStore,
        claimant: Claimant,
        taken: Taken,
        on_lost: Callable[[str], None],
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.claimant, self.token = store, claimant, taken.lease.token
        self._on_lost = on_lost
        self._monotonic = monotonic
        self._trusted_until = monotonic() + trusted_for_s(claimant.ttl_s)
        self._lost: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def terms(self) -> Terms:
        """The lease this keeper holds, for the agent's other processes (:class:`LeaseWatch`)."""
        claimant = self.claimant
        return Terms(claimant.holder, claimant.pid, self.token, claimant.ttl_s)

    def fence(self) -> None:
        """Raise :class:`FenceClosed` unless this agent surely still holds the lease."""
        if self._lost is not None:
            raise FenceClosed(self._lost)
        if self._monotonic() > self._trusted_until:
            self._lose(f"the lease (token {self.token}) was not renewed in time")
            raise FenceClosed(self._lost or "lease expired")

    def renew(self) -> None:
        began = self._monotonic()
        try:
            decision = self.store.attempt(self.claimant, self.token)
        except (OSError, sqlite3.Error) as exc:
            log.error("cannot renew the lease (%s); writing stops if this lasts", exc)
            return
        if isinstance(decision, Lost):
            now = decision.lease
            by = "nobody" if now is None else f"{now.holder} (token {now.token})"
            self._lose(f"the lease (token {self.token}) is now held by {by}")
            return
        self._trusted_until = began + trusted_for_s(self.claimant.ttl_s)

    def _lose(self, why: str) -> None:
        if self._lost is None:
            self._lost = why
            log.error("fencing: %s; this agent stops writing and stops", why)
            self._on_lost(why)

    def _run(self) -> None:
        while not self._stop.wait(renew_every_s(self.claimant.ttl_s)) and self._lost is None:
            self.renew()
            if self._lost is None and self._monotonic() > self._trusted_until:
                self._lose(f"the lease (token {self.token}) was not renewed in time")

    def stop(self, *, release: bool = True) -> None:
        """Stop renewing; ``release``: hand the lease over at once (a clean stop)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        if release and self._lost is None:
            try:
                self.store.release(self.claimant, self.token)
            except (OSError, sqlite3.Error) as exc:
                log.warning("could not release the lease (%s); a standby waits for it to "
                            "expire", exc)  # fmt: skip
