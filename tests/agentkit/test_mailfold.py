"""The fold of a mail's audit events into its index row, and the outcome table. Pure."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentkit.audit import STEPS, AuditEvent
from agentkit.mailindex.fold import (
    EITHER_DIRECTION,
    INBOUND_STEPS,
    NOT_ABOUT_A_MAIL,
    OUTBOUND_STEPS,
    OUTCOME_TABLE,
    OUTCOMES,
    MailRow,
    fold,
    fold_all,
    mail_key,
    outcome_of,
)


def ev(
    step: str, ts: float = 100.0, mail: str = "m1", agent: str = "inner", **details: Any
) -> AuditEvent:
    return AuditEvent(ts, agent, mail, step, details)


def row_of(*events: AuditEvent) -> MailRow:
    (row,) = fold_all(events).values()
    return row


def test_every_audit_step_has_exactly_one_place() -> None:
    groups = (INBOUND_STEPS, OUTBOUND_STEPS, EITHER_DIRECTION, NOT_ABOUT_A_MAIL)
    assert sum(len(g) for g in groups) == len(STEPS)
    assert frozenset().union(*groups) == STEPS


def test_every_outcome_has_labels_in_both_languages() -> None:
    from agentkit.mailindex.export import OUTCOME_LABELS

    assert set(OUTCOME_LABELS) == set(OUTCOMES)


@pytest.mark.parametrize(
    ("event", "key"),
    [
        (ev("received", agent="outer"), ("m1", "in")),
        (ev("received_inside"), ("m1", "in")),
        (ev("requeued"), ("m1", "in")),
        (ev("quarantined", reason="image_decode"), ("m1", "in")),
        (ev("quarantined", reason="refused_by_internal_server"), ("m1", "in")),
        (ev("quarantined", reason="outbound_spool_unreadable"), ("m1", "out")),
        (ev("quarantined", agent="outer", reason="outbound_undecodable"), ("m1", "out")),
        (ev("accepted_outbound"), ("m1", "out")),
        (ev("bounced", agent="outer"), ("m1", "out")),
        (ev("resent", stream="outbound"), ("m1", "out")),
        (ev("resent", stream="inbound"), ("m1", "in")),
        (ev("link_refused", mail="-"), None),  # about the link, not a mail
        (ev("signin_spraying", mail="-"), None),  # about the web sign-in
        (ev("ldap_unreachable", mail="-"), None),  # about the web sign-in's directory
        (ev("token_refused", mail="-"), None),  # a CSRF refusal names no mail
        (ev("token_refused", mail="m9"), ("m9", "out")),
        (ev("teleported"), None),  # a step this code does not know (a newer agent's)
    ],
)
def test_which_row_an_event_belongs_to(event: AuditEvent, key: tuple[str, str] | None) -> None:
    assert mail_key(event) == key


# (steps seen, withheld attachments, direction) -> outcome. One row per line of the table,
# and the precedence between lines.
OUTCOME_CASES = [
    ({"received", "rendered", "published"}, 0, "in", "in_progress"),
    ({"received", "received_inside", "injected"}, 0, "in", "delivered"),
    ({"received_inside", "injected"}, 2, "in", "withheld"),
    ({"received_inside", "notified"}, 0, "in", "delivered"),
    ({"received", "quarantined"}, 0, "in", "quarantined"),
    ({"received_inside", "quarantined", "requeued", "injected"}, 0, "in", "delivered"),
    ({"received_inside", "deferred"}, 0, "in", "deferred"),
    ({"received_inside", "deferred", "injected"}, 0, "in", "delivered"),
    ({"refused"}, 0, "in", "refused"),
    # several outer agents (D74): the copy that arrived on a second stream is not delivered
    ({"received", "rendered", "published", "duplicate_dropped"}, 0, "in", "duplicate"),
    ({"accepted_outbound", "scanned"}, 0, "out", "in_progress"),
    ({"accepted_outbound", "scanned", "allowed", "sent_out"}, 0, "out", "sent"),
    ({"allowed", "sent_out", "received_outbound", "delivered"}, 0, "out", "delivered"),
    ({"allowed", "sent_out", "received_outbound", "delivery_deferred"}, 0, "out", "deferred"),
    ({"allowed", "sent_out", "delivery_deferred", "delivered"}, 0, "out", "delivered"),
    ({"allowed", "sent_out", "delivered", "bounced"}, 0, "out", "bounced"),
    ({"monitored", "sent_out", "delivered"}, 0, "out", "monitored"),
    ({"held", "approval_requested"}, 0, "out", "held"),
    ({"held", "approval_requested", "reminded", "escalated"}, 0, "out", "held"),
    ({"held", "approved", "sent_out", "delivered"}, 0, "out", "approved"),
    ({"held", "rejected"}, 0, "out", "rejected"),
    ({"rejected"}, 0, "out", "rejected"),  # no approver: rejected by the system at once
    ({"held", "expired"}, 0, "out", "expired"),
    ({"held", "approval_requested", "withdrawn"}, 0, "out", "withdrawn"),
    ({"scanned", "blocked", "sender_notified"}, 0, "out", "blocked"),
    ({"accepted_outbound", "quarantined"}, 0, "out", "quarantined"),
    ({"held", "approved", "sent_out", "bounced"}, 0, "out", "bounced"),
    # the receive filters (issue 17): decisions outrank the notice or delivery that follows
    (
        {"received", "inbound_blocked", "published", "received_inside", "injected"},
        0,
        "in",
        "blocked",
    ),
    (
        {"received", "inbound_held", "published", "received_inside", "hold_requested"},
        0,
        "in",
        "held",
    ),
    ({"received_inside", "hold_requested", "injected"}, 0, "in", "held"),
    (
        {"inbound_held", "hold_requested", "hold_decided", "inbound_released", "injected"},
        0,
        "in",
        "approved",
    ),
    ({"inbound_held", "hold_decided", "decision_sent", "inbound_dropped"}, 0, "in", "rejected"),
    ({"inbound_held", "hold_requested", "inbound_expired", "injected"}, 0, "in", "expired"),
    ({"rendered", "inbound_masked", "received_inside", "injected"}, 2, "in", "masked"),
    ({"rendered", "inbound_monitored", "inbound_masked", "injected"}, 0, "in", "masked"),
    ({"rendered", "inbound_monitored", "injected"}, 0, "in", "monitored"),
]


@pytest.mark.parametrize(("steps", "withheld", "direction", "outcome"), OUTCOME_CASES)
def test_outcome_table(steps: set[str], withheld: int, direction: str, outcome: str) -> None:
    assert outcome_of(direction, steps, withheld) == outcome  # type: ignore[arg-type]


def test_every_line_of_the_outcome_table_is_reached() -> None:
    reached = {(d, o) for _, _, d, o in OUTCOME_CASES}
    assert {(d, o) for d, _, o in OUTCOME_TABLE} <= reached


def test_an_inbound_mail_folds_both_agents_events() -> None:
    row = row_of(
        ev("received", 100, agent="outer", mail_from="Kim@Partner.example",
           rcpts=["U1@corp.example", "u2@corp.example"], bytes=52_000, client="203.0.113.5"),
        ev("rendered", 102, agent="outer", pages=2, bytes=40_000),
        ev("received_inside", 110, mail_from="kim@partner.example", rcpts=["u1@corp.example"],
           subject="견적 요청", client="203.0.113.5", bytes=9_999_999,
           withheld=[{"name": "setup.exe", "reason": "executable"}], withheld_count=1,
           attachments=["견적서.pdf"], attachment_count=2),
        ev("injected", 111, part=1),
        ev("injected", 112, part=2),
    )  # fmt: skip
    assert row.direction == "in"
    assert (row.first_ts, row.last_ts) == (100, 112)
    assert row.sender == "kim@partner.example"
    assert row.sender_domain == "partner.example"
    assert row.recipients == ("u1@corp.example", "u2@corp.example")
    assert row.recipient_domains == ("corp.example",)
    assert row.subject == "견적 요청"
    assert row.client == "203.0.113.5"
    assert row.size == 52_000  # the received mail's; not the notification's or the pages'
    assert row.attachments == ("setup.exe", "견적서.pdf")
    assert (row.attachment_count, row.withheld_count) == (2, 1)
    assert row.agents == {"inner", "outer"}
    assert row.outcome == "withheld"


def test_an_outbound_mail_folds_the_decision_and_the_delivery() -> None:
    row = row_of(
        ev("accepted_outbound", 10, mail_from="lee@corp.example", rcpts=["x@ext.example"],
           client="10.1.2.3"),
        ev("scanned", 11, subject="계약서", rule="rrn-hold", department="영업부",
           attachments=["계약서.hwp"], attachment_count=1, bytes=4096),
        ev("held", 11, rule="rrn-hold", request_id="r1"),
        ev("approved", 500, by="boss@corp.example", request_id="r1"),
        ev("sent_out", 501, bytes=5000),
        ev("received_outbound", 503, agent="outer", bytes=4096),
        ev("delivered", 504, agent="outer", rcpt=["x@ext.example"]),
    )  # fmt: skip
    assert (row.direction, row.outcome, row.rule, row.department) == (
        "out", "approved", "rrn-hold", "영업부")  # fmt: skip
    assert (row.size, row.attachment_count, row.attachments) == (4096, 1, ("계약서.hwp",))
    assert (row.first_ts, row.last_ts) == (10, 504)


def test_quarantine_reason_is_a_code_and_only_a_quarantine_or_refusal_gives_it() -> None:
    row = row_of(ev("received_inside", reason="whatever"), ev("quarantined", reason="bad_package"))
    assert row.reason == "bad_package"
    rejected = row_of(ev("rejected", reason="주민번호가 보입니다 800101-1234567"))
    assert rejected.reason == ""  # an approver's words are free text, not a reason code


def test_personal_data_is_masked_even_when_the_event_held_it_in_clear() -> None:
    """The inner agent masks before recording; an imported event is not trusted to."""
    row = row_of(ev("received", agent="outer", subject="주민번호 800101-1234567 확인",
                    attachments=["신청서_800101-1234567.hwp"]))  # fmt: skip
    kept = json.dumps(row._asdict(), default=list, ensure_ascii=False)
    assert "1234567" not in kept
    assert row.subject.startswith("주민번호 800101-")


def test_values_from_the_other_zone_are_one_bounded_line() -> None:
    row = row_of(
        ev("received", agent="outer", mail_from="a@b.example\r\nX-Evil: 1", client="1.2.3.4\x1b[2J",
           subject="x" * 5000, rcpts=[f"r{n}@c.example" for n in range(500)] + [7, None]),
    )  # fmt: skip
    assert "\n" not in row.sender
    assert "\x1b" not in row.client
    assert len(row.subject) == 300
    assert len(row.recipients) == 100


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["mail_from", "rcpts", "subject", "client", "rule",
                                        "department", "reason", "bytes", "attachments",
                                        "withheld", "attachment_count", "withheld_count", "x"]),
                       st.recursive(st.none() | st.booleans() | st.integers() | st.floats()
                                    | st.text(max_size=20),
                                    lambda inner: st.lists(inner, max_size=3)
                                    | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                                    max_leaves=10)),
       st.sampled_from(sorted(STEPS - NOT_ABOUT_A_MAIL)))  # fmt: skip
def test_any_details_fold_without_error(details: dict[str, Any], step: str) -> None:
    """Imported events are checked for shape, not for each detail's type: the fold takes what
    it understands and ignores the rest."""
    row = fold(None, AuditEvent(5.0, "outer", "m1", step, details))
    assert isinstance(row.sender, str)
    assert isinstance(row.attachment_count, int)
    assert row.size is None or isinstance(row.size, int)


MAIL_EVENTS = [
    ev("accepted_outbound", 10, mail_from="lee@corp.example", rcpts=["x@ext.example"]),
    ev("scanned", 11, attachments=["b.pdf", "a.pdf"], attachment_count=2, bytes=10),
    ev("held", 12, rule="r"),
    ev("approved", 50),
    ev("sent_out", 51),
    ev("received_outbound", 40, agent="outer", bytes=12, rcpt_count=2),
    ev("delivery_deferred", 41, agent="outer"),
    ev("bounced", 60, agent="outer", rcpt=["y@ext.example"]),
]


@settings(max_examples=100, deadline=None)
@given(st.permutations(MAIL_EVENTS))
def test_what_events_accumulate_does_not_depend_on_their_order(events: list[AuditEvent]) -> None:
    """The outer agent's events are imported after the inner agent's of the same mail."""
    row, expected = row_of(*events), row_of(*MAIL_EVENTS)
    same = ("first_ts", "last_ts", "steps", "agents", "recipients", "attachments",
            "attachment_count", "size", "outcome")  # fmt: skip
    assert [getattr(row, f) for f in same] == [getattr(expected, f) for f in same]
