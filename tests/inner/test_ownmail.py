"""inner_agent.ownmail: every kind of mail the bridge writes is recognisable as its own, and
the check reads only the mail's own header block."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import SMTP

import pytest

from inner_agent.images import shrink_image
from inner_agent.notify import NotifyOptions, build_notifications
from inner_agent.outbound.notice_mail import RequestMail, approval_request, sender_notice
from inner_agent.outbound.previews import Preview, PreviewPage
from inner_agent.ownmail import MARKER_HEADER, is_own_sender, own_mail_finding
from tests.inner.helpers import checked, png

OWN = ("maildiode@corp.example", "maildiode-approval@corp.example")
PLAIN = b"From: kim@corp.example\r\nTo: partner@example.com\r\nSubject: hi\r\n\r\nbody\r\n"


def _kinds() -> dict[str, bytes]:
    request = RequestMail(
        request_id="r1", mail_id="m1", approver="lee@corp.example", sender="kim@corp.example",
        recipients=("partner@example.com",), subject="quote", explanation="personal data",
        findings=(("rrn", "800101-1******", "body"),), preview=Preview((PreviewPage("image/png", png(), "body", 1),)), link="http://x/r?t=1",
    )  # fmt: skip
    (notification,) = build_notifications(
        checked(), NotifyOptions(from_address=OWN[0]), shrink=shrink_image, now=1.8e9
    )
    notice = sender_notice(
        "held", sender="kim@corp.example", subject="quote", recipients=["p@example.com"],
        mail_id="m1", from_address=OWN[1], now=1.8e9,
    )  # fmt: skip
    return {
        "inbound": notification,
        "approval": approval_request(request, from_address=OWN[1], now=1.8e9),
        "approval-notice": notice,
    }


@pytest.mark.parametrize("kind", ["inbound", "approval", "approval-notice"])
def test_each_kind_of_our_mail_carries_the_marker_and_is_recognised(kind: str) -> None:
    raw = _kinds()[kind]
    message = message_from_bytes(raw, policy=SMTP)
    assert message[MARKER_HEADER] == kind.partition("-")[0]
    finding = own_mail_finding(raw, ())  # the marker alone is enough
    assert finding == f"the {MARKER_HEADER} header marks a maildiode notification"


def test_an_author_of_ours_is_recognised_without_the_marker() -> None:
    for header in (b"From: Maildiode <MAILDIODE@corp.example>", b"Sender: maildiode@corp.example"):
        raw = header + b"\r\n" + PLAIN
        assert own_mail_finding(raw, OWN) is not None
    assert own_mail_finding(PLAIN, OWN) is None


def test_earlier_notifications_without_the_marker_are_recognised() -> None:
    raw = b"X-Maildiode-Mail-Id: 0123\r\n" + PLAIN
    assert (
        own_mail_finding(raw, ()) == "the X-Maildiode-Mail-Id header marks a maildiode notification"
    )


def test_only_the_top_level_header_block_counts() -> None:
    body_mention = PLAIN + b"X-Maildiode-Notification: inbound\r\nFrom: maildiode@corp.example\r\n"
    assert own_mail_finding(body_mention, OWN) is None
    bare_lf = PLAIN.replace(b"\r\n", b"\n") + b"\nX-Maildiode-Notification: inbound\n"
    assert own_mail_finding(bare_lf, OWN) is None
    assert own_mail_finding(b"X-Maildiode-Notification: inbound\n" + bare_lf, OWN) is not None


def test_own_envelope_senders() -> None:
    assert is_own_sender("MAILDIODE@corp.example", OWN)
    assert is_own_sender(" maildiode-approval@corp.example", OWN)
    assert not is_own_sender("", OWN)  # a null sender is nobody's
    assert not is_own_sender("kim@corp.example", OWN)
