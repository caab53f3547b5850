"""The inner agent's side of the status report: CONTROL bundles decoded strictly, reports
stored, the outer agent's audit events imported once, refused ones quarantined without
holding up the mail behind them."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import msgpack
import pytest

from agentkit.control import ReportedEvent, encode_control
from inner_agent import reports as reports_module
from inner_agent.bundle_handler import BundleHandler
from inner_agent.reports import ControlHandler, ReportStore, latest_report
from inner_agent.requeue import RequeueError, release
from mailsafe.payload import encode_package
from protocol import Kind, ReceivedBundle
from tests.agentkit.control_golden import POLICY, QUIET_REPORT, REPORT
from tests.inner.helpers import make_handler, rendered

NOW = 1767225700.0


def _bundle(data: bytes, n: int, kind: Kind = Kind.CONTROL) -> ReceivedBundle:
    return ReceivedBundle("inbound", n, bytes([n]) * 16, kind, data, 1_767_225_600_000, 1)


@pytest.fixture
def handler(tmp_path: Path) -> BundleHandler:
    handler = make_handler(tmp_path)
    store = ReportStore(tmp_path / "reports.db")
    handler.control = ControlHandler(store, handler.audit, clock=lambda: NOW)
    return handler


def _store(handler: BundleHandler) -> ReportStore:
    assert isinstance(handler.control, ControlHandler)
    return handler.control.store


def _quarantined(handler: BundleHandler) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in handler.quarantine_dir.glob("*.reason.json")]


def test_a_report_is_stored_and_its_events_imported_once(handler: BundleHandler) -> None:
    bundle = _bundle(encode_control(REPORT), 1)
    handler(bundle)
    handler(bundle)  # called again after a crash before mark_done
    latest = _store(handler).latest("inbound")
    assert latest is not None
    assert (latest.made_ms, latest.received_ms, latest.interval_s, latest.events, latest.seq) == (
        REPORT.made_ms, int(NOW * 1000), 30, 2, 1,
    )  # fmt: skip
    assert latest.figures["host"]["hostname"] == "mx-dmz-1"
    assert latest.figures["delivery"]["retrying"] == 1
    assert "events" not in latest.figures
    assert _store(handler).count("inbound") == 1
    imported = handler.audit.query(mail_id=REPORT.events[0].mail_id)
    assert [(e.agent, e.step, e.ts) for e in imported] == [
        ("outer", "received", 1767225590.25), ("outer", "quarantined", 1767225591.5),
    ]  # fmt: skip
    assert imported[1].details["detail"] == "렌더링 시간 초과 (60 s)"


def test_a_resent_report_adds_only_the_events_not_seen_before(handler: BundleHandler) -> None:
    handler(_bundle(encode_control(REPORT), 1))
    later = ReportedEvent(5003, 1767225599.0, "01JGZ8Q2M3N4P5Q6R7S8T9V0WX", "published", {})
    again = dataclasses.replace(REPORT, events=(*REPORT.events[1:], later))  # 5002 again + 5003
    handler(_bundle(encode_control(again), 2))
    steps = [e.step for e in handler.audit.query(mail_id=later.mail_id)]
    assert steps == ["received", "quarantined", "published"]


def test_the_latest_report_is_the_one_made_last(handler: BundleHandler, tmp_path: Path) -> None:
    newer = dataclasses.replace(QUIET_REPORT, made_ms=QUIET_REPORT.made_ms + 30_000)
    handler(_bundle(encode_control(newer), 2))
    handler(_bundle(encode_control(QUIET_REPORT), 1))  # an older one arriving late (a resend)
    latest = latest_report(tmp_path / "reports.db", "inbound")  # as `maildiode status` reads it
    assert latest is not None
    assert latest.made_ms == newer.made_ms
    assert latest_report(tmp_path / "reports.db", "elsewhere") is None
    assert latest_report(tmp_path / "none.db", "inbound") is None


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xc1", "control_not_msgpack"),
        (encode_control(POLICY), "control_wrong_direction"),
        (msgpack.packb({"v": 1, "type": "status-report", "body": "<html>mail</html>"}),
         "control_bad_field"),
        (msgpack.packb({"v": 2, "type": "status-report"}), "control_bad_version"),
        (b"\x80" * 400_000, "control_too_large"),
    ],
)  # fmt: skip
def test_a_refused_control_payload_is_quarantined_and_mail_behind_it_goes_on(
    handler: BundleHandler, payload: bytes, reason: str
) -> None:
    handler(_bundle(payload, 1))
    [refusal] = _quarantined(handler)
    assert refusal["reason"] == reason
    assert refusal["bundle_id"] == "01" * 16
    assert (handler.quarantine_dir / f"bundle-{'01' * 16}.bin").read_bytes() == payload
    [event] = handler.audit.query(step="quarantined")
    assert event.details["reason"] == reason
    assert _store(handler).latest("inbound") is None
    handler(_bundle(payload, 1))  # a replay is known, not quarantined twice
    assert len(_quarantined(handler)) == 1
    handler(_bundle(encode_package(rendered()), 2, Kind.DATA))  # the mail behind it
    assert handler.queue.counts() == {"queued": 1}


def test_a_quarantined_control_record_cannot_be_released_as_mail(
    handler: BundleHandler,
) -> None:
    handler(_bundle(b"\xc1", 1))
    [reason_file] = handler.quarantine_dir.glob("*.reason.json")
    with pytest.raises(RequeueError, match="control_not_msgpack"):
        release(reason_file, handler)


def test_history_is_bounded_per_stream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reports_module, "REPORT_HISTORY", 5)
    monkeypatch.setattr(reports_module, "PRUNE_EVERY", 10)
    store = ReportStore(tmp_path / "reports.db")
    for n in range(1, 31):
        report = dataclasses.replace(QUIET_REPORT, made_ms=QUIET_REPORT.made_ms + n)
        assert store.add("inbound", n.to_bytes(16, "big"), n, report, n)
    assert store.count("inbound") == 5  # pruned at the 30th
    latest = store.latest("inbound")
    assert latest is not None
    assert latest.seq == 30
