"""The inner agent's state as the dashboard shows it, read without disturbing the agent: every
database opened read-only (``agentkit.readonly``: a file not made yet reads as nothing, no
write lock is ever taken), folders counted up to a cap. Each function answers plain JSON-able
values; None where the agent has no such part (no outbound path, no link state yet).

- ``inbound_link``: the receiving end of the inbound link (the outer agent's side of the
  outbound link comes with its status report): last chunk and heartbeat, gaps, refused files;
- ``inner_queues``: notifications waiting for the internal server, outbound mail not yet
  published, approval notices waiting;
- ``approvals``: requests waiting for an approver and the oldest one's age;
- ``outbound_mail``: what the outbound state database holds of one mail (its state and its
  masked findings with their places), and ``outbound_picture`` its masked picture.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from agentkit.readonly import query_read_only
from agentkit.streams import outbound_stream, outer_agent_name
from inner_agent.console.places import ConsolePlaces
from inner_agent.inject import queue_summary
from inner_agent.reports import latest_report, report_freshness

__all__ = [
    "MAX_COUNTED_FILES",
    "MAX_GAPS_SHOWN",
    "approvals",
    "count_files",
    "has_outbound_picture",
    "inbound_link",
    "inner_queues",
    "outbound_mail",
    "outbound_picture",
    "outbound_preview_pages",
    "streams",
]

# Files counted in a quarantine folder; past this the dashboard says "10000+" (a flood must
# not make every dashboard view list a huge folder).
MAX_COUNTED_FILES = 10_000
# Missing sequence numbers listed (all are counted): enough to recognise a pattern.
MAX_GAPS_SHOWN = 20
INBOUND_STREAM = "inbound"
# States of an outbound mail the inner agent has not yet sent on (inner_agent.outbound.state).
WAITING_STATES = ("received", "sending")


def inbound_link(state_dir: Path | None, now: float, *, gap_wait_s: float,
                 silence_alarm_s: float, stream: str = INBOUND_STREAM
                 ) -> dict[str, Any] | None:  # fmt: skip
    """An inbound link's receiving end (``protocol.Receiver``'s database), as the outer
    agent reports its own receiving end (``ReceiverFigures``), plus refused bundles."""
    if state_dir is None:
        return None
    path = state_dir / f"receiver-{stream}.db"
    meta = dict(query_read_only(path, "SELECT key, value FROM meta"))
    counters = dict(query_read_only(path, "SELECT name, value FROM counters"))
    cutoff_ms = int((now - gap_wait_s) * 1000)
    missing = "SELECT seq FROM missing WHERE since_ms <= ? ORDER BY seq"
    gaps = [seq for (seq,) in query_read_only(path, missing, (cutoff_ms,))]
    refused = sum(n for name, n in counters.items() if str(name).startswith("quarantined:"))
    dropped = int(counters.get("quarantine_dropped", 0))
    last_seen_ms = int(meta.get("last_seen_ms", 0))
    return {
        "stream": stream,
        "epoch": int(meta.get("sender_epoch", 0)),
        "highest_seq": max(0, int(meta.get("highest_seq", 0))),
        "gaps": gaps[:MAX_GAPS_SHOWN],
        "gap_count": len(gaps),
        "quarantined": max(0, refused - dropped),
        "dropped": dropped,
        "refused_bundles": count_files(state_dir / "quarantine", "bundle-", ".reason.json"),
        "last_seen_ms": last_seen_ms,
        "last_heartbeat_ms": int(meta.get("last_heartbeat_ms", 0)),
        "silent": now * 1000 - last_seen_ms > silence_alarm_s * 1000,
    }


def streams(places: ConsolePlaces, now: float) -> list[dict[str, Any]] | None:
    """With several outer agents (D74, D75): each stream, its outer host and report, its
    receiving end, and what it carries (bundles in; approved mail out not yet reported
    delivered). None with one outer agent: the dashboard shows the pair as before."""
    if not places.streams or places.state_dir is None:
        return None
    waiting = dict(query_read_only(places.shares_db, "SELECT stream, COUNT(*) FROM shares "
                                   "GROUP BY stream")) if places.shares_db else {}  # fmt: skip
    rows = []
    for stream in (INBOUND_STREAM, *places.streams):
        report = report_freshness(latest_report(places.state_dir / "reports.db", stream), now)
        path = places.state_dir / f"receiver-{stream}.db"
        counters = dict(query_read_only(path, "SELECT name, value FROM counters"))
        link = inbound_link(places.state_dir, now, gap_wait_s=places.gap_wait_s,
                            silence_alarm_s=places.silence_alarm_s, stream=stream)  # fmt: skip
        rows.append({
            "stream": stream, "agent": outer_agent_name(stream),
            "outbound_stream": outbound_stream(stream),
            "host": report["report"]["figures"]["host"]["hostname"] if "report" in report
            else None,
            "report": report["state"], "report_age_s": report["age_s"],
            "stale_after_s": report.get("stale_after_s"), "link": link,
            "bundles_received": int(counters.get("bundles_delivered", 0)),
            "outbound_waiting": int(waiting.get(stream, 0)),
        })  # fmt: skip
    return rows


def inner_queues(state_dir: Path | None, outbound_state: Path | None, now: float
                 ) -> dict[str, Any]:  # fmt: skip
    """What waits on the inner side: notifications for the internal server (the injection
    queue), outbound mail not yet scanned or published, notices for senders and approvers."""
    found: dict[str, Any] = {"injection": None, "outbound": None, "notices": None}
    if state_dir is not None:
        found["injection"] = queue_summary(state_dir / "inject.db", now)
    if outbound_state is not None:
        found["outbound"] = _outbound_waiting(outbound_state, now)
        found["notices"] = _notices_waiting(outbound_state, now)
    return found


def _outbound_waiting(path: Path, now: float) -> dict[str, Any]:
    marks = ", ".join("?" * len(WAITING_STATES))
    rows = query_read_only(
        path,
        f"SELECT state, COUNT(*), MIN(updated_at) FROM mails WHERE state IN ({marks})"  # noqa: S608
        " GROUP BY state",
        WAITING_STATES,
    )
    found: dict[str, Any] = dict.fromkeys(WAITING_STATES, 0)
    found["oldest_waiting_s"] = None
    for state, count, since in rows:
        found[state] = int(count)
        age = round(max(0.0, now - float(since)), 1)
        found["oldest_waiting_s"] = max(found["oldest_waiting_s"] or 0.0, age)
    return found


def _notices_waiting(path: Path, now: float) -> dict[str, Any]:
    rows = query_read_only(path, "SELECT COUNT(*), MAX(attempts) FROM outbox")
    count, attempts = rows[0] if rows else (0, None)
    return {"waiting": int(count or 0), "max_attempts": int(attempts or 0)}


def approvals(outbound_state: Path | None, now: float) -> dict[str, Any] | None:
    """Requests waiting for a decision (held, or escalated to a higher approver)."""
    if outbound_state is None:
        return None
    rows = query_read_only(
        outbound_state,
        "SELECT state, COUNT(*), MIN(since) FROM requests WHERE state IN ('held', 'escalated')"
        " GROUP BY state",
    )
    found: dict[str, Any] = {"pending": 0, "escalated": 0, "oldest_s": None}
    for state, count, since in rows:
        found["pending"] += int(count)
        if state == "escalated":
            found["escalated"] = int(count)
        age = round(max(0.0, now - float(since)), 1)
        found["oldest_s"] = max(found["oldest_s"] or 0.0, age)
    return found


def outbound_mail(outbound_state: Path | None, mail_id: str) -> dict[str, Any] | None:
    """The outbound state database's row of one mail: its state, who decided, and the scan's
    findings (already masked there: type, masked value, place); None when it has none."""
    if outbound_state is None:
        return None
    rows = query_read_only(
        outbound_state, "SELECT state, decided_by, findings FROM mails WHERE mail_id = ?",
        (mail_id,))  # fmt: skip
    if not rows:
        return None
    state, decided_by, findings = rows[0]
    return {"state": str(state), "decided_by": str(decided_by or ""),
            "findings": _findings(findings)}  # fmt: skip


def _findings(stored: str) -> list[dict[str, str]]:
    try:
        found = json.loads(stored)
    except ValueError:
        return []
    return [
        {"type": str(f.get("type", "")), "masked": str(f.get("masked", "")),
         "where": str(f.get("where", ""))}
        for f in (found if isinstance(found, list) else []) if isinstance(f, dict)
    ]  # fmt: skip


def outbound_picture(outbound_state: Path | None, mail_id: str) -> bytes | None:
    """The masked picture of a held outbound mail (the approver's preview), or None."""
    if outbound_state is None:
        return None
    rows = query_read_only(
        outbound_state, "SELECT preview FROM requests WHERE mail_id = ? AND preview IS NOT NULL",
        (mail_id,))  # fmt: skip
    return bytes(rows[0][0]) if rows else None


def outbound_preview_pages(outbound_state: Path | None, mail_id: str) -> bytes | None:
    """The whole stored preview of a held outbound mail (every page, ``previews.Preview``
    encoded, sealed when kept at rest), or None: none, or kept before previews had pages."""
    if outbound_state is None:
        return None
    rows = query_read_only(
        outbound_state,
        "SELECT p.pages FROM previews p JOIN requests r USING (request_id)"
        " WHERE r.mail_id = ? ORDER BY r.since DESC LIMIT 1",
        (mail_id,),
    )
    return bytes(rows[0][0]) if rows else None


def has_outbound_picture(outbound_state: Path | None, mail_id: str) -> bool:
    """Whether a masked picture of the mail is kept (without reading it)."""
    if outbound_state is None:
        return False
    return bool(query_read_only(
        outbound_state, "SELECT 1 FROM requests WHERE mail_id = ? AND preview IS NOT NULL",
        (mail_id,)))  # fmt: skip


def count_files(folder: Path, prefix: str = "", suffix: str = "") -> int:
    """Files in ``folder`` named ``prefix...suffix``, counted up to MAX_COUNTED_FILES + 1."""
    counted = 0
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith(prefix) and entry.name.endswith(suffix):
                    counted += 1
                    if counted > MAX_COUNTED_FILES:
                        break
    except OSError:
        return 0
    return counted
