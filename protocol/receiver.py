"""The receiving end of one stream: verify, hold, reassemble, de-duplicate, watch for gaps.

State lives in ``state_dir/receiver-<stream>.db`` (SQLite, WAL):

* ``partial`` / ``held``: bundles in flight and the verified chunk files held for them (the
  files stay in the intake's work folder until their bundle is done).
* ``done``: bundle ids delivered (kept for the resend window; anything created before that
  window is refused as ``expired``, so pruning the table cannot let a replay through).
* ``missing``: sequence numbers not yet delivered below the highest seen (gaps).
* ``counters`` and ``meta``.

Holding a chunk is committed with synchronous=NORMAL (a power cut may forget it; the file is
still in the work folder and is re-verified at start). Marking a bundle done is committed before
the next bundle is handled, synchronous=FULL, or NORMAL for all but every n-th of a group
(:meth:`Receiver.mark_done`); its chunk files go only once a FULL commit has followed.

A bundle that travels in one chunk (most mail) is complete the moment its chunk is verified, so
it is held in memory, not in ``partial``/``held``: rows written only to be deleted again a moment
later would double the receiver's SQLite work per mail. Everything it would have written (the
seq for gap tracking, ``last_seen_ms``, the counters) goes into the one durable transaction that
marks it done. A crash before that loses nothing: its file is still in the work folder, not
recorded as held, and is verified again at start like any file claimed before a crash.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from protocol.bundle import decode_heartbeat
from protocol.chunk import STREAM_RULE, Chunk, ChunkHeader, Kind, decode_chunk, valid_stream
from protocol.errors import LocalError, Reason, RemoteError
from protocol.keys import EncryptionKey, Keyring
from protocol.limits import DEFAULT_GAP_WAIT_S, DEFAULT_RESEND_WINDOW_S, DEFAULT_SILENCE_ALARM_S
from protocol.sqlite import (
    StoreVersions,
    Synchronous,
    open_wal_database,
    read_meta,
    schema_made,
    write_meta,
)

__all__ = ["Accepted", "LinkStatus", "ReceivedBundle", "Receiver"]

log = logging.getLogger("protocol.receiver")

DEFAULT_MAX_BUNDLES_IN_FLIGHT = 256  # partial bundles held at once; a flood beyond is refused
DEFAULT_MAX_BYTES_HELD = 2 << 30  # 2 GiB of partial bundles on disk
DEFAULT_PARTIAL_TTL_S = 86400.0  # a bundle still incomplete after a day will not complete
MAX_CLOCK_SKEW_S = 86400.0  # chunks dated more than a day ahead are refused (bad clock/replay)
MAX_GAPS_TRACKED = 100_000  # a jump beyond this many seqs is recorded as one overflow, not rows
PRUNE_EVERY_S = 600.0  # housekeeping cadence for the done table
READ_BLOCK = 1 << 20
# Bytes of single-chunk bundles kept in memory from verification to delivery, so a typical mail
# is read, verified and (on an encrypted link) decrypted once, not twice. Beyond it (a backlog
# of large bundles) they are read again.
MAX_WHOLE_BYTES_KEPT = 32 << 20

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS partial (
    bundle BLOB PRIMARY KEY, seq INTEGER NOT NULL, epoch INTEGER NOT NULL,
    count INTEGER NOT NULL, csize INTEGER NOT NULL, blen INTEGER NOT NULL, bsha BLOB NOT NULL,
    created INTEGER NOT NULL, kind INTEGER NOT NULL, first_ms INTEGER NOT NULL,
    have INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS held (
    bundle BLOB NOT NULL, idx INTEGER NOT NULL, path TEXT NOT NULL UNIQUE,
    encrypted INTEGER NOT NULL, payload_offset INTEGER NOT NULL, payload_len INTEGER NOT NULL,
    PRIMARY KEY (bundle, idx)
);
CREATE TABLE IF NOT EXISTS done (
    bundle BLOB PRIMARY KEY, seq INTEGER NOT NULL, created INTEGER NOT NULL,
    done_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS done_seq ON done (seq);
CREATE INDEX IF NOT EXISTS done_created ON done (created);
CREATE TABLE IF NOT EXISTS missing (
    seq INTEGER PRIMARY KEY, since_ms INTEGER NOT NULL, reported INTEGER NOT NULL DEFAULT 0
);
"""

