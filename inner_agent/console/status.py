"""The dashboard's answer (``GET /api/v1/status``, and the page drawn from it) and its alarms.
Pure: figures in, a JSON-able dict out; time and language passed in.

``mail_counts`` turns the mail index's statistics (per day and outcome, one direction at a
time) into today's and the last seven days' counts; ``outer_side`` turns the outer agent's
last status report (with its freshness, ``inner_agent.reports.report_freshness``) into what
the dashboard shows of that host; ``alarms`` reads a whole status and says what is wrong and
what to do, each alarm with a stable code. Thresholds are named below with their reasons.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agentkit.streams import PAIR_INBOUND as INBOUND_STREAM
from inner_agent.console.text import Language, duration, words

__all__ = [
    "APPROVAL_WAIT_ALARM_S",
    "LOW_SHARE",
    "STUCK_AFTER_S",
    "Alarm",
    "alarms",
    "mail_counts",
    "outer_side",
]

# Outbound mail that has not left the inner side, or waits in the outer agent's delivery
# queue, for this long is stuck: scanning and publishing take seconds, and a relay that
# greylists answers within minutes.
STUCK_AFTER_S = 1800.0
# An approval request waiting a working day: someone should call the approver (reminders
# and escalation run on their own timers; this is the operator's view of them).
APPROVAL_WAIT_ALARM_S = 86400.0
# Free disk or available memory below this share of the total: act before the agents
# refuse mail (they keep a minimum free, see min_free_bytes).
LOW_SHARE = 0.10


@dataclass(frozen=True)
class Alarm:
    code: str  # stable, for scripts: "outer_report_stale", "inbound_link_silent", ...
    where: str  # "inner", "outer" or "link"
    message: str  # what is wrong, with figures
    todo: str  # what to do

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "where": self.where, "message": self.message,
                "todo": self.todo}  # fmt: skip


# ----------------------------------------------------------------------------- mail counts


def mail_counts(per_direction: Mapping[str, Sequence[Mapping[str, Any]]], days: Sequence[str]
                ) -> dict[str, Any]:  # fmt: skip
    """Today's and the last seven days' mails per direction and outcome, and per day.

    ``per_direction``: for "in" and "out", the rows of ``MailIndex.statistics`` by day and
    outcome over ``days`` (oldest first, today last)."""
    today, week = days[-1], set(days)
    found: dict[str, Any] = {"today": {"in": {}, "out": {}}, "last_7_days": {"in": {}, "out": {}}}
    per_day: dict[str, dict[str, Any]] = {day: {"day": day, "in": 0, "out": 0} for day in days}
    for direction, rows in per_direction.items():
        for row in rows:
            day, outcome, count = row["period"], row["group"], int(row["count"])
            if day not in week:
                continue
            _add(found["last_7_days"][direction], outcome, count)
            per_day[day][direction] += count
            if day == today:
                _add(found["today"][direction], outcome, count)
    found["days"] = [per_day[day] for day in days]
    return found


def _add(counts: dict[str, int], outcome: str, count: int) -> None:
    counts[outcome] = counts.get(outcome, 0) + count


# ----------------------------------------------------------------------------- outer side


def outer_side(freshness: Mapping[str, Any]) -> dict[str, Any]:
    """What the dashboard shows of the outer host: the report's state and age, then its
    figures (host, spool, delivery, link) as the report carried them."""
    shown: dict[str, Any] = {key: freshness.get(key) for key in
                             ("state", "age_s", "received_age_s", "stale_after_s")}  # fmt: skip
    report = freshness.get("report")
    if report is None:
        return {**shown, "interval_s": None, "made_ms": None, "host": None, "spool": None,
                "delivery": None, "link": None}  # fmt: skip
    figures = report["figures"]
    return {**shown, "interval_s": report["interval_s"], "made_ms": report["made_ms"],
            "host": figures["host"], "spool": figures["spool"], "delivery": figures["delivery"],
            "link": figures["link"]}  # fmt: skip


# ----------------------------------------------------------------------------- alarms


def alarms(status: Mapping[str, Any], language: Language, now: float) -> list[Alarm]:
    """Everything on the dashboard that needs someone, most urgent first."""
    say = _Say(language)
    return [
        *_outer_report_alarms(status["outer"], say),
        *_link_alarms(status["inner"].get("link"), status["outer"], say, now),
        *_queue_alarms(status["inner"]["queues"], status["outer"], say),
        *_approval_alarms(status.get("approvals"), say),
        *_directory_alarms(status.get("directory"), say, now),
        *_audit_alarms(status.get("audit"), say),
        *_host_alarms("inner", status["inner"].get("host"), say),
        *_host_alarms("outer", status["outer"].get("host"), say),
        *_stream_alarms(status.get("streams"), say, now),
    ]


class _Say:
    """Alarms in the console's language: ``say(code, where, **figures)``."""

    def __init__(self, language: Language) -> None:
        self.language = language
        self.words = words(language)

    def __call__(self, code: str, where: str, **figures: Any) -> Alarm:
        shown = {k: duration(v, self.language) if k.endswith("_s") else v
                 for k, v in figures.items()}  # fmt: skip
        return Alarm(code, where, self.words[f"alarm.{code}"].format(**shown),
                     self.words[f"todo.{code}"].format(**shown))  # fmt: skip


