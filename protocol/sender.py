"""The sending end of one stream: sequence numbers, publishing, heartbeats, resends.

State lives in ``state_dir/sender-<stream>.db`` (SQLite, WAL, synchronous=FULL):

* ``meta``: the epoch (incremented at every start) and the next sequence number. A sequence
  number is allocated and committed before any chunk of its bundle is published, so it is never
  reused, also after a crash.
* ``bundles``: bundle id -> seq, epoch, created. Publishing the same id again re-sends the same
  chunks (same seq, same bytes) under new file names: publishing is idempotent per bundle id.

Copies of sent chunks are kept under ``state_dir/sent-<stream>/`` for ``resend_window_s`` so
that ``resend(first, last)`` can publish them again (a hard link from the staging folder when the
file system allows, so keeping costs no second write), one folder per thousand seqs.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protocol.armor import dearmor, is_armored
from protocol.bundle import BundleMeta, PlannedChunk, build_chunks, encode_heartbeat, plan_chunks
from protocol.chunk import STREAM_RULE, Kind, chunk_count, valid_stream
from protocol.durable import FileFiller, pwrite_all
from protocol.errors import BundleIdConflict, LocalError
from protocol.keys import EncryptionKey, EncryptionPublicKey, SigningKey
from protocol.limits import (
    BUNDLE_ID_LEN,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_HEARTBEAT_S,
    DEFAULT_RESEND_WINDOW_S,
    MAX_BUNDLE_BYTES,
    MAX_CHUNK_SIZE,
)
from protocol.sqlite import (
    StoreVersions,
    Synchronous,
    fsync_wal,
    open_wal_database,
    read_meta,
    schema_made,
    write_meta,
)
from protocol.transport import FolderTransport, Transport

__all__ = ["PublishReceipt", "Sender"]

log = logging.getLogger("protocol.sender")

ROW_RETENTION_FACTOR = 2  # bundle id -> seq rows outlive the resend window twice over
PRUNE_EVERY_S = 600.0  # pruning kept copies is housekeeping; every ten minutes is plenty
KEPT_PER_FOLDER = 1000  # kept chunk copies are grouped by seq // 1000 (see _kept_path)
# Bundles up to this size are hashed and committed on the caller's thread: for them the thread
# hand-offs of the overlapped path cost more CPU than the hashing and fsync they would overlap.
INLINE_BUNDLE_BYTES = 1 << 20

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS bundles (
    bundle BLOB PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, epoch INTEGER NOT NULL,
    created INTEGER NOT NULL, kind INTEGER NOT NULL, blen INTEGER NOT NULL,
    bsha BLOB NOT NULL, csize INTEGER NOT NULL, published_ms INTEGER NOT NULL
);
"""

# The schema's history (protocol.sqlite). Version 1 (D109): this schema, made where missing,
# so a file of the release before versions (0) is upgraded and recorded like any other.
VERSIONS = StoreVersions("link sender", (schema_made(SCHEMA),))


def _sha256(data: bytes | memoryview) -> bytes:
    return hashlib.sha256(data).digest()


def _known(value: bytes) -> Callable[[], bytes]:
    return lambda: value


@dataclass(frozen=True, slots=True)
class PublishReceipt:
    stream: str
    seq: int
    bundle_id: bytes
    epoch: int
    created_ms: int
    chunks: int
    file_names: tuple[str, ...]
    republished: bool


@dataclass(frozen=True, slots=True)
class _Row:
    seq: int
    epoch: int
    created: int
    kind: int
    blen: int
    bsha: bytes
    csize: int


