"""The outer agent's status report, sent inward on the link (docs/protocol.md §16.4).

At start and then every ``[report] interval_s`` a thread of its own gathers the host's figures
(``/proc``, ``statvfs``), the inbound spool and the delivery queue (folder listings and file
headers, never a mail), both link ends, and the audit events recorded since the last report,
and publishes them as one CONTROL bundle on the inbound stream. It shares only the Sender
(thread-safe) and the audit log's connection with the mail path, for a few milliseconds per
report.

The last reported event id is written durably only after ``publish`` returned: a crash in
between sends those events again in the next report, and the inner agent stores each once
(keyed by the outer agent's event id). While more events wait than fit in one report
(``MAX_EVENTS_PER_REPORT``, ``MAX_EVENT_BYTES_PER_REPORT``), the next report follows after
``CATCH_UP_S``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from agentkit.audit import AuditEvent, AuditLog
from agentkit.control import (
    MAX_EVENT_BYTES_PER_REPORT,
    MAX_EVENTS_PER_REPORT,
    MAX_GAPS_LISTED,
    DeliveryFigures,
    LinkFigures,
    ReceiverFigures,
    ReportedEvent,
    SenderFigures,
    SpoolFigures,
    StatusReport,
    encode_control,
    encoded_size,
    reportable_event,
)
from agentkit.hostfigures import HostSampler
from outer_agent.delivery import delivery_summary
from outer_agent.spool import new_bundle_id, spool_summary
from protocol import Kind, LinkStatus
from protocol.durable import write_durably

__all__ = [
    "CATCH_UP_S",
    "LinkSender",
    "ReportCursor",
    "ReportSources",
    "StatusReporter",
    "receiver_figures",
]

log = logging.getLogger(__name__)

# While events wait beyond one report's limits, the next report follows this soon: a backlog
# of 100 000 events (weeks of a quiet site) crosses in under ten minutes, at a few ms each.
CATCH_UP_S = 1.0
# After a failed publish (link folder full or gone), wait this long before trying again.
RETRY_S = 5.0
CURSOR_VERSION = 1


class LinkSender(Protocol):
    """What the report needs of protocol.Sender."""

    stream: str
    epoch: int

    @property
    def last_seq(self) -> int: ...

    def publish(self, bundle: bytes, bundle_id: bytes, kind: Kind = Kind.DATA) -> Any: ...


@dataclass(frozen=True)
class ReportSources:
    """Where the figures come from; every one is read, none is changed."""

    host: HostSampler
    spool_root: Path  # the inbound spool (spool.dir/inbound)
    delivery_root: Path  # the delivery queue (spool.dir/outbound)
    sender: LinkSender  # the inbound stream's Sender
    receiver_status: Callable[[], LinkStatus] | None  # the outbound link's reader, if any
    audit: AuditLog
    policy_version: Callable[[], int] = lambda: 0  # issue 17 fills this in


class ReportCursor:
    """The id of the last audit event a published report carried, kept in a small file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> int:
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return 0
        except (OSError, ValueError):
            log.error("report cursor %s is unreadable; reporting events from the start (the "
                      "inner agent stores each event once)", self.path)  # fmt: skip
            return 0
        last = document.get("last_event_id") if isinstance(document, dict) else None
        return last if isinstance(last, int) and last >= 0 else 0

    def save(self, last_event_id: int) -> None:
        text = json.dumps({"v": CURSOR_VERSION, "last_event_id": last_event_id})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_durably(self.path, text.encode())


class StatusReporter:
    """Builds and publishes status reports, in a thread (start/stop) or one at a time."""

    def __init__(
        self,
        sources: ReportSources,
        cursor: ReportCursor,
        *,
        interval_s: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sources = sources
        self.cursor = cursor
        self.interval_s = interval_s
        self.clock = clock
        self._last_event_id = cursor.load()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------------------- one report

    def publish_once(self) -> int:
        """Publish one report; returns how many events still wait (0: caught up)."""
        report, last_id = self.build()
        self.sources.sender.publish(encode_control(report), new_bundle_id(), Kind.CONTROL)
        if last_id != self._last_event_id:
            self.cursor.save(last_id)  # only now: a crash before this re-sends the events
            self._last_event_id = last_id
        return report.events_behind

    def build(self) -> tuple[StatusReport, int]:
        """The report as of now, and the id of its last event (the cursor after publishing)."""
        now = self.clock()
        events, last_id = self._events()
        sender = self.sources.sender
        status = self.sources.receiver_status
        report = StatusReport(
            made_ms=int(now * 1000),
            interval_s=self.interval_s,
            policy_version=self.sources.policy_version(),
            host=self.sources.host.sample(),
            spool=_spool_figures(spool_summary(self.sources.spool_root, now)),
            delivery=DeliveryFigures(**delivery_summary(self.sources.delivery_root, now)),
            link=LinkFigures(
                sender=SenderFigures(sender.stream, sender.epoch, sender.last_seq),
                receiver=None if status is None else receiver_figures(status()),
            ),
            events=events,
            events_behind=max(0, self.sources.audit.last_id() - last_id),
        )
        return report, last_id

    def _events(self) -> tuple[tuple[ReportedEvent, ...], int]:
        """Events after the cursor, at most N of them and M encoded bytes."""
        rows = self.sources.audit.events_after(self._last_event_id, MAX_EVENTS_PER_REPORT)
        chosen: list[ReportedEvent] = []
        budget = MAX_EVENT_BYTES_PER_REPORT
        last_id = self._last_event_id
        for event_id, event in rows:
            reported = _reportable(event_id, event)
            budget -= encoded_size(reported)
            if budget < 0:
                break
            chosen.append(reported)
            last_id = event_id
        return tuple(chosen), last_id

    # ----------------------------------------------------------------------------- thread

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="status-report", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                behind = self.publish_once()
            except Exception:  # a report is not worth a stopped agent; the next one follows
                log.exception("publishing the status report failed; trying again in %.0f s",
                              RETRY_S)  # fmt: skip
                self._stopping.wait(RETRY_S)
                continue
            self._stopping.wait(CATCH_UP_S if behind else self.interval_s)


def _reportable(event_id: int, event: AuditEvent) -> ReportedEvent:
    return reportable_event(event_id, event.ts, event.mail_id, event.step, event.details)


def _spool_figures(summary: dict[str, Any]) -> SpoolFigures:
    return SpoolFigures(
        incoming=summary["incoming"], received=summary["received"],
        rendering=summary["rendering"], rendered=summary["rendered"],
        quarantine=summary["quarantine"], oldest_waiting_s=summary["oldest_waiting_s"],
    )  # fmt: skip


def receiver_figures(status: LinkStatus) -> ReceiverFigures:
    """The outbound link's receive side as a report shows it."""
    counters = status.counters
    refused = sum(n for name, n in counters.items() if name.startswith("quarantined:"))
    dropped = counters.get("quarantine_dropped", 0)
    return ReceiverFigures(
        stream=status.stream,
        epoch=status.sender_epoch,
        highest_seq=status.highest_seq,
        gaps=tuple(status.gaps[:MAX_GAPS_LISTED]),
        gap_count=len(status.gaps),
        quarantined=max(0, refused - dropped),
        dropped=dropped,
        last_seen_ms=status.last_seen_ms,
        last_heartbeat_ms=status.last_heartbeat_ms,
        silent=status.silent,
    )
