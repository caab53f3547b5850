"""The inbound spool: one file per mail, one folder per state, every move an atomic rename.

States and transitions (drawn in docs/outer-agent.md)::

    tmp/ --(fsync, rename, fsync dir)--> incoming/SEGMENT   (one file per group commit: 250 here)
    tmp/ --(fsync, rename, fsync dir)--> received/ID.0      (a batch of one, main process: 250 here)
    incoming/SEGMENT --(split: hard-linked under each mail's name, then its own name
                        dropped; a segment of one mail is renamed instead)--> received/ID.0
    received/ID.N --(claim: rename)--> rendering/ID.N
    rendering/ID.N --(rendered, package handed over in memory, Sender.publish returned:
                      durable in the link)--> (unlinked)
    received/ or rendering/ --(policy quarantine)--> quarantine/ID (+ ID.reason)
    rendered/ID --(published)--> (unlinked)       only packages stored by earlier versions

``N`` counts render attempts that were cut short by a crash of the whole agent: on start,
every ``rendering/ID.N`` goes back to ``received/ID.N+1``. A crash at any moment leaves each
mail in exactly one place that start-up recovery understands; at worst a mail is rendered or
published again, under its original bundle id (the Sender and the inner side de-duplicate).
Earlier versions stored the package durably in ``rendered/`` between rendering and
publishing; that copy cost an fsync per mail and bought only the saving of a re-render after a
crash (decision D12), so it is no longer written, but such files are still published at start.

Record format (a version line, a header length, a JSON header, then the payload)::

    MDSPOOL 1\\n
    <decimal header length>\\n
    <header: JSON object, UTF-8>
    <payload bytes: exactly header["size"] of them>

A name in received/ or rendering/ may be a segment of several records shared with the other
mails of its segment (D81): it reads as the record of its own mail id.

A file whose payload length disagrees with its header is torn and is moved to quarantine
(never deleted); with fsync-before-rename this should not happen. Every file is written by
``protocol.durable.write_durably`` with ``tmp/`` as its staging folder.

Sealed at rest (issue 21): with an at-rest key configured the payload is a sealed blob
(``protocol.atrest``) and the header says ``"sealed": true``; the header (envelope, kind,
sizes, queue figures) stays readable for the status figures. A record written before sealing
was configured still reads; a sealed one that does not open is corrupt (quarantined).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from outer_agent.errors import SpoolCorrupt, SpoolFull
from protocol.atrest import CLEAR, AtRest
from protocol.durable import fsync_dir, fsync_file, move_durably, write_durably
from protocol.errors import AtRestError
from protocol.limits import BUNDLE_ID_LEN

__all__ = [
    "GENERATED",
    "MAIL",
    "MAX_HEADER_BYTES",
    "RECORD_VERSION",
    "Envelope",
    "Spool",
    "SpoolRecord",
    "new_bundle_id",
    "peek_header",
    "spool_summary",
]

log = logging.getLogger(__name__)

RECORD_VERSION = 1
_MAGIC = b"MDSPOOL "
# An envelope with 10 000 recipients of 256 bytes fits; anything larger is not our file.
MAX_HEADER_BYTES = 4 << 20
# How long a spool free-space reading is reused: statvfs per SMTP command would be wasteful.
FREE_SPACE_CACHE_S = 0.5

# Record kinds: a mail from the internet, and one the agent made itself (a bounce notice: not
# filtered, not archived). A held mail released from held/ keeps its own kind (outer_agent.holds).
MAIL, GENERATED = "mail", "generated"

INCOMING, RECEIVED, RENDERING = "incoming", "received", "rendering"
RENDERED, QUARANTINE, TMP = "rendered", "quarantine", "tmp"


def new_bundle_id(clock_ms: int | None = None) -> bytes:
    """16 bytes: 48-bit milliseconds then 80 random bits, so names sort in arrival order."""
    now_ms = int(time.time() * 1000) if clock_ms is None else clock_ms
    return now_ms.to_bytes(6, "big") + secrets.token_bytes(BUNDLE_ID_LEN - 6)


@dataclass(frozen=True)
class Envelope:
    """What the SMTP session knew about a mail; stored with it before the 250."""

    mail_id: str
    bundle_id: bytes
    mail_from: str
    rcpt_to: tuple[str, ...]
    received_at: float  # seconds since the epoch, when the 250 was about to be given
    client_addr: str
    helo: str
    tls: bool

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["bundle_id"] = self.bundle_id.hex()
        data["rcpt_to"] = list(self.rcpt_to)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Envelope:
        return cls(
            mail_id=str(data["mail_id"]),
            bundle_id=bytes.fromhex(data["bundle_id"]),
            mail_from=str(data["mail_from"]),
            rcpt_to=tuple(str(r) for r in data["rcpt_to"]),
            received_at=float(data["received_at"]),
            client_addr=str(data["client_addr"]),
            helo=str(data["helo"]),
            tls=bool(data["tls"]),
        )


@dataclass(frozen=True)
class SpoolRecord:
    """One spool file: a JSON header (with the envelope) and the payload bytes."""

    header: dict[str, Any]
    payload: bytes

    @property
    def envelope(self) -> Envelope:
        return Envelope.from_json(self.header["envelope"])

    def encode(self, at_rest: AtRest = CLEAR) -> bytes:
        """The record's bytes, its payload sealed when ``at_rest`` seals."""
        stored = at_rest.seal(self.payload)
        header = dict(self.header, version=RECORD_VERSION, size=len(stored))
        header.pop("sealed", None)
        if at_rest.sealing:
            header["sealed"] = True
        text = json.dumps(header, ensure_ascii=False, sort_keys=True).encode()
        return b"%s%d\n%d\n%s%s" % (_MAGIC, RECORD_VERSION, len(text), text, stored)

    @classmethod
    def decode(cls, raw: bytes, where: str, at_rest: AtRest = CLEAR) -> SpoolRecord:
        record, end = cls.decode_at(raw, 0, where, at_rest)
        if end != len(raw):
            raise SpoolCorrupt(where, "trailing bytes after the record")
        return record

    @classmethod
    def decode_at(
        cls, raw: bytes, offset: int, where: str, at_rest: AtRest = CLEAR
    ) -> tuple[SpoolRecord, int]:
        """The record starting at ``offset`` and the offset just after it, its payload
        opened in memory when it was sealed at rest."""
        header, payload_start, end = frame_at(raw, offset, where)
        payload = raw[payload_start:end]
        if header.pop("sealed", False) is True:
            try:
                payload = at_rest.open(payload, where)
            except AtRestError as exc:
                raise SpoolCorrupt(where, str(exc)) from None
        return cls(header=header, payload=payload), end


