"""The dashboard's figures and alarms (pure): counts per day and outcome, the outer side from
its report's freshness, and an alarm for each thing an operator must act on — with none for
a healthy pair of agents."""

from __future__ import annotations

import copy

import pytest

from inner_agent.console.status import (
    APPROVAL_WAIT_ALARM_S,
    STUCK_AFTER_S,
    alarms,
    mail_counts,
    outer_side,
)
from inner_agent.console.text import words
from inner_agent.reports import StoredReport, report_freshness

NOW = 1_800_000_000.0
DAYS = [f"2027-01-{d:02d}" for d in range(9, 16)]
HOST = {"hostname": "outer-1", "uptime_s": 90061, "cpu_count": 2, "cpu_percent": 12.5,
        "load": [0.5, 0.4, 0.3], "memory_total": 8 << 30, "memory_available": 6 << 30,
        "disk_total": 100 << 30, "disk_free": 60 << 30}  # fmt: skip
RECEIVER = {"stream": "outbound", "epoch": 3, "highest_seq": 40, "gaps": [], "gap_count": 0,
            "quarantined": 0, "dropped": 0, "last_seen_ms": int(NOW * 1000) - 5000,
            "last_heartbeat_ms": int(NOW * 1000) - 5000, "silent": False}  # fmt: skip
FIGURES = {"made_ms": 0, "interval_s": 30, "policy_version": 0, "host": HOST,
           "spool": {"incoming": 0, "received": 1, "rendering": 0, "rendered": 0,
                     "quarantine": 0, "oldest_waiting_s": 3.0},
           "delivery": {"queued": 0, "retrying": 0, "quarantine": 0, "oldest_waiting_s": None},
           "link": {"sender": {"stream": "inbound", "epoch": 7, "last_seq": 99},
                    "receiver": RECEIVER},
           "events_behind": 0}  # fmt: skip


def report(age_s: float, interval_s: int = 30) -> StoredReport:
    made = int((NOW - age_s) * 1000)
    return StoredReport("inbound", 5, made, made + 200, interval_s, 12, dict(FIGURES))


def healthy() -> dict:
    return {
        "mail": None,
        "approvals": {"pending": 1, "escalated": 0, "oldest_s": 600.0},
        "inner": {
            "host": {**HOST, "hostname": "inner-1"},
            "link": {**RECEIVER, "stream": "inbound", "refused_bundles": 0},
            "queues": {
                "injection": {
                    "queued": 0,
                    "accepted": 10,
                    "refused": 0,
                    "arrived": 0,
                    "oldest_queued_s": None,
                    "attempts": 0,
                    "last_error": None,
                    "alarm": False,
                },
                "outbound": {"received": 0, "sending": 0, "oldest_waiting_s": None},
                "notices": {"waiting": 0, "max_attempts": 0},
            },
        },
        "outer": outer_side(report_freshness(report(10), NOW)),
    }


def codes(status: dict) -> list[str]:
    return [a.code for a in alarms(status, "ko", NOW)]


