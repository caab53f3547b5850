"""Issue 22.7: approved outbound mail waiting on a dead relay is logged on each retry with the
reason, and ``maildiode status`` shows it with its age and reason and exits 1 past
``delivery.alarm_after_s``."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from maildiode.commands.check import load_agent_config
from maildiode.trial.stack import free_port
from outer_agent.delivery import DeliveryQueue, DeliveryService, RetryPolicy, SmtpHop
from tests.outer.test_delivery import ORIGINAL, Bundle, Clock, Mail
from tests.outer.test_pipeline import FakeAudit
from tests.support.command import maildiode

WAITED_S = 1200.0  # past the default alarm_after_s (900)


def _stuck_on_a_dead_relay(root: Path, caplog: pytest.LogCaptureFixture) -> str:
    """One approved mail tried twice against a relay nobody listens on, in the trial's own
    delivery queue, the first try WAITED_S ago. Returns the relay's address."""
    dead = ("127.0.0.1", free_port())
    config = load_agent_config(root / "outer.toml", "outer")
    clock = Clock()
    clock.now = time.time() - WAITED_S
    svc = DeliveryService(
        DeliveryQueue(config.spool.dir / "outbound", clock=clock),
        SmtpHop(smarthost=dead, helo="outer.test", timeout_s=5), FakeAudit(),
        decode=lambda data: data, inject_inbound=lambda env, msg: None,
        policy=RetryPolicy(attempts_per_pass=1, retry_initial_s=60, quick_wait_s=0.01),
        hostname="outer.test", clock=clock,
    )  # fmt: skip
    svc.accept_bundle(Bundle(b"B" * 16, 7, Mail("m-stuck", "emp@corp.example",
                                                ("partner@ext.example",), ORIGINAL)))  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="outer_agent.delivery"):
        assert svc.run_due() == 0
        clock.now += 120
        assert svc.run_due() == 0
    return f"{dead[0]}:{dead[1]}"


def test_mail_stuck_on_a_dead_relay_is_logged_and_shown_with_age_and_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "trial"
    assert maildiode("init", str(root)).returncode == 0
    relay = _stuck_on_a_dead_relay(root, caplog)
    retries = [r.getMessage() for r in caplog.records if "m-stuck" in r.getMessage()]
    assert len(retries) == 2  # each retry said, with its reason
    assert all(relay in line and "waits for delivery" in line for line in retries)

    text = maildiode("status", "-c", str(root / "outer.toml"))
    assert text.returncode == 1, text.stdout + text.stderr  # past delivery.alarm_after_s
    assert "1 waiting for delivery (1 tried before)" in text.stdout
    assert "(m-stuck), tried 2 time(s)  ALARM: longer than delivery.alarm_after_s" in text.stdout
    assert f"last error:      451 {relay}: " in text.stdout
    as_json = json.loads(maildiode("status", "-c", str(root / "outer.toml"), "--json").stdout)
    oldest = as_json["queues"]["delivery"]["oldest"]
    assert oldest["mail_id"] == "m-stuck"
    assert WAITED_S - 5 <= oldest["waited_s"] <= WAITED_S + 600
    assert relay in oldest["last_error"]
    assert as_json["queues"]["delivery"]["alarm"] is True


def test_status_stays_calm_below_the_threshold(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "trial"
    assert maildiode("init", str(root)).returncode == 0
    _stuck_on_a_dead_relay(root, caplog)
    config = root / "outer.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("alarm_after_s = 900", "alarm_after_s = 86400"), "utf-8")
    calm = maildiode("status", "-c", str(config))
    assert calm.returncode == 0, calm.stdout
    assert "(m-stuck), tried 2 time(s)\n" in calm.stdout