def frame_at(raw: bytes, offset: int, where: str) -> tuple[dict[str, Any], int, int]:
    """The framing of the record starting at ``offset``: its JSON header, where its payload
    starts and where the record ends (its payload is not opened)."""
    line_end = raw.find(b"\n", offset)
    if raw[offset:line_end] != _MAGIC + str(RECORD_VERSION).encode():
        raise SpoolCorrupt(where, "unknown record version line")
    length_end = raw.find(b"\n", line_end + 1)
    length_text = raw[line_end + 1 : length_end]
    if length_end < 0 or not length_text.isdigit() or int(length_text) > MAX_HEADER_BYTES:
        raise SpoolCorrupt(where, "bad header length")
    header_end = length_end + 1 + int(length_text)
    try:
        header = json.loads(raw[length_end + 1 : header_end])
    except ValueError:
        raise SpoolCorrupt(where, "header is not JSON") from None
    size = header.get("size") if isinstance(header, dict) else None
    if not isinstance(size, int) or header_end + size > len(raw):
        raise SpoolCorrupt(where, "payload length disagrees with the header (torn file)")
    return header, header_end, header_end + size


def record_span(raw: bytes, mail_id: str, where: str) -> tuple[int, int]:
    """Where the record of ``mail_id`` lies in a spool file: the whole file when it holds one
    record (whatever its id: a released held part keeps its own), else the record of that id
    in a segment the splitter linked under each of its mails' names (D81)."""
    _header, _start, end = frame_at(raw, 0, where)
    if end == len(raw):
        return 0, end
    offset = 0
    while offset < len(raw):
        header, _start, end = frame_at(raw, offset, where)
        envelope = header.get("envelope")
        if isinstance(envelope, dict) and envelope.get("mail_id") == mail_id:
            return offset, end
        offset = end
    raise SpoolCorrupt(where, f"no record of mail {mail_id} in this segment")


# A header peek reads this much of a file: an envelope of a few hundred recipients.
HEADER_PEEK_BYTES = 64 << 10