# The schema's history (protocol.sqlite). Version 1 (D109): this schema, made where missing,
# so a file of the release before versions (0) is upgraded and recorded like any other.
VERSIONS = StoreVersions("link receiver", (schema_made(SCHEMA),))


class Accepted(enum.Enum):
    """What happened to a verified chunk."""

    HELD = "held"  # stored for its bundle, which is still incomplete
    COMPLETE = "complete"  # its bundle now has every chunk
    DUPLICATE = "duplicate"  # already held or already delivered: the file can go
    HEARTBEAT = "heartbeat"  # a heartbeat: recorded; the file can go


@dataclass(frozen=True, slots=True)
class ReceivedBundle:
    stream: str
    seq: int
    bundle_id: bytes
    kind: Kind
    data: bytes
    created_ms: int
    epoch: int


@dataclass(frozen=True, slots=True)
class LinkStatus:
    stream: str
    highest_seq: int  # highest seq seen in data or heartbeats
    sender_epoch: int
    last_seen_ms: int  # last verified chunk of any kind (0: never)
    last_heartbeat_ms: int  # 0: never
    silent: bool  # nothing verified for silence_alarm_s
    gaps: tuple[int, ...]  # seqs missing for longer than gap_wait_s
    in_flight: int  # partial bundles held
    bytes_held: int  # their declared total size
    counters: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Whole:
    """A verified single-chunk bundle, complete and not yet done (kept in memory)."""

    path: Path
    encrypted: bool
    payload_offset: int
    payload_len: int
    header: ChunkHeader
    # The bundle itself (a sealed chunk's plaintext) and its SHA-256, while the payloads held
    # this way stay under MAX_WHOLE_BYTES_KEPT; else it is read again from ``path``, verified,
    # decrypted if sealed and hashed when assembled.
    data: bytes | None = None
    digest: bytes | None = None


@dataclass(frozen=True, slots=True)
class _Partial:
    bundle: bytes
    seq: int
    epoch: int
    count: int
    csize: int
    blen: int
    bsha: bytes
    created: int
    kind: int