def _outer_report_alarms(outer: Mapping[str, Any], say: _Say) -> Iterable[Alarm]:
    if outer["state"] == "missing":
        yield say("outer_report_missing", "outer")
    elif outer["state"] == "stale":
        age = max(outer["age_s"] or 0.0, outer["received_age_s"] or 0.0)
        yield say("outer_report_stale", "outer", age_s=age, limit_s=outer["stale_after_s"])


def _stream_alarms(streams: Iterable[Mapping[str, Any]] | None, say: _Say,
                   now: float) -> Iterable[Alarm]:  # fmt: skip
    """The outer agents beyond the pair's (whose alarms are the outer ones above): a stale or
    missing report, a silent link. Their outbound share moves when stale (D75)."""
    for row in streams or ():
        if row["stream"] == INBOUND_STREAM:
            continue
        if row["report"] == "missing":
            yield say("stream_report_missing", "outer", stream=row["stream"])
        elif row["report"] == "stale":
            yield say("stream_report_stale", "outer", stream=row["stream"],
                      age_s=row["report_age_s"] or 0.0, limit_s=row["stale_after_s"])  # fmt: skip
        link = row["link"]
        if link is not None and link["silent"] and link["last_seen_ms"]:
            yield say("stream_silent", "link", stream=row["stream"],
                      since_s=now - link["last_seen_ms"] / 1000)  # fmt: skip


def _link_alarms(link: Mapping[str, Any] | None, outer: Mapping[str, Any], say: _Say,
                 now: float) -> Iterable[Alarm]:  # fmt: skip
    if link is not None:
        last = link["last_seen_ms"]
        if link["silent"] and last:
            yield say("inbound_link_silent", "link", since_s=now - last / 1000)
        elif link["silent"]:
            yield say("inbound_link_never", "link")
        if link["gap_count"]:
            yield say("inbound_gaps", "link", count=link["gap_count"])
        if link["quarantined"] or link["refused_bundles"]:
            yield say("inbound_refused", "link", files=link["quarantined"],
                      bundles=link["refused_bundles"])  # fmt: skip
    receiver = (outer.get("link") or {}).get("receiver")
    if receiver is not None and outer["state"] == "fresh":
        if receiver["silent"]:
            yield say("outbound_link_silent", "link")
        if receiver["gap_count"]:
            yield say("outbound_gaps", "link", count=receiver["gap_count"])


