"""BundleHandler: the checks a bundle from a possibly compromised outer agent must pass."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from inner_agent.inject import InjectionQueue
from inner_agent.link import BundleHandler, ImagePolicy
from inner_agent.notify import NotifyOptions
from maildiode.audit import AuditLog
from mailsafe.package import PageInfo, RenderedMail, encode_package
from protocol import Kind, ReceivedBundle
from tests.inner.helpers import png, rendered


def _bundle(data: bytes, n: int = 1, kind: Kind = Kind.DATA) -> ReceivedBundle:
    return ReceivedBundle("inbound", n, bytes([n]) * 16, kind, data, 1_800_000_000_000, 1)


@pytest.fixture
def handler(tmp_path: Path) -> BundleHandler:
    return BundleHandler(
        InjectionQueue(tmp_path / "q.db"), AuditLog(tmp_path / "audit.db"),
        NotifyOptions(our_domains=("corp.example",)), ImagePolicy(max_pixels=1_000_000),
        tmp_path / "quarantine",
    )  # fmt: skip


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
