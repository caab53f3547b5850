"""The outer agent's signed audit checkpoints carried inward (issue 21.1): announced as events
of its own log, they travel in its status report like every event; the inner agent keeps each
one whose signature the outer agent's key verifies, so the intranet holds a copy the DMZ cannot
rewrite. An inner agent that does not know the step imports the report's other events."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import msgpack
import pytest

from agentkit import audit as audit_module
from agentkit.audit import AuditLog
from agentkit.auditchain import CHECKPOINT_STEP
from agentkit.auditsigning import AuditCheckpointer
from agentkit.control import StatusReport, encode_control, reportable_event
from inner_agent.reports import OUTER_AGENT, ControlHandler, ReportStore
from protocol import Kind, ReceivedBundle
from protocol.keys import SigningKey, VerifyKey
from tests.agentkit.control_golden import QUIET_REPORT, REPORT

NOW = 1767225700.0


def outer_log(path: Path, key: SigningKey, mails: int = 4) -> AuditLog:
    """The outer agent's log after ``mails`` deliveries and one checkpoint, announced."""
    log = AuditLog(path, agent=OUTER_AGENT)
    for n in range(mails):
        log.record(f"m{n}", "delivered", rcpt="partner@ext.example")
    AuditCheckpointer(log, key, 3600, announce=True).sign_now()
    return log


def report_of(log: AuditLog) -> StatusReport:
    """The status report the outer agent sends: its events made reportable as it does."""
    events = tuple(reportable_event(event_id, e.ts, e.mail_id, e.step, e.details)
                   for event_id, e in log.events_after(0, 200))  # fmt: skip
    return dataclasses.replace(QUIET_REPORT, events=events)


def carry(
    report: StatusReport,
    inner: AuditLog,
    keys: list[VerifyKey],
    folder: Path,
    stream: str = "inbound",
) -> None:
    """The inner agent's handling of the report's CONTROL bundle (on ``stream``: the pair's
    outer agent's, or a further one's)."""
    handler = ControlHandler(ReportStore(folder / "reports.db"), inner,
                             stream_keys={stream: keys}, clock=lambda: NOW)  # fmt: skip
    handler(ReceivedBundle(stream, 1, b"\x01" * 16, Kind.CONTROL, encode_control(report),
                           1_767_225_600_000, 1))  # fmt: skip


def test_the_outer_checkpoints_are_kept_inside_when_its_key_verifies_them(tmp_path: Path) -> None:
    key = SigningKey.generate()
    outer = outer_log(tmp_path / "outer.db", key)
    inner = AuditLog(tmp_path / "inner.db", agent="inner")
    carry(report_of(outer), inner, [key.verify_key], tmp_path)
    assert inner.checkpoints(OUTER_AGENT) == outer.checkpoints()
    assert inner.checkpoints() == []  # not mistaken for the inner agent's own
    assert [e.step for e in inner.query() if e.agent == OUTER_AGENT][-1] == CHECKPOINT_STEP
    assert outer.verify([key.verify_key], checkpoints=inner.checkpoints(OUTER_AGENT)).ok


def test_a_checkpoint_the_outer_key_does_not_verify_is_not_kept(tmp_path: Path) -> None:
    key, stranger = SigningKey.generate(), SigningKey.generate()
    outer = outer_log(tmp_path / "outer.db", key)
    report = report_of(outer)
    inner = AuditLog(tmp_path / "inner.db", agent="inner")
    carry(report, inner, [stranger.verify_key], tmp_path)  # signed by a key we do not know
    *events, announced = report.events
    forged = dict(announced.details, link="00" * 32)  # another link, the same signature
    changed = dataclasses.replace(report, events=(*events,
                                  dataclasses.replace(announced, details=forged)))  # fmt: skip
    carry(changed, inner, [key.verify_key], tmp_path / "again")
    assert inner.checkpoints(OUTER_AGENT) == []
    assert len([e for e in inner.query() if e.agent == OUTER_AGENT]) == len(report.events)


