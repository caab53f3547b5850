"""BundleHandler: the checks a bundle from a possibly compromised outer agent must pass."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from inner_agent.bundle_handler import BundleHandler
from mailsafe.payload import PageInfo, RenderedMail, encode_package
from protocol import Kind, ReceivedBundle
from tests.inner.helpers import make_handler, png, rendered


def _bundle(data: bytes, n: int = 1, kind: Kind = Kind.DATA) -> ReceivedBundle:
    return ReceivedBundle("inbound", n, bytes([n]) * 16, kind, data, 1_800_000_000_000, 1)


@pytest.fixture
def handler(tmp_path: Path) -> BundleHandler:
    return make_handler(tmp_path)


def _quarantined(handler: BundleHandler) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in handler.quarantine_dir.glob("*.reason.json")]


def test_good_bundle_is_queued_once(handler: BundleHandler) -> None:
    bundle = _bundle(encode_package(rendered(pages=2)))
    handler(bundle)
    handler(bundle)  # called again after a crash before mark_done
    assert handler.queue.counts() == {"queued": 1}
    events = handler.audit.query(step="received_inside")
    assert len(events) == 1
    assert events[0].details["pages"] == 2


def test_received_inside_carries_what_an_auditor_searches_by(handler: BundleHandler) -> None:
    mail = rendered(subject="견적 요청\x1b[31m 빨강", from_="김철수 <kim@partner.example>",
                    rcpt=("user@corp.example", "boss@elsewhere.example"))  # fmt: skip
    handler(_bundle(encode_package(mail)))
    (event,) = handler.audit.query(step="received_inside")
    details = event.details
    assert details["subject"] == "견적 요청 [31m 빨강"  # the ESC of a terminal escape is gone
    assert details["from"] == "김철수 <kim@partner.example>"
    assert details["mail_from"] == "kim@partner.example"
    assert details["message_id"] == "<orig@partner.example>"
    assert details["client"] == "192.0.2.1"
    assert details["rcpts"] == ["user@corp.example"]  # as delivered: ours only
    assert details["withheld"] == [{"name": "setup.exe", "type": "application/x-msdownload",
                                    "size": 1_200_000, "reason": "executable"}]  # fmt: skip
    assert details["withheld_count"] == 1
    assert [e.mail_id for e in handler.audit.query(search="SETUP.EXE")] == [event.mail_id]
    assert handler.audit.query(search="견적") == [event]


def test_personal_data_in_subject_and_attachment_names_is_masked_in_the_audit_log(
    handler: BundleHandler,
) -> None:
    from mailsafe.payload import Withheld

    mail = rendered(subject="주민번호 800101-1234567 확인 요청")
    mail = _with(mail, withheld=(Withheld("신청서_800101-1234567.hwp", "application/x-hwp", 10,
                                          "ab" * 32, "not_rendered_type"),))  # fmt: skip
    handler(_bundle(encode_package(mail)))
    (event,) = handler.audit.query(step="received_inside")
    assert "1234567" not in json.dumps(event.details, ensure_ascii=False)
    assert event.details["subject"].startswith("주민번호 800101-")
    assert handler.audit.query(search="확인 요청") == [event]


def _with(mail: RenderedMail, **changes: object) -> RenderedMail:
    return dataclasses.replace(mail, manifest=dataclasses.replace(mail.manifest, **changes))


@pytest.mark.parametrize(
    ("package", "code"),
    [
        (b"\x93not a package", "bad_package"),
        (encode_package(_with(rendered(), mail_id="../../etc/passwd")), "bad_mail_id"),
        (encode_package(rendered(rcpt=("boss@elsewhere.example",))), "no_recipients"),
        (encode_package(dataclasses.replace(rendered(), images=(png()[:70],))), "image_decode"),
        (
            encode_package(
                _with(
                    dataclasses.replace(rendered(), images=(png(50, 50),)),
                    pages=(PageInfo("image/png", 5, 5, "body", 0),),
                )
            ),
            None,
        ),
    ],
)
def test_bad_bundles_are_quarantined_with_a_reason(
    handler: BundleHandler, package: bytes, code: str | None
) -> None:
    handler(_bundle(package))
    if code is None:  # the declared size is not trusted: the real 50x50 image is used
        assert handler.queue.counts() == {"queued": 1}
        return
    reasons = _quarantined(handler)
    assert [r["reason"] for r in reasons] == [code]
    assert handler.queue.counts() == {}
    assert handler.queue.has_bundle(bytes([1]) * 16)  # a replay is not processed again
    assert handler.audit.query(step="quarantined")[0].details["reason"] == code


def test_only_data_bundles_are_accepted(handler: BundleHandler) -> None:
    handler(_bundle(encode_package(rendered()), kind=Kind.CONTROL))
    assert [r["reason"] for r in _quarantined(handler)] == ["unexpected_kind"]


def test_recipients_outside_our_domains_are_dropped(handler: BundleHandler) -> None:
    handler(_bundle(encode_package(rendered(rcpt=("user@corp.example", "x@elsewhere.example")))))
    message = handler.queue.next_due(set())
    assert message is not None
    assert message.rcpts == ("user@corp.example",)


ROUTING_RECIPIENTS = (
    "victim%gmail.com@corp.example",  # the percent hack
    "gmail.com!victim@corp.example",  # a bang path
    '"victim@gmail.com"@corp.example',  # a quoted @
    "victim@gmail.com@corp.example",  # an unquoted second @
)


def test_recipients_with_sender_specified_routing_are_never_injected(
    handler: BundleHandler,
) -> None:
    """Issue 15.1, defence in depth: a compromised outer agent passes such a recipient on; the
    internal server would route it back out to the internet. Only the plain one is notified."""
    rcpt = (*ROUTING_RECIPIENTS, "user@corp.example")
    handler(_bundle(encode_package(rendered(rcpt=rcpt))))
    message = handler.queue.next_due(set())
    assert message is not None
    assert message.rcpts == ("user@corp.example",)
    handler(_bundle(encode_package(rendered(rcpt=ROUTING_RECIPIENTS)), n=2))
    assert [r["reason"] for r in _quarantined(handler)] == ["no_recipients"]