def test_a_healthy_pair_of_agents_raises_no_alarm():
    assert codes(healthy()) == []


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda s: s.update(outer=outer_side(report_freshness(None, NOW))), "outer_report_missing"),
        (lambda s: s.update(outer=outer_side(report_freshness(report(91), NOW))), "outer_report_stale"),
        (lambda s: s["inner"]["link"].update(silent=True), "inbound_link_silent"),
        (lambda s: s["inner"]["link"].update(silent=True, last_seen_ms=0), "inbound_link_never"),
        (lambda s: s["inner"]["link"].update(gap_count=2, gaps=[5, 6]), "inbound_gaps"),
        (lambda s: s["inner"]["link"].update(refused_bundles=1), "inbound_refused"),
        (lambda s: s["outer"]["link"]["receiver"].update(silent=True), "outbound_link_silent"),
        (lambda s: s["outer"]["link"]["receiver"].update(gap_count=1), "outbound_gaps"),
        (lambda s: s["inner"]["queues"]["injection"].update(alarm=True, oldest_queued_s=1000.0),
         "injection_waiting"),
        (lambda s: s["inner"]["queues"]["injection"].update(refused=2), "injection_refused"),
        (lambda s: s["inner"]["queues"]["outbound"].update(sending=1,
                                                           oldest_waiting_s=STUCK_AFTER_S + 1),
         "outbound_stuck"),
        (lambda s: s["outer"]["delivery"].update(queued=3, retrying=2,
                                                 oldest_waiting_s=STUCK_AFTER_S + 1),
         "delivery_stuck"),
        (lambda s: s["outer"]["delivery"].update(quarantine=1), "delivery_quarantine"),
        (lambda s: s["outer"]["spool"].update(quarantine=4), "spool_quarantine"),
        (lambda s: s["outer"]["spool"].update(oldest_waiting_s=STUCK_AFTER_S + 1), "spool_stuck"),
        (lambda s: s["approvals"].update(oldest_s=APPROVAL_WAIT_ALARM_S + 1), "approvals_waiting"),
        (lambda s: s["inner"]["host"].update(disk_free=1 << 30), "inner_disk_low"),
        (lambda s: s["outer"]["host"].update(memory_available=1 << 20), "outer_memory_low"),
        (lambda s: s.update(audit={"time": "-", "ok": False, "checked": 3, "checkpoints": 0,
                                   "event": 4, "problem": "changed"}), "audit_broken"),
    ],
)  # fmt: skip
def test_each_trouble_raises_its_alarm_in_korean_with_what_to_do(change, code):
    status = copy.deepcopy(healthy())
    change(status)
    found = alarms(status, "ko", NOW)
    assert [a.code for a in found] == [code]
    assert found[0].message == found[0].message.strip()
    assert found[0].todo
    # Korean text: the words of the alarm are the Korean ones (the English differ)
    assert words("ko")[f"todo.{code}"].split("{")[0] in found[0].todo
    assert alarms(status, "en", NOW)[0].message != found[0].message


def test_a_stale_report_says_its_age_and_the_figures_of_a_missing_one_are_none():
    stale = outer_side(report_freshness(report(600), NOW))
    assert stale["state"] == "stale"
    assert stale["age_s"] == pytest.approx(600, abs=1)
    assert stale["host"]["hostname"] == "outer-1"  # still shown, marked stale
    (alarm,) = alarms({**healthy(), "outer": stale}, "ko", NOW)
    assert "10분" in alarm.message  # its age, in words
    missing = outer_side(report_freshness(None, NOW))
    assert missing["state"] == "missing"
    assert missing["host"] is None
    assert missing["delivery"] is None


def test_the_outer_links_alarms_wait_for_a_fresh_report():
    """A stale report's link figures are old news: the stale alarm says so, once."""
    status = healthy()
    status["outer"] = outer_side(report_freshness(report(600), NOW))
    status["outer"]["link"]["receiver"] = {**RECEIVER, "silent": True}
    assert codes(status) == ["outer_report_stale"]


def test_mail_counts_today_and_the_last_seven_days():
    rows = {
        "in": [{"period": "2027-01-15", "group": "delivered", "count": 4},
               {"period": "2027-01-10", "group": "delivered", "count": 3},
               {"period": "2027-01-10", "group": "quarantined", "count": 1},
               {"period": "2027-01-01", "group": "delivered", "count": 99}],
        "out": [{"period": "2027-01-15", "group": "held", "count": 2}],
    }  # fmt: skip
    found = mail_counts(rows, DAYS)
    assert found["today"] == {"in": {"delivered": 4}, "out": {"held": 2}}
    assert found["last_7_days"]["in"] == {"delivered": 7, "quarantined": 1}
    assert [d["day"] for d in found["days"]] == DAYS
    assert found["days"][-1] == {"day": "2027-01-15", "in": 4, "out": 2}
    assert found["days"][1] == {"day": "2027-01-10", "in": 4, "out": 0}
