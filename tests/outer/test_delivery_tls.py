"""Issue 21.4: approved outbound mail crosses the internet only over verified TLS, by default.

The hop is built from the trial's own outer.toml (`hop_from_config`), so what is tested is the
default a new site gets. A relay without STARTTLS: the mail waits, `maildiode status` says why.
A relay with a certificate the agent trusts: delivered, the audit event says `tls=verified`. A
named exception: delivered in clear, the audit event and the log say so.
"""

from __future__ import annotations

import ssl
import time
from pathlib import Path

import pytest
import trustme

from maildiode.commands.check import load_agent_config
from maildiode.trial.stack import set_key
from outer_agent.delivery import DeliveryQueue, DeliveryService, RetryPolicy, hop_from_config
from tests.outer.sinks import FaultySink, start_sink
from tests.outer.test_delivery import ORIGINAL, Bundle, Mail
from tests.outer.test_pipeline import FakeAudit
from tests.support.command import maildiode


@pytest.fixture
def trial(tmp_path: Path) -> Path:
    root = tmp_path / "trial"
    assert maildiode("init", str(root)).returncode == 0
    return root


def _configure(root: Path, **delivery: str) -> None:
    path = root / "outer.toml"
    text = path.read_text(encoding="utf-8")
    for key, value in delivery.items():
        text = set_key(text, "delivery", key, value)
    path.write_text(text, encoding="utf-8")


def _deliver_once(root: Path) -> tuple[int, FakeAudit]:
    config = load_agent_config(root / "outer.toml", "outer")
    audit = FakeAudit()
    svc = DeliveryService(
        DeliveryQueue(config.spool.dir / "outbound", clock=time.time),
        hop_from_config(config.delivery), audit,
        decode=lambda data: data, inject_inbound=lambda env, msg: None,
        policy=RetryPolicy(attempts_per_pass=1, retry_initial_s=60, quick_wait_s=0.01),
        hostname="outer.test", clock=time.time,
    )  # fmt: skip
    svc.accept_bundle(
        Bundle(b"T" * 16, 3, Mail("m-tls", "emp@corp.example", ("partner@ext.example",), ORIGINAL))
    )
    return svc.run_due(), audit


def test_a_relay_without_tls_is_refused_by_default_and_status_says_why(trial: Path) -> None:
    assert load_agent_config(trial / "outer.toml", "outer").delivery.starttls == "required"
    sink = FaultySink()
    controller = start_sink(sink)  # speaks no TLS
    try:
        _configure(trial, smarthost=f'"127.0.0.1:{controller.port}"')
        delivered, audit = _deliver_once(trial)
    finally:
        controller.stop()
    assert delivered == 0
    assert sink.received == []  # not one byte of the mail in clear
    (deferred,) = audit.steps("delivery_deferred")
    assert "does not offer STARTTLS" in deferred[2]["error"]
    status = maildiode("status", "-c", str(trial / "outer.toml"))
    assert "does not offer STARTTLS" in status.stdout
    assert "delivery.tls_exceptions" in status.stdout


def test_a_relay_with_a_verified_certificate_gets_the_mail(trial: Path, tmp_path: Path) -> None:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    ca.cert_pem.write_to_path(str(tmp_path / "relay-ca.pem"))
    sink = FaultySink()
    controller = start_sink(sink, tls_context=server, require_starttls=True)
    try:
        _configure(trial, smarthost=f'"127.0.0.1:{controller.port}"',
                   tls_ca_file=f'"{tmp_path / "relay-ca.pem"}"')  # fmt: skip
        delivered, audit = _deliver_once(trial)
    finally:
        controller.stop()
    assert delivered == 1
    assert sink.received[0].data == ORIGINAL
    (event,) = audit.steps("delivered")
    assert event[2]["tls"] == "verified"


def test_a_certificate_the_agent_does_not_trust_is_refused(trial: Path) -> None:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(server)  # a CA nobody configured
    sink = FaultySink()
    controller = start_sink(sink, tls_context=server, require_starttls=True)
    try:
        _configure(trial, smarthost=f'"127.0.0.1:{controller.port}"')
        delivered, audit = _deliver_once(trial)
    finally:
        controller.stop()
    assert delivered == 0
    assert sink.received == []
    assert "CERTIFICATE_VERIFY_FAILED" in audit.steps("delivery_deferred")[0][2]["error"]


def test_a_named_exception_goes_in_clear_and_is_audited(
    trial: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sink = FaultySink()
    controller = start_sink(sink)
    try:
        _configure(trial, smarthost=f'"127.0.0.1:{controller.port}"',
                   tls_exceptions='["127.0.0.1"]')  # fmt: skip
        delivered, audit = _deliver_once(trial)
    finally:
        controller.stop()
    assert delivered == 1
    (event,) = audit.steps("delivered")
    assert event[2]["tls"] == "none"
    assert event[2]["in_clear_to"] == [f"127.0.0.1:{controller.port}"]
    assert any("without TLS" in r.getMessage() for r in caplog.records)