def peek_header(path: Path) -> dict[str, Any] | None:
    """The JSON header of a one-record file without reading its payload (status figures);
    None when the file is gone, torn, or its header is longer than HEADER_PEEK_BYTES."""
    try:
        with open(path, "rb") as reader:
            head = reader.read(HEADER_PEEK_BYTES)
    except OSError:
        return None
    first, _, rest = head.partition(b"\n")
    length_text, _, body = rest.partition(b"\n")
    if first != _MAGIC + str(RECORD_VERSION).encode() or not length_text.isdigit():
        return None
    length = int(length_text)
    if length > len(body):
        return None
    try:
        header = json.loads(body[:length])
    except ValueError:
        return None
    return header if isinstance(header, dict) else None


def decode_segment(raw: bytes, where: str, at_rest: AtRest = CLEAR) -> list[SpoolRecord]:
    """The records of a segment file, in order (a one-mail file is a segment of one)."""
    records = []
    offset = 0
    while offset < len(raw):
        record, offset = SpoolRecord.decode_at(raw, offset, where, at_rest)
        records.append(record)
    return records


class Spool:
    """The folders of the inbound spool and the moves between them. Thread-safe by renames."""

    def __init__(self, root: Path, *, min_free_bytes: int = 0, at_rest: AtRest = CLEAR) -> None:
        self.root = root
        self.min_free_bytes = min_free_bytes
        self.at_rest = at_rest
        self._free_checked_at = 0.0
        self._free_bytes = 0
        for state in (TMP, INCOMING, RECEIVED, RENDERING, RENDERED, QUARANTINE):
            (root / state).mkdir(parents=True, exist_ok=True)

    def folder(self, state: str) -> Path:
        return self.root / state

    # ----------------------------------------------------------------------------- space

    def free_bytes(self) -> int:
        now = time.monotonic()
        if now - self._free_checked_at > FREE_SPACE_CACHE_S:
            self._free_bytes = shutil.disk_usage(self.root).free
            self._free_checked_at = now
        return self._free_bytes

    def check_space(self, incoming_bytes: int = 0) -> None:
        """Raise SpoolFull when accepting ``incoming_bytes`` would cross the free-space floor."""
        free = self.free_bytes()
        if free - incoming_bytes < self.min_free_bytes:
            raise SpoolFull(self.root, free, self.min_free_bytes)

    # ----------------------------------------------------------------------------- intake

    def received_path(self, mail_id: str, attempt: int = 0) -> Path:
        return self.root / RECEIVED / f"{mail_id}.{attempt}"

    def write_received(
        self, envelope: Envelope, message: bytes, *, sync_dir: bool = True, kind: str = MAIL
    ) -> Path:
        """Store a new mail durably in received/ (the caller may batch the folder fsync)."""
        record = SpoolRecord({"envelope": envelope.to_json(), "kind": kind}, message)
        final = self.received_path(envelope.mail_id)
        write_durably(
            final, record.encode(self.at_rest), staging=self.root / TMP, sync_folder=sync_dir
        )
        return final

    def sync_received(self) -> None:
        fsync_dir(self.root / RECEIVED)

    def write_segment(
        self, mails: list[tuple[Envelope, bytes]], kinds: list[str] | None = None
    ) -> Path:
        """Store a batch of new mails durably as ONE file in incoming/ (group commit).

        Creating a file costs far more than writing 10 KB into one (about 1 ms of kernel time
        per file here), so the SMTP path writes one file per batch and the splitter makes
        per-mail files later, off the path that answers 250.
        """
        body = b"".join(
            SpoolRecord({"envelope": env.to_json(), "kind": kind}, message).encode(self.at_rest)
            for (env, message), kind in zip(mails, kinds or [MAIL] * len(mails), strict=True)
        )
        final = self.root / INCOMING / mails[0][0].mail_id
        write_durably(final, body, staging=self.root / TMP)
        return final

    def split_incoming(self) -> list[Envelope]:
        """Give every mail of every incoming/ segment its name in received/, then drop the
        segment's own name.

        A segment of one mail is renamed; a segment of several is hard-linked under each of its
        mails' names (D81): no new file, no copy, no second write of the mails; each name reads
        as its own mail (``read``), and the segment's storage goes with the last of its names.
        Order makes this crash-safe: every name is made durable (the segment's link count
        synced, received/ synced) before the segment's incoming/ name goes, and nothing
        downstream sees a mail before that, so a mail of a segment that still exists in
        incoming/ was never rendered or published. The folders are synced once per pass, not
        once per segment (a pass takes every segment waiting; under load the committers of both
        processes leave several).
        """
        segments = sorted(os.listdir(self.root / INCOMING))
        if not segments:
            return []
        present = {_split(n)[0] for n in os.listdir(self.root / RECEIVED)}
        split: list[Envelope] = []
        linked: list[Path] = []
        for name in segments:
            path = self.root / INCOMING / name
            try:
                mails, shared = self._split_one(path, present)
            except OSError as exc:  # e.g. no space left: the segment stays for the next pass
                log.error("cannot split segment %s (%s); trying again later", name, exc)
                continue
            split.extend(mails)
            if shared:
                linked.append(path)
        for path in linked:  # the new link counts durable before any of the names is used
            fsync_file(path)
        if split or linked:  # every mail's name durable (also one an earlier, failed pass
            fsync_dir(self.root / RECEIVED)  # made) before its segment's name goes
        for path in linked:
            path.unlink()
        fsync_dir(self.root / INCOMING)
        return split

    def _split_one(self, path: Path, present: set[str]) -> tuple[list[Envelope], bool]:
        """The mails of one segment named in received/ (the caller syncs), and whether the
        segment's incoming/ name is left to be dropped (not when it was renamed)."""
        try:
            records = decode_segment(path.read_bytes(), str(path), self.at_rest)
        except SpoolCorrupt as exc:
            log.error("%s; the segment is kept in quarantine", exc)
            self.quarantine(path, f"spool_corrupt: {exc.problem}")
            return [], False
        if len(records) == 1 and records[0].envelope.mail_id not in present:
            # A segment of one mail (the usual case below a few hundred mails a second) already
            # is that mail's file, durable: a rename moves it, no copy and no second fsync.
            envelope = records[0].envelope
            # The caller syncs received/ and incoming/ once for the whole pass.
            os.rename(path, self.received_path(envelope.mail_id))
            return [envelope], False
        split = []
        for record in records:
            envelope = record.envelope
            if envelope.mail_id in present:
                continue  # named by an earlier pass that crashed before dropping the segment
            try:
                os.link(path, self.received_path(envelope.mail_id))
            except FileExistsError:
                continue
            split.append(envelope)
        return split, True

    # ----------------------------------------------------------------------------- render stage

    def pending(self) -> list[str]:
        """Names in received/, oldest first (ids sort by arrival time)."""
        return sorted(os.listdir(self.root / RECEIVED))

    def claim(self, name: str) -> Path | None:
        """Move received/NAME to rendering/NAME; None when another worker took it first."""
        target = self.root / RENDERING / name
        try:
            os.rename(self.root / RECEIVED / name, target)
        except FileNotFoundError:
            return None
        return target

    def unclaim(self, claimed: Path) -> bool:
        """Put a claimed mail back into received/ (after an error that was not the mail's)."""
        try:
            os.rename(claimed, self.root / RECEIVED / claimed.name)
        except FileNotFoundError:
            return False
        return True

    def read(self, path: Path) -> SpoolRecord:
        """The mail of a received/ or rendering/ file: the file's one record, or the mail's
        record of a segment linked under its name (D81)."""
        raw = path.read_bytes()
        start, end = record_span(raw, mail_id_of(path.name), str(path))
        if end - start == len(raw):
            return SpoolRecord.decode(raw, str(path), self.at_rest)
        return SpoolRecord.decode_at(raw, start, str(path), self.at_rest)[0]

    def claimed(self) -> list[str]:
        """Names in rendering/: mails being rendered or waiting for the link to take them."""
        return sorted(os.listdir(self.root / RENDERING))

    # ----------------------------------------------------------------------------- publish stage

    def rendered(self) -> list[str]:
        """Packages an earlier version stored in rendered/ (see the module docstring)."""
        return sorted(os.listdir(self.root / RENDERED))

    def remove_published(self, copy: Path) -> None:
        """Published: the Sender holds the chunks now, so the spool's copy of the mail (its
        claimed original in rendering/, or an old package in rendered/) goes. No folder fsync:
        if an OS crash undoes this unlink, the mail is published again under the same bundle id,
        which the Sender and the inner agent de-duplicate."""
        copy.unlink(missing_ok=True)

    # ----------------------------------------------------------------------------- quarantine

    def quarantine(self, path: Path, reason: str) -> Path:
        """Keep a mail for an administrator, with a reason file beside it; never delete it.

        The reason file comes first: a quarantined mail is never without it, so the retention
        prune ages it by its quarantine time, not by the mail's older time (D87). A disk that
        refuses either file (no space left) raises OSError with the mail where it was and no
        reason file left behind: the caller tries again later (D86)."""
        mail_id = path.name.split(".", 1)[0]
        target = self.root / QUARANTINE / mail_id
        reason_path = target.with_name(mail_id + ".reason")
        write_durably(
            reason_path, reason.encode() + b"\n", staging=self.root / TMP, sync_folder=False
        )
        try:
            self._keep_in_quarantine(path, target)
        except OSError:
            reason_path.unlink(missing_ok=True)
            raise
        return target

    def _keep_in_quarantine(self, path: Path, target: Path) -> None:
        shared = self.own_record(path)
        if shared is None:
            move_durably([(path, target)])  # syncs quarantine/ (the reason too), then the source
            return
        # One mail of a segment linked under several names (D81): it alone is kept. Its copy
        # needs space the rename did not; without it, the mail stays where it is.
        write_durably(target, shared, staging=self.root / TMP)
        path.unlink()
        fsync_dir(path.parent)

    def own_record(self, path: Path) -> bytes | None:
        """The stored bytes of the mail named ``path`` in received/ or rendering/ when the
        file is a segment it shares with other mails (D81); None when the file is the mail's
        own (or cannot be framed: then it is kept whole)."""
        if path.parent.name not in (RECEIVED, RENDERING):
            return None
        raw = path.read_bytes()
        try:
            start, end = record_span(raw, mail_id_of(path.name), str(path))
        except SpoolCorrupt:
            return None
        return None if end - start == len(raw) else raw[start:end]

    # ----------------------------------------------------------------------------- recovery

    def recover(self) -> dict[str, int]:
        """Undo what a crash left half-done. Run once at start, before any worker runs."""
        counts = {"tmp_removed": 0, "split": 0, "reclaimed": 0, "duplicates_removed": 0}
        for leftover in (self.root / TMP).iterdir():
            leftover.unlink()  # never renamed into place, so never answered 250
            counts["tmp_removed"] += 1
        counts["split"] = len(self.split_incoming())
        rendered = set(os.listdir(self.root / RENDERED))
        for state in (RENDERING, RECEIVED):
            for name in sorted(os.listdir(self.root / state)):
                mail_id, attempt = _split(name)
                if mail_id in rendered:
                    (self.root / state / name).unlink()  # its package is already durable
                    counts["duplicates_removed"] += 1
                elif state == RENDERING:
                    os.rename(self.root / state / name, self.received_path(mail_id, attempt + 1))
                    counts["reclaimed"] += 1
        for state in (RENDERING, RECEIVED):
            fsync_dir(self.root / state)
        return counts

    def counts(self) -> dict[str, int]:
        return _stage_counts(self.root)

    def iter_quarantine(self) -> Iterator[Path]:
        """Quarantined files (not their reasons, nor the released/ folder of requeued ones)."""
        return _quarantined(self.root)


