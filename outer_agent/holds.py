"""Held inbound mail: kept in the DMZ until a signed decision from inside releases or drops it,
or until it expires (docs/outer-agent.md, "Held mail"; docs/protocol.md §16.6).

States and moves (one file per held part; every move durable)::

    (render thread) --hold: write, fsync--> held/mail/PART                  waiting
    held/mail/PART --release: marker, then rename--> inbound/received/PART.N  (rendered, carried)
    held/mail/PART --drop:    marker, then unlink--> (gone)
    held/mail/PART --expire:  marker, then unlink--> (gone; a notice to the recipients)

The marker ``held/decided/PART`` (JSON: outcome, who, when, the decision's bundle id, whether
the recipients' notice is out) is written durably *before* the mail leaves the hold, so a crash
between the two is finished at the next start (``recover``), and any later decision for the
part finds it decided: ``unknown_mail``, or nothing at all when it is the same decision bundle
again (the link reader calls the handler once more after a crash before it marked the bundle
done). So a decision is applied exactly once, and a part is never held twice (``hold`` refuses
a part that is held or decided).

The folder is 0700 and every file 0600 (``write_durably``). With an at-rest key the mail's
bytes are sealed (``SpoolRecord.encode(at_rest)``, issue 21); the header (envelope, the hold's
masked notice headers) stays readable for the listing and the markers.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Final, Literal

from agentkit.control import Decision
from outer_agent.errors import SpoolCorrupt
from outer_agent.spool import Envelope, SpoolRecord, peek_header
from protocol.atrest import CLEAR, AtRest
from protocol.durable import fsync_dir, move_durably, write_durably

__all__ = ["DecisionOutcome", "HoldInfo", "HoldStore", "Marker", "held_kind"]

log = logging.getLogger(__name__)

# The spool record kind of a held mail (also once released into received/: rendered with its
# stored mask, never filtered again).
HELD_KIND: Final = "held"
MARKER_VERSION: Final = 1
# A decision made inside a little before the outer agent's clock says the mail was held is
# clock skew between the zones, not a forgery: §16.6 rule 2 allows this much.
CLOCK_SKEW_S: Final = 300.0
# A decision dated more than this after now (the outer agent's clock) is refused (§16.6).
MAX_AHEAD_S: Final = 86_400.0
# Markers are kept this long after the outcome (a decision arriving later is still told
# apart from one for a mail never held); the protocol refuses replays older than its window.
MARKER_TTL_S: Final = 8 * 86_400.0


def held_kind(header: dict[str, Any]) -> bool:
    return header.get("kind") == HELD_KIND


@dataclass(frozen=True)
class HoldInfo:
    """Why and how a part is held; stored in its record's header."""

    mail_id: str  # the original mail (a part of it may be ``MAIL-N``)
    rule: str  # "" when the default action held it
    explanation: str
    approver: str  # department_head | security_officer
    mask: tuple[str, ...]  # masked when it is released
    mask_rule: str
    policy_version: int
    held_at: float
    expires_at: float
    headers: dict[str, str]  # from, to, date, subject as the notice shows them (masked)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HoldInfo:
        return cls(
            mail_id=str(data["mail_id"]),
            rule=str(data["rule"]),
            explanation=str(data["explanation"]),
            approver=str(data["approver"]),
            mask=tuple(str(m) for m in data["mask"]),
            mask_rule=str(data["mask_rule"]),
            policy_version=int(data["policy_version"]),
            held_at=float(data["held_at"]),
            expires_at=float(data["expires_at"]),
            headers={str(k): str(v) for k, v in dict(data["headers"]).items()},
        )