def _queue_alarms(queues: Mapping[str, Any], outer: Mapping[str, Any], say: _Say
                  ) -> Iterable[Alarm]:  # fmt: skip
    injection = queues.get("injection")
    if injection and injection.get("alarm"):
        yield say("injection_waiting", "inner", age_s=injection["oldest_queued_s"],
                  error=injection.get("last_error") or "-")  # fmt: skip
    if injection and injection.get("refused"):
        yield say("injection_refused", "inner", count=injection["refused"])
    outbound = queues.get("outbound")
    if outbound and (outbound["oldest_waiting_s"] or 0) > STUCK_AFTER_S:
        yield say("outbound_stuck", "inner", age_s=outbound["oldest_waiting_s"],
                  count=outbound["received"] + outbound["sending"])  # fmt: skip
    delivery, spool = outer.get("delivery"), outer.get("spool")
    if delivery and (delivery["oldest_waiting_s"] or 0) > STUCK_AFTER_S:
        yield say("delivery_stuck", "outer", age_s=delivery["oldest_waiting_s"],
                  count=delivery["queued"], retrying=delivery["retrying"])  # fmt: skip
    if delivery and delivery["quarantine"]:
        yield say("delivery_quarantine", "outer", count=delivery["quarantine"])
    if spool and spool["quarantine"]:
        yield say("spool_quarantine", "outer", count=spool["quarantine"])
    if spool and (spool["oldest_waiting_s"] or 0) > STUCK_AFTER_S:
        yield say("spool_stuck", "outer", age_s=spool["oldest_waiting_s"])


def _approval_alarms(found: Mapping[str, Any] | None, say: _Say) -> Iterable[Alarm]:
    if found and (found["oldest_s"] or 0) > APPROVAL_WAIT_ALARM_S:
        yield say("approvals_waiting", "inner", count=found["pending"], age_s=found["oldest_s"])


def _directory_alarms(found: Mapping[str, Any] | None, say: _Say, now: float
                      ) -> Iterable[Alarm]:  # fmt: skip
    if not found:
        return
    ldap = found.get("ldap")
    if ldap and not ldap["reachable"]:  # sign-ins by the directory password fail meanwhile
        since = max(0.0, now - float(ldap["since"] or now))
        yield say("directory_unreachable", "inner", server=ldap["server"],
                  reason=ldap["reason"] or "-", since_s=since)  # fmt: skip
    elif ldap:
        yield from _servers_down(ldap, say, now)
    if found["empty"]:
        yield say("directory_empty", "inner")
    elif found["without_approver"]:
        yield say("department_without_approver", "inner",
                  departments=", ".join(found["without_approver"]))  # fmt: skip


def _servers_down(ldap: Mapping[str, Any], say: _Say, now: float) -> Iterable[Alarm]:
    """Several servers (D92): one answered, others could not; sign-in goes on through it."""
    down = [s for s in ldap.get("servers") or () if not s["reachable"]]
    if down:
        since = max(0.0, now - min(float(s["since"] or now) for s in down))
        yield say("directory_server_down", "inner", down=", ".join(s["server"] for s in down),
                  reason="; ".join(s["reason"] or "-" for s in down), server=ldap["server"],
                  since_s=since)  # fmt: skip


def _audit_alarms(found: Mapping[str, Any] | None, say: _Say) -> Iterable[Alarm]:
    if found and not found["ok"]:
        yield say("audit_broken", "inner", event=found["event"] or "-",
                  problem=found["problem"] or "")  # fmt: skip


def _host_alarms(where: str, host: Mapping[str, Any] | None, say: _Say) -> Iterable[Alarm]:
    if not host:
        return
    if _low(host.get("disk_free"), host.get("disk_total")):
        yield say(f"{where}_disk_low", where, percent=_percent(host["disk_free"],
                                                                host["disk_total"]))  # fmt: skip
    if _low(host.get("memory_available"), host.get("memory_total")):
        yield say(f"{where}_memory_low", where,
                  percent=_percent(host["memory_available"], host["memory_total"]))  # fmt: skip


def _low(part: int | None, total: int | None) -> bool:
    return part is not None and bool(total) and part < LOW_SHARE * (total or 0)


def _percent(part: int, total: int) -> str:
    return f"{100 * part / total:.0f}"