def _split(name: str) -> tuple[str, int]:
    """``ID.N`` → (ID, N); a name without a valid attempt counter counts as attempt 0."""
    mail_id, _, attempt = name.partition(".")
    return mail_id, int(attempt) if attempt.isdigit() else 0


def attempt_of(name: str) -> int:
    return _split(name)[1]


def mail_id_of(name: str) -> str:
    return _split(name)[0]


_WAITING = (INCOMING, RECEIVED, RENDERING, RENDERED)


def _names(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except FileNotFoundError:  # read-only callers may look before the agent made it
        return []


def _quarantined(root: Path) -> Iterator[Path]:
    folder = root / QUARANTINE
    return (
        folder / n for n in _names(folder) if not n.endswith(".reason") and (folder / n).is_file()
    )


def _stage_counts(root: Path) -> dict[str, int]:
    found = {state: len(_names(root / state)) for state in _WAITING}
    found[QUARANTINE] = sum(1 for _ in _quarantined(root))
    return found


def spool_summary(root: Path, now: float) -> dict[str, Any]:
    """Files per stage of the inbound spool at ``root`` and how long the oldest mail not yet
    published has waited; read only (folders that do not exist count as empty)."""
    summary: dict[str, Any] = dict(_stage_counts(root))
    oldest = None
    for state in _WAITING:
        for name in _names(root / state):
            try:
                modified = (root / state / name).stat().st_mtime
            except FileNotFoundError:
                continue  # moved on while we looked
            oldest = modified if oldest is None else min(oldest, modified)
    summary["oldest_waiting_s"] = None if oldest is None else round(max(0.0, now - oldest), 1)
    return summary
