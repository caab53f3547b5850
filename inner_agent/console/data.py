"""``ConsoleData``: the one object the console's pages and API read from — the mail index
(kept up to date), the dashboard's status, the inner host's figures, a mail's findings and
picture. Blocking (SQLite, files): the pages call it in a worker thread, never in the event
loop.

It holds nothing of the running agent but paths (``ConsolePlaces``): every figure is read
from the agent's files read-only, so the console answers the same whether the web listener
runs inside the agent's process or in a process of its own.

Once ``start`` was called (the agent does), an ``IndexFollower`` thread keeps the mail index
caught up, every second; until then (tests, tools) each answer catches it up first, at most
``REQUEST_CATCH_UP_BATCHES`` batches, so a backlog never makes one request slow.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from agentkit.hostfigures import PROC, HostSampler
from agentkit.leasekeeper import lease_figures
from agentkit.mailindex import IndexFollower, MailIndex, MailQuery, StatsQuery, iso_time
from agentkit.readonly import query_read_only
from inner_agent.console import figures
from inner_agent.console.places import ConsolePlaces
from inner_agent.console.status import alarms, mail_counts, outer_side
from inner_agent.console.text import Language
from inner_agent.outbound.directory_check import directory_gaps
from inner_agent.outbound.directory_health import read_health
from inner_agent.outbound.previews import Preview
from inner_agent.reports import latest_report, report_freshness
from protocol.atrest import CLEAR, AtRestKeyring, is_sealed

__all__ = ["DASHBOARD_DAYS", "REQUEST_CATCH_UP_BATCHES", "ConsoleData"]

log = logging.getLogger(__name__)

# Events folded before an answer: 2 batches of 5,000 are about 0.2 s; a larger backlog (the
# first start over an old audit store) is left to the follower thread.
REQUEST_CATCH_UP_BATCHES = 2
DASHBOARD_DAYS = 7
# CPU use is measured between two samples; a sample older than this is not a fair base, so
# two are taken CPU_WINDOW_S apart instead. Samples closer than HOST_REUSE_S are reused.
HOST_BASE_MAX_AGE_S = 60.0
CPU_WINDOW_S = 0.2
HOST_REUSE_S = 2.0


class ConsoleData:
    def __init__(
        self,
        places: ConsolePlaces,
        *,
        zone: tzinfo,
        language: Language,
        clock: Callable[[], float] = time.time,
        proc: Path = PROC,
    ) -> None:
        self.places, self.zone, self.language, self.clock = places, zone, language, clock
        self._sampler = HostSampler(places.disk_path, proc=proc)
        self._host: tuple[float, dict[str, Any]] | None = None
        self._host_lock = threading.Lock()  # sampling sleeps: not under the index's lock
        self._lock = threading.Lock()
        self._index: MailIndex | None = None
        self._follower: IndexFollower | None = None

    @property
    def readable(self) -> bool:
        """False when the agent has no audit store: no mail, statistics or records to show."""
        return self.places.audit_path is not None

    # ------------------------------------------------------------------------- the index

    def index(self) -> MailIndex | None:
        """The mail index: followed by its thread, or else caught up (boundedly) now."""
        if self.places.audit_path is None:
            return None
        with self._lock:
            if self._index is None:
                self._index = MailIndex(self.places.audit_path)
            index, followed = self._index, self._follower is not None
        if not followed:
            index.catch_up(max_batches=REQUEST_CATCH_UP_BATCHES)
        return index

    def start(self) -> None:
        """Keep the index caught up by a thread of its own (``close`` stops it)."""
        index = self.index()
        with self._lock:
            if index is None or self._follower is not None:
                return
            self._follower = IndexFollower(index)
        self._follower.start()

    def close(self) -> None:
        if self._follower is not None:
            self._follower.stop()
            self._follower = None
        with self._lock:
            if self._index is not None:
                self._index.close()
                self._index = None

    # ------------------------------------------------------------------------- the dashboard

    def status(self, language: Language) -> dict[str, Any]:
        """The dashboard as one JSON-able answer (``GET /api/v1/status``), alarms included,
        in ``language``."""
        now = self.clock()
        places = self.places
        reports = places.reports_db
        stored = latest_report(reports, "inbound") if reports is not None else None
        status: dict[str, Any] = {
            "time": iso_time(now, self.zone),
            "mail": self._mail_counts(now),
            "approvals": figures.approvals(places.outbound_state, now),
            "inner": {
                "host": self.host(),
                "link": self._inbound_link(now),
                "queues": figures.inner_queues(places.state_dir, places.outbound_state, now),
            },
            "outer": outer_side(report_freshness(stored, now)),
            "directory": self._directory_gaps(),
            "audit": self._last_verification(),
            "lease": self._lease(now),
        }
        injection = status["inner"]["queues"]["injection"]
        if injection is not None:
            waited = injection["oldest_queued_s"]
            injection["alarm"] = waited is not None and waited > places.inject_alarm_s
        found = figures.streams(places, now)  # several outer agents only (D74)
        if found is not None:
            status["streams"] = found
        status["alarms"] = [a.as_dict() for a in alarms(status, language, now)]
        return status

    def _lease(self, now: float) -> dict[str, Any] | None:
        """The state's fencing lease: this agent's role, the holder, token and expiry (D70);
        None without a state folder or a holder name to compare with."""
        places = self.places
        if places.state_dir is None or places.lease_holder is None:
            return None
        return lease_figures(places.state_dir, places.lease_holder, now)

    def people_named(self, text: str, limit: int) -> tuple[list[dict[str, Any]], int]:
        """The directory's people whose name contains ``text`` (the first ``limit``, in
        address order: email, name, department, disabled) and how many there are; none
        without a directory. Read-only, as the dashboard reads the directory."""
        db = self.places.directory_db
        if db is None or not text.strip():
            return [], 0
        pattern = "%" + text.strip().replace("\\", "\\\\").replace("%", "\\%").replace(
            "_", "\\_") + "%"  # fmt: skip
        where = "FROM users WHERE name LIKE ? ESCAPE '\\'"
        try:
            total = query_read_only(db, f"SELECT count(*) {where}", (pattern,))
            rows = query_read_only(db, f"SELECT email, name, department, disabled {where} "
                                   "ORDER BY email LIMIT ?", (pattern, limit))  # fmt: skip
        except sqlite3.OperationalError as exc:  # a file the agent has not upgraded yet
            log.warning("the directory %s could not be searched by name: %s", db, exc)
            return [], 0
        people = [{"email": e, "name": n, "department": d, "disabled": bool(off)}
                  for e, n, d, off in rows]  # fmt: skip
        return people, int(total[0][0]) if total else 0

    def _directory_gaps(self) -> dict[str, Any] | None:
        """The directory's gaps (an empty one, departments without an approver), as
        ``maildiode check`` warns of them, and whether its LDAP server answered last
        (``directory_health``; None without a sync); None without an outbound path."""
        places = self.places
        if places.directory_db is None:
            return None
        gaps = directory_gaps(places.directory_db, fallback_approver=places.fallback_approver)
        ldap = read_health(places.state_dir) if places.state_dir is not None else None
        return {"empty": gaps.empty, "without_approver": list(gaps.without_approver),
                "ldap": ldap}  # fmt: skip

    def _last_verification(self) -> dict[str, Any] | None:
        """The audit chain's last verification (``audit_verified``: the daily upkeep or
        ``maildiode audit verify``); None when it was never verified."""
        path = self.places.audit_path
        if path is None:
            return None
        rows = query_read_only(path, "SELECT ts, details FROM events WHERE step = "
                               "'audit_verified' ORDER BY id DESC LIMIT 1")  # fmt: skip
        if not rows:
            return None
        ts, details = rows[0]
        found = json.loads(details)
        return {"time": iso_time(ts, self.zone), "ok": bool(found.get("ok")),
                "checked": found.get("checked"), "checkpoints": found.get("checkpoints"),
                "event": found.get("event"), "problem": found.get("problem")}  # fmt: skip

    def _inbound_link(self, now: float) -> dict[str, Any] | None:
        places = self.places
        return figures.inbound_link(places.state_dir, now, gap_wait_s=places.gap_wait_s,
                                    silence_alarm_s=places.silence_alarm_s)  # fmt: skip

    def _mail_counts(self, now: float) -> dict[str, Any] | None:
        index = self.index()
        if index is None:
            return None
        today = datetime.fromtimestamp(now, self.zone).date()
        first = today - timedelta(days=DASHBOARD_DAYS - 1)
        days = [(first + timedelta(days=n)).isoformat() for n in range(DASHBOARD_DAYS)]
        since = datetime(first.year, first.month, first.day, tzinfo=self.zone).timestamp()
        per_direction = {
            direction: index.statistics(StatsQuery(
                "day", "outcome", self.zone, MailQuery(direction=direction, since=since)
            ))["rows"]
            for direction in ("in", "out")
        }  # fmt: skip
        return mail_counts(per_direction, days)

    def host(self) -> dict[str, Any]:
        """The inner host's figures; CPU use over the last seconds."""
        now = time.monotonic()
        with self._host_lock:
            if self._host is not None and now - self._host[0] < HOST_REUSE_S:
                return self._host[1]
            if self._host is None or now - self._host[0] > HOST_BASE_MAX_AGE_S:
                self._sampler.sample()  # the base CPU use is measured from
                time.sleep(CPU_WINDOW_S)
            figures_now = asdict(self._sampler.sample())
            self._host = (time.monotonic(), figures_now)
        return figures_now

    # ------------------------------------------------------------------------- one mail

    def mail_extras(self, mail: dict[str, Any]) -> tuple[dict[str, Any] | None, bool]:
        """For a mail's detail: its outbound state row (None for inbound mail, or none kept)
        and whether its masked picture is kept."""
        if mail["direction"] != "out":
            return None, False
        mail_id = mail["id"]
        places = self.places
        return (figures.outbound_mail(places.outbound_state, mail_id),
                figures.has_outbound_picture(places.outbound_state, mail_id))  # fmt: skip

    def picture(self, mail_id: str, page: int = 1) -> bytes | None:
        """Page ``page`` (from 1) of the masked picture, opened in memory when it is sealed at
        rest (the key file is read for it: pictures are shown one at a time); None when the
        mail has no such page."""
        preview = self._preview(mail_id)
        if preview is not None:
            found = preview.page(page)
            return found.data if found is not None else None
        if page != 1:
            return None
        stored = figures.outbound_picture(self.places.outbound_state, mail_id)
        return None if stored is None else self._opened(stored, f"the picture of {mail_id}")

    def picture_pages(self, mail_id: str) -> tuple[str, ...]:
        """The title of each page of the mail's masked picture ("본문", "첨부 명단.xlsx 1쪽");
        () when only the first picture is kept (a preview of an earlier version)."""
        preview = self._preview(mail_id)
        return tuple(page.title for page in preview.pages) if preview is not None else ()

    def _preview(self, mail_id: str) -> Preview | None:
        stored = figures.outbound_preview_pages(self.places.outbound_state, mail_id)
        if stored is None:
            return None
        try:
            return Preview.decode(self._opened(stored, f"the preview of {mail_id}"))
        except ValueError:
            return None  # unreadable pages: the first picture, kept beside them, still shows

    def _opened(self, stored: bytes, what: str) -> bytes:
        if not is_sealed(stored):
            return stored
        key = self.places.at_rest_key
        keyring = CLEAR if key is None else AtRestKeyring.load(key)
        return keyring.open(stored, f"outbound state: {what}")