def test_an_inner_agent_that_does_not_know_the_step_imports_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report codec is unchanged (no new field): an inner agent from before refuses the
    one ``audit_checkpoint`` event as an unknown step and takes the report and the others."""
    monkeypatch.setattr(audit_module, "STEPS", audit_module.STEPS - {CHECKPOINT_STEP})
    key = SigningKey.generate()
    report = report_of(outer_log(tmp_path / "outer.db", key))
    assert set(msgpack.unpackb(encode_control(report))) == set(
        msgpack.unpackb(encode_control(REPORT))
    )
    inner = AuditLog(tmp_path / "inner.db", agent="inner")
    carry(report, inner, [], tmp_path)
    imported = [e.step for e in inner.query() if e.agent == OUTER_AGENT]
    assert imported == ["delivered"] * 4
    store = ReportStore(tmp_path / "reports.db")
    latest = store.latest("inbound")
    assert latest is not None
    assert latest.events == len(report.events)


# ------------------------------------------------------------ one DMZ host speaks for itself


def test_a_checkpoint_signed_with_another_streams_key_is_refused_and_audited(
    tmp_path: Path,
) -> None:
    """D98: whoever holds mx2's DMZ host signs a checkpoint with mx2's key; carried on the
    pair's stream it must not become the pair's outer agent's copy (the old handler took any
    outer agent's key for any stream and kept it under ``outer``)."""
    pair_key, mx2_key = SigningKey.generate(), SigningKey.generate()
    forged = report_of(outer_log(tmp_path / "mx2-outer.db", mx2_key))
    inner = AuditLog(tmp_path / "inner.db", agent="inner")
    handler = ControlHandler(
        ReportStore(tmp_path / "reports.db"), inner,
        stream_keys={"inbound": [pair_key.verify_key], "mx2": [mx2_key.verify_key]},
        clock=lambda: NOW,
    )  # fmt: skip
    handler(ReceivedBundle("inbound", 1, b"\x01" * 16, Kind.CONTROL, encode_control(forged),
                           1_767_225_600_000, 1))  # fmt: skip
    assert inner.checkpoints(OUTER_AGENT) == []
    assert inner.checkpoints("outer-mx2") == []  # not kept under the signer's name either
    (refused,) = inner.query(step="outer_claim_refused")
    assert refused.agent == "inner"
    assert refused.details["reason"] == "other_streams_key"
    assert refused.details["stream"] == "inbound"
    assert refused.details["key"] == mx2_key.key_id.hex()
    handler(ReceivedBundle("mx2", 1, b"\x02" * 16, Kind.CONTROL, encode_control(forged),
                           1_767_225_600_000, 1))  # fmt: skip
    assert len(inner.checkpoints("outer-mx2")) == 1  # on its own stream it is mx2's own


def test_a_checkpoint_no_outer_agent_signed_is_refused_as_an_unknown_key(tmp_path: Path) -> None:
    key, stranger = SigningKey.generate(), SigningKey.generate()
    report = report_of(outer_log(tmp_path / "outer.db", stranger))
    inner = AuditLog(tmp_path / "inner.db", agent="inner")
    carry(report, inner, [key.verify_key], tmp_path)
    (refused,) = inner.query(step="outer_claim_refused")
    assert refused.details["reason"] == "unknown_key"


def test_the_agent_gives_each_stream_its_own_outer_keys(tmp_path: Path) -> None:
    """What inner_agent.main hands the report handler: the pair's ``peer_keys`` for
    ``inbound``, each further outer agent's for its own stream, never one flat list."""
    from types import SimpleNamespace

    from inner_agent.main import _outer_keys

    pair, mx2 = SigningKey.generate(), SigningKey.generate()
    pair.verify_key.save(tmp_path / "pair.pub")
    mx2.verify_key.save(tmp_path / "mx2.pub")
    further = SimpleNamespace(id="mx2", peer_keys=(tmp_path / "mx2.pub",))
    config = SimpleNamespace(keys=SimpleNamespace(peer_keys=(tmp_path / "pair.pub",)),
                             streams=SimpleNamespace(outer=(further,)))  # fmt: skip
    keys = _outer_keys(config)  # type: ignore[arg-type]
    assert {stream: [k.key_id for k in found] for stream, found in keys.items()} == {
        "inbound": [pair.key_id], "mx2": [mx2.key_id]}  # fmt: skip