@dataclass(frozen=True)
class Marker:
    """What became of a held part."""

    part: str
    outcome: Literal["released", "dropped", "expired"]
    by: str
    at: float
    bundle: str  # hex id of the decision bundle; "" for an expiry
    notice: Literal["pending", "sent", "none"]
    envelope: Envelope
    hold: HoldInfo

    def to_json(self) -> dict[str, Any]:
        return {
            "v": MARKER_VERSION,
            "part": self.part,
            "outcome": self.outcome,
            "by": self.by,
            "at": self.at,
            "bundle": self.bundle,
            "notice": self.notice,
            "envelope": self.envelope.to_json(),
            "hold": asdict(self.hold),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Marker:
        return cls(
            part=str(data["part"]),
            outcome=data["outcome"],
            by=str(data["by"]),
            at=float(data["at"]),
            bundle=str(data["bundle"]),
            notice=data["notice"],
            envelope=Envelope.from_json(data["envelope"]),
            hold=HoldInfo.from_json(data["hold"]),
        )


@dataclass(frozen=True)
class DecisionOutcome:
    """``released`` / ``dropped``: applied; ``repeat``: this very decision was applied before;
    ``unknown_mail`` / ``inconsistent``: refused (§16.6 codes)."""

    code: Literal["released", "dropped", "repeat", "unknown_mail", "inconsistent"]
    detail: str
    marker: Marker | None = None
    released_to: Path | None = None

    @property
    def refused(self) -> bool:
        return self.code in ("unknown_mail", "inconsistent")


class HoldStore:
    """``root``: ``spool.dir/held``; ``received``: the inbound spool's ``received/`` (same file
    system: a release is a rename)."""

    def __init__(
        self,
        root: Path,
        received: Path,
        *,
        clock: Callable[[], float] = time.time,
        at_rest: AtRest = CLEAR,
    ) -> None:
        self.root, self.received, self.clock = root, received, clock
        self.at_rest = at_rest
        for folder in (root, root / "mail", root / "decided", root / "tmp"):
            folder.mkdir(parents=True, exist_ok=True)
            os.chmod(folder, 0o700)  # held mail is never world- or group-readable
        self._lock = threading.Lock()  # decisions (link thread) and expiry (keeper) meet here

    # ----------------------------------------------------------------------------- hold

    def hold(self, envelope: Envelope, raw: bytes, info: HoldInfo) -> bool:
        """Keep a part durably; False when it is held already or was decided (a mail filtered
        again after a crash: never held twice)."""
        part = envelope.mail_id
        with self._lock:
            if self.known(part):
                return False
            header = {"kind": HELD_KIND, "envelope": envelope.to_json(), "hold": asdict(info)}
            write_durably(
                self._mail(part),
                SpoolRecord(header, raw).encode(self.at_rest),
                staging=self.root / "tmp",
            )
        return True

    def known(self, part: str) -> bool:
        return self._mail(part).exists() or self._decided(part).exists()

    def count(self) -> int:
        return len(os.listdir(self.root / "mail"))

    def marker(self, part: str) -> Marker | None:
        try:
            return Marker.from_json(json.loads(self._decided(part).read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None

    # ----------------------------------------------------------------------------- decisions

    def decide(self, decision: Decision, bundle_id: bytes) -> DecisionOutcome:
        """Apply a verified decision record exactly once (§16.6)."""
        part = decision.mail_id
        with self._lock:
            record = self._read_header(part)
            if record is None:
                marker = self.marker(part)
                if marker is not None and marker.bundle == bundle_id.hex():
                    return DecisionOutcome(
                        "repeat", f"{part} was {marker.outcome} by this decision already", marker
                    )
                why = f"{part} was {marker.outcome}" if marker else f"{part} is not held here"
                return DecisionOutcome("unknown_mail", why, marker)
            envelope, info = record
            decided_at = decision.decided_at_ms / 1000
            if decided_at < info.held_at - CLOCK_SKEW_S or decided_at > self.clock() + MAX_AHEAD_S:
                return DecisionOutcome(
                    "inconsistent",
                    f"decided at {decided_at:.0f}, held at "
                    f"{info.held_at:.0f}, now {self.clock():.0f}",
                )
            outcome: Literal["released", "dropped"] = (
                "released" if decision.action == "release" else "dropped"
            )
            marker = Marker(
                part,
                outcome,
                decision.decided_by,
                decided_at,
                bundle_id.hex(),
                "none",
                envelope,
                info,
            )
            self._write_marker(marker)
            target = self._finish(marker)
        return DecisionOutcome(
            outcome, f"{part} {outcome} by {decision.decided_by}", marker, target
        )

    def _finish(self, marker: Marker) -> Path | None:
        """Take the part out of the hold as its marker says (idempotent)."""
        source = self._mail(marker.part)
        if not source.exists():
            return None
        if marker.outcome == "released":
            target = self._free_name(marker.part)
            move_durably([(source, target)])  # the release: one rename into the spool
            return target
        source.unlink()
        fsync_dir(source.parent)
        return None

    def _free_name(self, part: str) -> Path:
        """``received/PART.N`` with the lowest N that no copy of the part uses (the original of
        a part held after a crash may still wait in the spool under PART.1 or more)."""
        spool = self.received.parent
        attempt = 0
        while any(
            (spool / state / f"{part}.{attempt}").exists() for state in ("received", "rendering")
        ):
            attempt += 1
        return self.received / f"{part}.{attempt}"

    # ----------------------------------------------------------------------------- expiry

    def expire_due(self) -> list[Marker]:
        """Every held part past its time: marked expired (notice pending), then removed."""
        expired = []
        now = self.clock()
        for part in sorted(os.listdir(self.root / "mail")):
            with self._lock:
                record = self._read_header(part)
                if record is None or record[1].expires_at > now:
                    continue
                marker = Marker(part, "expired", "system", now, "", "pending", *record)
                self._write_marker(marker)
                self._finish(marker)
            expired.append(marker)
        return expired

    def pending_notices(self) -> list[Marker]:
        """Expired parts whose recipients' notice is not on the link yet."""
        found = []
        for name in sorted(os.listdir(self.root / "decided")):
            marker = self._marker_or_none(name)
            if marker is not None and marker.notice == "pending":
                found.append(marker)
        return found

    def notice_sent(self, marker: Marker) -> None:
        self._write_marker(replace(marker, notice="sent"))

    # ----------------------------------------------------------------------------- start

    def recover(self) -> int:
        """Finish what a crash left between a marker and its move; returns how many."""
        finished = 0
        for part in sorted(os.listdir(self.root / "mail")):
            marker = self._marker_or_none(part)
            if marker is not None:
                self._finish(marker)
                finished += 1
        for leftover in (self.root / "tmp").iterdir():
            leftover.unlink()
        return finished

    def prune(self) -> int:
        """Drop markers older than MARKER_TTL_S whose notice is out."""
        limit, pruned = self.clock() - MARKER_TTL_S, 0
        for name in os.listdir(self.root / "decided"):
            marker = self._marker_or_none(name)
            if marker is not None and marker.at < limit and marker.notice != "pending":
                self._decided(name).unlink(missing_ok=True)
                pruned += 1
        return pruned

    # ----------------------------------------------------------------------------- files

    def _mail(self, part: str) -> Path:
        return self.root / "mail" / part

    def _decided(self, part: str) -> Path:
        return self.root / "decided" / part

    def _write_marker(self, marker: Marker) -> None:
        data = json.dumps(marker.to_json(), ensure_ascii=False).encode("utf-8")
        write_durably(self._decided(marker.part), data, staging=self.root / "tmp")

    def _marker_or_none(self, name: str) -> Marker | None:
        try:
            return self.marker(name)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("held mail marker %s is unreadable (%s)", name, exc)
            return None

    def _read_header(self, part: str) -> tuple[Envelope, HoldInfo] | None:
        """The envelope and hold of a held part, or None when it is not held."""
        path = self._mail(part)
        header = peek_header(path)
        if header is None and path.exists():  # a header longer than a peek: read it whole
            try:
                header = SpoolRecord.decode(path.read_bytes(), str(path), self.at_rest).header
            except (OSError, SpoolCorrupt) as exc:
                log.error("held mail %s is unreadable (%s)", part, exc)
                return None
        if header is None or not held_kind(header):
            return None
        return Envelope.from_json(header["envelope"]), HoldInfo.from_json(header["hold"])