class Receiver:
    """Persistent receive state for one stream. Thread-safe."""

    def __init__(
        self,
        state_dir: str | Path,
        stream: str,
        keyring: Keyring,
        *,
        decrypt_key: EncryptionKey | None = None,
        gap_wait_s: float = DEFAULT_GAP_WAIT_S,
        silence_alarm_s: float = DEFAULT_SILENCE_ALARM_S,
        resend_window_s: float = DEFAULT_RESEND_WINDOW_S,
        partial_ttl_s: float = DEFAULT_PARTIAL_TTL_S,
        max_bundles_in_flight: int = DEFAULT_MAX_BUNDLES_IN_FLIGHT,
        max_bytes_held: int = DEFAULT_MAX_BYTES_HELD,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not valid_stream(stream):
            raise LocalError(f"stream id {stream!r} is not {STREAM_RULE}")
        self.stream = stream
        self.keyring = keyring
        self.decrypt_key = decrypt_key
        self.gap_wait_s = gap_wait_s
        self.silence_alarm_s = silence_alarm_s
        self.resend_window_s = resend_window_s
        self.partial_ttl_s = partial_ttl_s
        self.max_bundles_in_flight = max_bundles_in_flight
        self.max_bytes_held = max_bytes_held
        self._clock = clock
        self._lock = threading.RLock()
        self._db = open_wal_database(
            Path(state_dir) / f"receiver-{stream}.db",
            SCHEMA,
            synchronous=Synchronous.FULL,
            versions=VERSIONS,
        )
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._started_ms = self._now_ms()
        self._last_seen_ms = 0  # verified single-chunk bundles not yet written to meta
        self._whole: dict[bytes, _Whole] = {}  # bundle id -> single-chunk bundle not yet done
        self._whole_bytes = 0  # bundle bytes kept in self._whole
        self._last_prune = float("-inf")
        self._last_housekeeping = float("-inf")
        self._silent_logged = False

    # -- small state helpers --------------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _meta(self, key: str, default: int = 0) -> int:
        return read_meta(self._db, key, default)

    def _set_meta(self, key: str, value: int) -> None:
        write_meta(self._db, key, value)

    def count(self, name: str, amount: int = 1) -> None:
        """Add to a persistent counter (also used by LinkReader for quarantines)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO counters (name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                (name, amount),
            )

    def counters(self) -> dict[str, int]:
        rows = self._db.execute("SELECT name, value FROM counters ORDER BY name").fetchall()
        return {str(name): int(value) for name, value in rows}

    # -- accepting chunks -----------------------------------------------------------------

    def accept(self, path: Path, untrusted: bytes) -> Accepted:
        """Verify one chunk file (held at ``path`` in the work folder) and record it.

        Raises RemoteError with the reason to quarantine under. Never delivers anything.
        """
        chunk = decode_chunk(untrusted, self.keyring, decrypt_key=self.decrypt_key)
        header = chunk.header
        self._check_context(header)
        if header.kind is not Kind.HEARTBEAT and header.count == 1:
            with self._lock:
                return self._hold_whole(path, chunk)
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._set_meta("last_seen_ms", self._now_ms())
            if header.kind is Kind.HEARTBEAT:
                return self._heartbeat(chunk)
            return self._hold(path, chunk)

    def _check_context(self, header: ChunkHeader) -> None:
        if header.stream != self.stream:
            raise RemoteError(
                Reason.WRONG_STREAM, f"chunk of stream {header.stream!r} on {self.stream!r}"
            )
        now = self._now_ms()
        if header.created < now - int(self.resend_window_s * 1000):
            raise RemoteError(Reason.EXPIRED, "created before the resend window")
        if header.created > now + int(MAX_CLOCK_SKEW_S * 1000):
            raise RemoteError(Reason.EXPIRED, "created more than a day in the future")

    def _heartbeat(self, chunk: Chunk) -> Accepted:
        beat = decode_heartbeat(chunk.header, chunk.payload)
        self._set_meta("last_heartbeat_ms", self._now_ms())
        self._set_meta("sender_epoch", beat.epoch)
        self._note_seq(beat.last_seq, inclusive=True)
        self.count("heartbeats")
        return Accepted.HEARTBEAT

    def _hold(self, path: Path, chunk: Chunk) -> Accepted:
        header = chunk.header
        if self._is_done(header.bundle):
            self.count("duplicates")
            return Accepted.DUPLICATE
        partial = self._partial(header.bundle)
        if partial is None:
            partial = self._start_bundle(header)
        elif partial != _partial_of(header):
            raise RemoteError(
                Reason.INCONSISTENT, "chunk disagrees with earlier chunks of its bundle"
            )
        try:
            self._db.execute(
                "INSERT INTO held VALUES (?, ?, ?, ?, ?, ?)",
                (header.bundle, header.index, str(path), int(chunk.prefix.encrypted),
                 chunk.payload_offset, chunk.prefix.payload_len),
            )  # fmt: skip
        except sqlite3.IntegrityError:
            self.count("duplicates")
            return Accepted.DUPLICATE
        self._db.execute("UPDATE partial SET have = have + 1 WHERE bundle = ?", (header.bundle,))
        self.count("chunks_accepted")
        have = self._db.execute(
            "SELECT have FROM partial WHERE bundle = ?", (header.bundle,)
        ).fetchone()[0]
        return Accepted.COMPLETE if have == partial.count else Accepted.HELD

    def _hold_whole(self, path: Path, chunk: Chunk) -> Accepted:
        """A single-chunk bundle: complete at once, held in memory until done (no writes)."""
        header = chunk.header
        if header.bundle in self._whole or self._is_done(header.bundle):
            self.count("duplicates")
            return Accepted.DUPLICATE
        if self._partial(header.bundle) is not None:
            raise RemoteError(
                Reason.INCONSISTENT, "chunk disagrees with earlier chunks of its bundle"
            )
        # No capacity check: the limits are for bundles still missing chunks, and this one is
        # complete (its file is already in the work folder; memory holds a few numbers, and
        # the payload while there is room for it).
        keep = self._whole_bytes + len(chunk.payload) <= MAX_WHOLE_BYTES_KEPT
        # A sealed chunk's signature covers its ciphertext, so its plaintext is hashed here:
        # one SHA-256 over the payload instead of reading, verifying and decrypting the file
        # again when the bundle is assembled.
        digest = (chunk.payload_sha256 or hashlib.sha256(chunk.payload).digest()) if keep else None
        self._whole[header.bundle] = _Whole(
            path, chunk.prefix.encrypted, chunk.payload_offset, chunk.prefix.payload_len, header,
            chunk.payload if keep else None, digest,
        )  # fmt: skip
        self._whole_bytes += len(chunk.payload) if keep else 0
        self._last_seen_ms = self._now_ms()
        return Accepted.COMPLETE

    def _start_bundle(self, header: ChunkHeader) -> _Partial:
        in_flight, held = self._db.execute(
            "SELECT count(*), coalesce(sum(blen), 0) FROM partial"
        ).fetchone()
        if in_flight >= self.max_bundles_in_flight:
            raise RemoteError(Reason.CAPACITY, f"{in_flight} bundles already in flight")
        if held + header.blen > self.max_bytes_held:
            raise RemoteError(Reason.CAPACITY, f"{held} bytes already held for partial bundles")
        partial = _partial_of(header)
        self._db.execute(
            "INSERT INTO partial VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
            (partial.bundle, partial.seq, partial.epoch, partial.count, partial.csize,
             partial.blen, partial.bsha, partial.created, partial.kind, self._now_ms()),
        )  # fmt: skip
        self._note_seq(header.seq, inclusive=False)
        return partial

    def _note_seq(self, seq: int, *, inclusive: bool) -> None:
        """Record seqs not yet seen as missing: those between the highest seen and ``seq``
        (and ``seq`` itself when a heartbeat names it as the last sent), and, for data, those
        between ``seq`` and the lowest data seq seen so far (reordering at first contact).
        Before first contact the receiver knows nothing, so it starts counting there."""
        if not inclusive:
            self._note_floor(seq)
        highest = self._meta("highest_seq", -1)
        if highest < 0:
            self._set_meta("highest_seq", seq)
        elif seq > highest:
            self._add_missing(highest + 1, seq if inclusive else seq - 1)
            self._set_meta("highest_seq", seq)

    def _note_floor(self, seq: int) -> None:
        floor = self._meta("floor_seq", -1)
        if floor < 0:
            highest = self._meta("highest_seq", -1)
            self._add_missing(seq + 1, highest)  # a heartbeat came first: it named these
        elif seq < floor:
            self._add_missing(seq + 1, floor - 1)
        if floor < 0 or seq < floor:
            self._set_meta("floor_seq", seq)

    def _add_missing(self, first: int, last: int) -> None:
        if last < first:
            return
        if last - first + 1 > MAX_GAPS_TRACKED:
            log.warning("seq jumped by %d on %s; tracking only the last %d",
                        last - first + 1, self.stream, MAX_GAPS_TRACKED)  # fmt: skip
            self.count("gap_overflow")
            first = last - MAX_GAPS_TRACKED + 1
        now = self._now_ms()
        self._db.executemany(
            "INSERT OR IGNORE INTO missing (seq, since_ms) SELECT ?, ? "
            "WHERE NOT EXISTS (SELECT 1 FROM done WHERE seq = ?) "
            "AND NOT EXISTS (SELECT 1 FROM partial WHERE seq = ?)",
            ((s, now, s, s) for s in range(first, last + 1)),
        )

    def _is_done(self, bundle_id: bytes) -> bool:
        found = self._db.execute("SELECT 1 FROM done WHERE bundle = ?", (bundle_id,)).fetchone()
        return found is not None

    def _partial(self, bundle_id: bytes) -> _Partial | None:
        row = self._db.execute(
            "SELECT bundle, seq, epoch, count, csize, blen, bsha, created, kind "
            "FROM partial WHERE bundle = ?",
            (bundle_id,),
        ).fetchone()
        return None if row is None else _Partial(*row)

    def holds(self, path: Path) -> bool:
        """True when ``path`` is a chunk file this receiver holds."""
        if any(whole.path == path for whole in self._whole.values()):
            return True
        row = self._db.execute("SELECT 1 FROM held WHERE path = ?", (str(path),)).fetchone()
        return row is not None

    # -- completing bundles ---------------------------------------------------------------

    def complete(self) -> list[bytes]:
        """Bundle ids that have every chunk and are not yet done, oldest seq first."""
        rows = self._db.execute(
            "SELECT bundle, seq FROM partial WHERE have = count ORDER BY seq"
        ).fetchall()
        with self._lock:
            found = [(int(seq), bytes(bundle)) for bundle, seq in rows]
            found += [(whole.header.seq, bundle) for bundle, whole in self._whole.items()]
        return [bundle for _seq, bundle in sorted(found)]

    def assemble(self, bundle_id: bytes) -> ReceivedBundle:
        """Read the held chunks in order, check the bundle hash. Raises RemoteError(BAD_HASH)."""
        whole = self._whole.get(bundle_id)
        if whole is not None and whole.data is not None:
            return self._assembled(bundle_id, _partial_of(whole.header), whole.data, whole.digest)
        if whole is not None:
            partial: _Partial | None = _partial_of(whole.header)
            rows = [(str(whole.path), whole.encrypted, whole.payload_offset, whole.payload_len)]
        else:
            partial = self._partial(bundle_id)
            rows = self._db.execute(
                "SELECT path, encrypted, payload_offset, payload_len FROM held "
                "WHERE bundle = ? ORDER BY idx",
                (bundle_id,),
            ).fetchall()
        if partial is None:
            raise LocalError(f"bundle {bundle_id.hex()} is not held")
        digest = hashlib.sha256()
        parts: list[bytes] = []
        for path, encrypted, offset, length in rows:
            part = self._read_payload(Path(path), bool(encrypted), offset, length)
            digest.update(part)
            parts.append(part)
        return self._assembled(bundle_id, partial, b"".join(parts), digest.digest())

    def _assembled(
        self, bundle_id: bytes, partial: _Partial, data: bytes, digest: bytes | None
    ) -> ReceivedBundle:
        if len(data) != partial.blen or digest != partial.bsha:
            raise RemoteError(Reason.BAD_HASH, f"bundle {bundle_id.hex()} does not match its hash")
        return ReceivedBundle(
            stream=self.stream,
            seq=partial.seq,
            bundle_id=bundle_id,
            kind=Kind(partial.kind),
            data=data,
            created_ms=partial.created,
            epoch=partial.epoch,
        )

    def _read_payload(self, path: Path, encrypted: bool, offset: int, length: int) -> bytes:
        try:
            with open(path, "rb") as handle:
                if encrypted:
                    untrusted = handle.read()
                    return decode_chunk(
                        untrusted, self.keyring, decrypt_key=self.decrypt_key
                    ).payload
                handle.seek(offset)
                return handle.read(length)
        except OSError as exc:
            raise LocalError(f"held chunk {path} cannot be read: {exc}") from exc

    def mark_done(self, bundle_id: bytes, *, durable: bool = True) -> list[Path]:
        """Record delivery; returns the chunk files to delete. ``durable``: committed with
        synchronous=FULL, which also makes every done mark before it durable. Otherwise the
        mark survives the process being killed (it is in the operating system's hands) but
        not a power cut, and the caller deletes the files only after a later durable mark or
        :meth:`sync_done`."""
        with self._lock:
            whole = self._whole.get(bundle_id)
            partial = self._partial(bundle_id) if whole is None else _partial_of(whole.header)
            if partial is None:
                return []
            paths = [whole.path] if whole is not None else self._held_paths(bundle_id)
            level = Synchronous.FULL if durable else Synchronous.NORMAL
            with self._synchronous(level), self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._record_done(bundle_id, whole, partial)
            self._pop_whole(bundle_id)
            return paths

    def sync_done(self) -> None:
        """Make every done mark so far durable: one transaction committed with
        synchronous=FULL (the sync of the write-ahead log covers the marks before it)."""
        with self._lock, self._synchronous(Synchronous.FULL), self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._set_meta("done_synced_ms", self._now_ms())

    @contextlib.contextmanager
    def _synchronous(self, level: Synchronous) -> Iterator[None]:
        """The connection's commits at ``level`` inside the block (NORMAL outside it)."""
        if level is not Synchronous.NORMAL:
            self._db.execute(f"PRAGMA synchronous={level.value}")
        try:
            yield
        finally:
            if level is not Synchronous.NORMAL:
                self._db.execute("PRAGMA synchronous=NORMAL")

    def _record_done(self, bundle_id: bytes, whole: _Whole | None, partial: _Partial) -> None:
        """One bundle's done mark, in the caller's transaction."""
        if whole is not None:
            self._record_whole(whole)
        self._db.execute(
            "INSERT OR IGNORE INTO done VALUES (?, ?, ?, ?)",
            (bundle_id, partial.seq, partial.created, self._now_ms()),
        )
        self._forget(bundle_id)
        self._db.execute("DELETE FROM missing WHERE seq = ?", (partial.seq,))
        self.count("bundles_delivered")

    def _pop_whole(self, bundle_id: bytes) -> _Whole | None:
        whole = self._whole.pop(bundle_id, None)
        if whole is not None and whole.data is not None:
            self._whole_bytes -= len(whole.data)
        return whole

    def _record_whole(self, whole: _Whole) -> None:
        """What holding a single-chunk bundle would have written (in the caller's transaction)."""
        self._note_seq(whole.header.seq, inclusive=False)
        if self._last_seen_ms > self._meta("last_seen_ms"):
            self._set_meta("last_seen_ms", self._last_seen_ms)
        self.count("chunks_accepted")

    def drop(self, bundle_id: bytes) -> list[Path]:
        """Forget a partial or failed bundle; returns its chunk files (to quarantine)."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            whole = self._pop_whole(bundle_id)
            if whole is not None:
                self._record_whole(whole)
                return [whole.path]
            paths = self._held_paths(bundle_id)
            self._forget(bundle_id)
            return paths

    def _held_paths(self, bundle_id: bytes) -> list[Path]:
        rows = self._db.execute(
            "SELECT path FROM held WHERE bundle = ? ORDER BY idx", (bundle_id,)
        ).fetchall()
        return [Path(row[0]) for row in rows]

    def _forget(self, bundle_id: bytes) -> None:
        self._db.execute("DELETE FROM held WHERE bundle = ?", (bundle_id,))
        self._db.execute("DELETE FROM partial WHERE bundle = ?", (bundle_id,))

    # -- time-driven checks ---------------------------------------------------------------

    def expired_partials(self) -> list[bytes]:
        """Partial bundles older than the time-to-live (the caller drops and quarantines)."""
        cutoff = self._now_ms() - int(self.partial_ttl_s * 1000)
        rows = self._db.execute(
            "SELECT bundle FROM partial WHERE first_ms < ? AND have < count", (cutoff,)
        ).fetchall()
        return [bytes(row[0]) for row in rows]

    def new_gaps(self) -> list[int]:
        """Seqs that just became overdue (reported once each, logged and counted)."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            cutoff = self._now_ms() - int(self.gap_wait_s * 1000)
            rows = self._db.execute(
                "SELECT seq FROM missing WHERE since_ms <= ? AND reported = 0 ORDER BY seq",
                (cutoff,),
            ).fetchall()
            waiting = {whole.header.seq for whole in self._whole.values()}
            seqs = [int(row[0]) for row in rows if int(row[0]) not in waiting]
            self._db.executemany(
                "UPDATE missing SET reported = 1 WHERE seq = ?", ((s,) for s in seqs)
            )
            if seqs:
                self.count("gaps", len(seqs))
                log.warning(
                    "stream %s: seq %s missing for over %.0f s (run resend on the sending side)",
                    self.stream,
                    _ranges(seqs),
                    self.gap_wait_s,
                )
            return seqs

    def prune(self) -> int:
        """Drop done ids older than the resend window (older chunks are refused as expired)."""
        with self._lock:
            cutoff = self._now_ms() - int(self.resend_window_s * 1000)
            cursor = self._db.execute("DELETE FROM done WHERE created < ?", (cutoff,))
            return cursor.rowcount

    def due(self, interval_s: float) -> bool:
        """True at most once per ``interval_s`` of this receiver's clock (first call: True)."""
        now = self._clock()
        if now - self._last_housekeeping < interval_s:
            return False
        self._last_housekeeping = now
        return True

    def prune_if_due(self) -> None:
        now = self._clock()
        if now - self._last_prune >= PRUNE_EVERY_S:
            self._last_prune = now
            self.prune()

    def status_silent(self) -> bool:
        """True when nothing verified for ``silence_alarm_s`` (counting from our start)."""
        last_seen = max(self._meta("last_seen_ms"), self._last_seen_ms)
        return self._now_ms() - max(last_seen, self._started_ms) > self.silence_alarm_s * 1000

    def status(self) -> LinkStatus:
        with self._lock:
            now = self._now_ms()
            cutoff = now - int(self.gap_wait_s * 1000)
            gaps = self._db.execute(
                "SELECT seq FROM missing WHERE since_ms <= ? ORDER BY seq LIMIT 1000", (cutoff,)
            ).fetchall()
            in_flight, held = self._db.execute(
                "SELECT count(*), coalesce(sum(blen), 0) FROM partial"
            ).fetchone()
            last_seen = max(self._meta("last_seen_ms"), self._last_seen_ms)
            silent = now - max(last_seen, self._started_ms) > self.silence_alarm_s * 1000
            return LinkStatus(
                stream=self.stream,
                highest_seq=max(0, self._meta("highest_seq", 0)),
                sender_epoch=self._meta("sender_epoch"),
                last_seen_ms=last_seen,
                last_heartbeat_ms=self._meta("last_heartbeat_ms"),
                silent=silent,
                gaps=tuple(int(row[0]) for row in gaps),
                in_flight=int(in_flight),
                bytes_held=int(held),
                counters=self.counters(),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _partial_of(header: ChunkHeader) -> _Partial:
    return _Partial(
        header.bundle, header.seq, header.epoch, header.count, header.csize,
        header.blen, header.bsha, header.created, int(header.kind),
    )  # fmt: skip


def _ranges(seqs: Iterable[int]) -> str:
    """'3-5, 9' for [3, 4, 5, 9]."""
    out: list[str] = []
    run: list[int] = []
    for seq in seqs:
        if run and seq != run[-1] + 1:
            out.append(_run(run))
            run = []
        run.append(seq)
    if run:
        out.append(_run(run))
    return ", ".join(out)


def _run(run: list[int]) -> str:
    return str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}"