class Sender:
    """Publish bundles of one stream through a transport. Thread-safe."""

    def __init__(
        self,
        state_dir: str | Path,
        stream: str,
        signing_key: SigningKey,
        transport: Transport,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        encrypt_to: EncryptionPublicKey | None = None,
        resend_window_s: float = DEFAULT_RESEND_WINDOW_S,
        heartbeat_s: float = DEFAULT_HEARTBEAT_S,
        repeat_last: int = 0,
        repeat_every_s: float = 3600.0,
        new_epoch: bool = True,
        clock: Callable[[], float] = time.time,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if not valid_stream(stream):
            raise LocalError(f"stream id {stream!r} is not {STREAM_RULE}")
        if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
            raise LocalError(f"chunk_size {chunk_size} outside 1..{MAX_CHUNK_SIZE}")
        self.stream = stream
        self.signing_key = signing_key
        self.transport = transport
        self.chunk_size = chunk_size
        self.encrypt_to = encrypt_to
        self.resend_window_s = resend_window_s
        self.heartbeat_s = heartbeat_s
        self.repeat_last = repeat_last
        self.repeat_every_s = repeat_every_s
        self._clock = clock
        self._random_bytes = random_bytes
        self._lock = threading.RLock()
        state = Path(state_dir)
        self._kept_dir = state / f"sent-{stream}"
        self._db_path = state / f"sender-{stream}.db"
        self._db = open_wal_database(
            self._db_path, SCHEMA, synchronous=Synchronous.FULL, versions=VERSIONS
        )
        self._hash_pool: ThreadPoolExecutor | None = None
        # A tool that only re-sends (``maildiode resend``) does not start a new epoch.
        self.epoch = self._start_epoch() if new_epoch else self._meta("epoch", 0)
        self._last_activity = float("-inf")
        self._last_repeat = clock()
        self._last_prune = float("-inf")

    # -- state ----------------------------------------------------------------------------

    def _meta(self, key: str, default: int) -> int:
        return read_meta(self._db, key, default)

    def _set_meta(self, key: str, value: int) -> None:
        write_meta(self._db, key, value)

    def _start_epoch(self) -> int:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            epoch = self._meta("epoch", 0) + 1
            self._set_meta("epoch", epoch)
        return epoch

    @property
    def last_seq(self) -> int:
        """The highest sequence number allocated so far (0 before the first bundle)."""
        return self._meta("next_seq", 1) - 1

    def knows(self, bundle_id: bytes) -> bool:
        """Whether a bundle of this id was published (within the resend window)."""
        with self._lock:
            return self._lookup(bundle_id) is not None

    def _lookup(self, bundle_id: bytes) -> _Row | None:
        row = self._db.execute(
            "SELECT seq, epoch, created, kind, blen, bsha, csize FROM bundles WHERE bundle = ?",
            (bundle_id,),
        ).fetchone()
        return None if row is None else _Row(*row)

    def _allocate(
        self, bundle_id: bytes, kind: Kind, bundle: bytes, now_ms: int
    ) -> tuple[_Row, Callable[[], bytes]]:
        """Allocate the next seq; returns the row and a function giving the bundle's SHA-256.

        The commit is written without waiting for the disk; the WAL file is fsynced on a helper
        thread while another hashes the bundle (both release the GIL). The digest function
        returns only when both are done, and no chunk is renamed into the pickup folder before
        its header holds the digest: the seq is on disk before any chunk can appear.
        """
        if len(bundle) <= INLINE_BUNDLE_BYTES:
            return self._allocate_inline(bundle_id, kind, bundle, now_ms)
        hashing = self._helpers().submit(_sha256, bundle)
        self._db.execute("PRAGMA synchronous=NORMAL")
        try:
            seq = self._insert_row(bundle_id, kind, len(bundle), now_ms)
        finally:
            self._db.execute("PRAGMA synchronous=FULL")
        synced = self._helpers().submit(fsync_wal, self._db_path)

        def digest() -> bytes:
            synced.result()
            return hashing.result()

        row = _Row(seq, self.epoch, now_ms, int(kind), len(bundle), b"", self.chunk_size)
        return row, digest

    def _insert_row(
        self, bundle_id: bytes, kind: Kind, length: int, now_ms: int, bsha: bytes = b""
    ) -> int:
        """Take the next seq and record the bundle under it, in one transaction."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            seq = self._next_seq()
            self._db.execute(
                "INSERT INTO bundles VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (bundle_id, seq, self.epoch, now_ms, int(kind), length, bsha, self.chunk_size,
                 now_ms),
            )  # fmt: skip
        return seq

    def _allocate_inline(
        self, bundle_id: bytes, kind: Kind, bundle: bytes, now_ms: int
    ) -> tuple[_Row, Callable[[], bytes]]:
        """The same as _allocate for a small bundle, on this thread: a FULL commit, which
        records the digest too (no second write for it)."""
        bsha = _sha256(bundle)
        seq = self._insert_row(bundle_id, kind, len(bundle), now_ms, bsha)
        row = _Row(seq, self.epoch, now_ms, int(kind), len(bundle), bsha, self.chunk_size)
        return row, _known(bsha)

    def _other_content(self, bundle_id: bytes, kind: Kind, bundle: bytes, row: _Row) -> _Row:
        """``bundle_id`` again, with other content (a mail rendered again after a crash can
        come out different, e.g. as a notice after too many crashes).

        Every chunk is kept (hard-linked into ``sent-<stream>/``) before it is renamed into the
        pickup folder. All chunks of the first content kept: it reached, or is about to reach,
        the link; it is sent again from the kept copies (the receiver de-duplicates) and the
        new content refused (BundleIdConflict). None kept: the sender stopped between
        allocating the seq and writing the first chunk (kill -9, power loss), nothing of the
        first content can be in the link, and the new content takes its place under the same
        seq. Some kept: part of the first content may be at the receiver under this seq, so
        the new content gets a new seq (the old one shows as an incomplete bundle there, an
        alarm, never a loss). Refusing the new content in the last two cases lost the mail:
        its caller drops a refused bundle as already published (found by the kill -9 test).
        """
        kept = [f for f in self._kept_files(row.seq) if f.suffix == ".mdc"]
        if kept and len(kept) >= chunk_count(row.blen, row.csize):
            self._resend_one(row.seq)
            raise BundleIdConflict(
                f"bundle id {bundle_id.hex()} was published with other content", seq=row.seq
            )
        bsha = _sha256(bundle)
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            seq = self._next_seq() if kept else row.seq
            self._db.execute(
                "UPDATE bundles SET seq = ?, kind = ?, blen = ?, bsha = ?, csize = ? "
                "WHERE bundle = ?",
                (seq, int(kind), len(bundle), bsha, self.chunk_size, bundle_id),
            )
        log.warning("bundle id %s: its first content never reached the link; sending the new "
                    "content as seq %d", bundle_id.hex(), seq)  # fmt: skip
        return _Row(seq, row.epoch, row.created, int(kind), len(bundle), bsha, self.chunk_size)

    def _next_seq(self) -> int:
        """Take the next seq; call inside the transaction that records what it is for."""
        seq = self._meta("next_seq", 1)
        self._set_meta("next_seq", seq + 1)
        return seq

    def _record_digest(self, bundle_id: bytes, bsha: bytes) -> None:
        """Recorded after publishing, without a sync: a crash before leaves a row without
        digest, whose re-publish is then not content-checked."""
        self._db.execute("PRAGMA synchronous=NORMAL")
        try:
            self._db.execute("UPDATE bundles SET bsha = ? WHERE bundle = ?", (bsha, bundle_id))
        finally:
            self._db.execute("PRAGMA synchronous=FULL")

    def _helpers(self) -> ThreadPoolExecutor:
        if self._hash_pool is None:
            self._hash_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="md-sender")
        return self._hash_pool

    # -- publishing -----------------------------------------------------------------------

    def publish(self, bundle: bytes, bundle_id: bytes, kind: Kind = Kind.DATA) -> PublishReceipt:
        """Sign, chunk and publish; durable when it returns. Idempotent per ``bundle_id``."""
        if len(bundle_id) != BUNDLE_ID_LEN:
            raise LocalError("bundle_id must be 16 bytes")
        if kind is Kind.HEARTBEAT:
            raise LocalError("heartbeats are sent by heartbeat(), not publish()")
        if len(bundle) > MAX_BUNDLE_BYTES:
            raise LocalError(f"bundle of {len(bundle)} bytes exceeds {MAX_BUNDLE_BYTES}")
        with self._lock:
            row = self._lookup(bundle_id)
            republished = row is not None
            if row is None:
                row, digest = self._allocate(bundle_id, kind, bundle, self._now_ms())
            elif row.kind != int(kind) or row.bsha not in (b"", _sha256(bundle)):
                row = self._other_content(bundle_id, kind, bundle, row)
                digest = _known(row.bsha)
            else:
                digest = _known(row.bsha or _sha256(bundle))
            names = self._send(bundle, bundle_id, row, digest)
            if not republished and not row.bsha:
                self._record_digest(bundle_id, digest())
            self._last_activity = self._clock()
            self._prune_if_due()
        return PublishReceipt(
            stream=self.stream,
            seq=row.seq,
            bundle_id=bundle_id,
            epoch=row.epoch,
            created_ms=row.created,
            chunks=len(names),
            file_names=tuple(names),
            republished=republished,
        )

    def publish_many(
        self, bundles: Sequence[tuple[bytes, bytes]], kind: Kind = Kind.DATA
    ) -> list[PublishReceipt]:
        """Several ``(bundle, bundle_id)`` in order, as ``publish`` would each, with one
        durable seq commit and one fsync of the pickup folder for all (group commit).

        Durable when it returns. The shared path takes new small bundles on a folder link,
        plain or encrypted; anything else (an id seen before, a large bundle, armour, TCP, an
        id twice) is published one at a time. If it raises, some bundles may be published:
        each is idempotent per bundle id, so the caller publishes them again.
        """
        if len(bundles) <= 1 or not self._batchable(bundles, kind):
            return [self.publish(bundle, bundle_id, kind) for bundle, bundle_id in bundles]
        with self._lock:
            if any(self._lookup(bundle_id) is not None for _bundle, bundle_id in bundles):
                return [self.publish(bundle, bundle_id, kind) for bundle, bundle_id in bundles]
            rows = self._insert_rows(bundles, kind, self._now_ms())
            names = iter(self._publish_group(bundles, rows, kind))
            self._last_activity = self._clock()
            self._prune_if_due()
        receipts = []
        for (bundle, bundle_id), row in zip(bundles, rows, strict=True):
            mine = tuple(next(names) for _ in range(chunk_count(len(bundle), row.csize)))
            receipts.append(PublishReceipt(self.stream, row.seq, bundle_id, row.epoch,
                                           row.created, len(mine), mine, False))  # fmt: skip
        return receipts

    def _publish_group(
        self, bundles: Sequence[tuple[bytes, bytes]], rows: list[_Row], kind: Kind
    ) -> list[str]:
        """The chunk files of a group whose seqs are committed, written on the caller's thread
        (small files: hand-offs to writer threads cost more than the overlap gains), each
        fsynced and kept, and one fsync of the pickup folder for all; their names in order."""
        metas = [BundleMeta(self.stream, row.epoch, row.seq, bundle_id, row.created, kind)
                 for (_bundle, bundle_id), row in zip(bundles, rows, strict=True)]  # fmt: skip
        group = list(zip((bundle for bundle, _id in bundles), metas, rows, strict=True))
        keep: list[Path | None] = [
            self._kept_path(row.seq, index)
            for bundle, _meta, row in group
            for index in range(chunk_count(len(bundle), row.csize))
        ]
        transport: Any = self.transport  # _batchable: a FolderTransport without armour
        if self.encrypt_to is None:
            fillers = [self._filler(plan, _known(row.bsha)) for bundle, meta, row in group
                       for plan in plan_chunks(bundle, meta, row.csize)]  # fmt: skip
            return list(transport.publish_files(fillers, keep, parallel=False))
        # Sealed chunks (§5) are made one at a time as they are written, each with its own fresh
        # ephemeral key, exactly as publish() makes them.
        sealed = (chunk for bundle, meta, row in group for chunk in build_chunks(
            bundle, meta, row.csize, self.signing_key, encrypt_to=self.encrypt_to,
            new_ephemeral=self._new_ephemeral, digest=row.bsha))  # fmt: skip
        return list(transport.publish_chunks(sealed, keep, parallel=False))

    def _batchable(self, bundles: Sequence[tuple[bytes, bytes]], kind: Kind) -> bool:
        ids = [bundle_id for _bundle, bundle_id in bundles]
        transport = self.transport
        return (
            kind is not Kind.HEARTBEAT
            and isinstance(transport, FolderTransport)
            and not transport.armor
            and len(set(ids)) == len(ids)
            and all(len(bundle_id) == BUNDLE_ID_LEN for bundle_id in ids)
            and all(len(bundle) <= INLINE_BUNDLE_BYTES for bundle, _id in bundles)
        )

    def _insert_rows(
        self, bundles: Sequence[tuple[bytes, bytes]], kind: Kind, now_ms: int
    ) -> list[_Row]:
        """A seq for each bundle, recorded with its digest, in one FULL transaction."""
        digests = [_sha256(bundle) for bundle, _bundle_id in bundles]
        rows = []
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for (bundle, bundle_id), bsha in zip(bundles, digests, strict=True):
                seq = self._next_seq()
                self._db.execute(
                    "INSERT INTO bundles VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (bundle_id, seq, self.epoch, now_ms, int(kind), len(bundle), bsha,
                     self.chunk_size, now_ms),
                )  # fmt: skip
                rows.append(_Row(seq, self.epoch, now_ms, int(kind), len(bundle), bsha,
                                 self.chunk_size))  # fmt: skip
        return rows

    def _send(
        self, bundle: bytes, bundle_id: bytes, row: _Row, digest: Callable[[], bytes]
    ) -> list[str]:
        meta = BundleMeta(self.stream, row.epoch, row.seq, bundle_id, row.created, Kind(row.kind))
        count = chunk_count(len(bundle), row.csize)
        keep = [self._kept_path(row.seq, index) for index in range(count)]
        transport = self.transport
        if (
            self.encrypt_to is None
            and isinstance(transport, FolderTransport)
            and not transport.armor
        ):
            plans = plan_chunks(bundle, meta, row.csize)
            return transport.publish_files([self._filler(p, digest) for p in plans], keep)
        chunks = build_chunks(
            bundle, meta, row.csize, self.signing_key, encrypt_to=self.encrypt_to,
            new_ephemeral=self._new_ephemeral, digest=digest(),
        )  # fmt: skip
        return transport.publish_chunks(chunks, keep)

    def _filler(self, plan: PlannedChunk, digest: Callable[[], bytes]) -> FileFiller:
        """Write the payload first, then (once the bundle hash is known) head and signature.
        A bundle of one chunk is its payload: the bundle's hash is the payload's, not hashed
        twice."""
        whole = plan.header.count == 1

        def fill(fd: int) -> None:
            payload_hash = None if whole else _sha256(plan.payload)
            pwrite_all(fd, plan.payload, plan.payload_offset)
            bsha = digest()
            head, signature = plan.finish(bsha, payload_hash or bsha, self.signing_key)
            pwrite_all(fd, head, 0)
            pwrite_all(fd, signature, plan.payload_offset + len(plan.payload))

        return fill

    def _new_ephemeral(self) -> EncryptionKey:
        return EncryptionKey.from_raw(self._random_bytes(32))

    def _kept_path(self, seq: int, index: int) -> Path:
        """``sent-<stream>/<seq // 1000>/<seq>.<index>.mdc``: one folder per thousand bundles,
        because creating a folder per bundle cost as much CPU as writing its chunk."""
        return self._kept_group(seq) / f"{seq:020d}.{index:06d}.mdc"

    def _kept_group(self, seq: int) -> Path:
        return self._kept_dir / f"g{seq // KEPT_PER_FOLDER:017d}"

    def _kept_files(self, seq: int) -> list[Path]:
        """The kept chunks of ``seq`` in index order (also in the one-folder-per-bundle layout
        of earlier versions)."""
        group = self._kept_group(seq)
        prefix = f"{seq:020d}."
        try:
            found = [group / n for n in os.listdir(group) if n.startswith(prefix)]
        except FileNotFoundError:
            found = []
        legacy = self._kept_dir / f"{seq:020d}"
        if not found and legacy.is_dir():
            found = list(legacy.iterdir())
        return sorted(found)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- heartbeats and resends -----------------------------------------------------------

    def heartbeat(self) -> None:
        """Publish a signed heartbeat carrying the last seq and the epoch (consumes no seq)."""
        with self._lock:
            last_seq = self.last_seq
            body = encode_heartbeat(last_seq, self.epoch)
            meta = BundleMeta(
                self.stream, self.epoch, last_seq, self._random_bytes(BUNDLE_ID_LEN),
                self._now_ms(), Kind.HEARTBEAT,
            )  # fmt: skip
            chunks = build_chunks(body, meta, len(body), self.signing_key)
            self.transport.publish_chunks(chunks)
            self._last_activity = self._clock()

    def heartbeat_if_due(self) -> bool:
        """Call often; sends a heartbeat after ``heartbeat_s`` without traffic, and the
        scheduled repeat of the last ``repeat_last`` bundles when that is due."""
        with self._lock:
            now = self._clock()
            sent = False
            if now - self._last_activity >= self.heartbeat_s:
                self.heartbeat()
                sent = True
            if self.repeat_last > 0 and now - self._last_repeat >= self.repeat_every_s:
                self._last_repeat = now
                last = self.last_seq
                if last > 0:
                    self.resend(max(1, last - self.repeat_last + 1), last)
            return sent

    def resend(self, first_seq: int, last_seq: int) -> int:
        """Publish kept chunks of ``first_seq..last_seq`` again under new names.

        Returns the number of bundles re-sent; bundles no longer kept are logged and skipped.
        """
        if first_seq > last_seq:
            raise LocalError(f"empty range {first_seq}..{last_seq}")
        with self._lock:
            rows = self._db.execute(
                "SELECT seq FROM bundles WHERE seq BETWEEN ? AND ? ORDER BY seq",
                (first_seq, last_seq),
            ).fetchall()
            resent = 0
            for (seq,) in rows:
                if self._resend_one(int(seq)):
                    resent += 1
            missing = (last_seq - first_seq + 1) - len(rows)
            if missing:
                log.warning(
                    "resend %d..%d: %d seqs unknown or pruned", first_seq, last_seq, missing
                )
            self._last_activity = self._clock()
            return resent

    def _resend_one(self, seq: int) -> bool:
        files = [f for f in self._kept_files(seq) if f.suffix == ".mdc"]
        if not files:
            log.warning("resend: seq %d is no longer kept (older than the resend window)", seq)
            return False
        chunks = []
        for path in files:
            data = path.read_bytes()
            chunks.append(dearmor(data) if is_armored(data) else data)
        self.transport.publish_chunks(chunks)
        log.info("re-sent seq %d (%d chunks)", seq, len(chunks))
        return True

    # -- housekeeping ---------------------------------------------------------------------

    def _prune_if_due(self) -> None:
        now = self._clock()
        if now - self._last_prune >= PRUNE_EVERY_S:
            self._last_prune = now
            self.prune()

    def prune(self) -> int:
        """Drop kept copies older than the resend window; returns bundles dropped."""
        with self._lock:
            cutoff = self._now_ms() - int(self.resend_window_s * 1000)
            rows = self._db.execute(
                "SELECT seq FROM bundles WHERE published_ms < ?", (cutoff,)
            ).fetchall()
            groups = set()
            for (seq,) in rows:
                for path in self._kept_files(int(seq)):
                    path.unlink(missing_ok=True)
                shutil.rmtree(self._kept_dir / f"{int(seq):020d}", ignore_errors=True)
                groups.add(self._kept_group(int(seq)))
            for group in groups:
                with contextlib.suppress(OSError):  # not empty yet, or already gone
                    group.rmdir()
            row_cutoff = self._now_ms() - int(self.resend_window_s * 1000 * ROW_RETENTION_FACTOR)
            self._db.execute("DELETE FROM bundles WHERE published_ms < ?", (row_cutoff,))
            return len(rows)

    def close(self) -> None:
        with self._lock:
            if self._hash_pool is not None:
                self._hash_pool.shutdown(wait=True)
            self.transport.close()
            self._db.close()
