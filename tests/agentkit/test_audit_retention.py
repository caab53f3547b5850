"""Retention of the audit log (issue 21.2): with the clock moved forward, each kind of event is
deleted after its own setting and never before its legal floor; the chain and its signed
checkpoints still verify; the prune is itself an audit event."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from agentkit.audit import AuditLog
from agentkit.auditsigning import AuditCheckpointer
from agentkit.retention import DAY_S, Retention
from agentkit.settings import AuditSection
from protocol.keys import SigningKey

START = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def _day(log: AuditLog, clock: Clock, key: SigningKey, day: int) -> None:
    """One day's events of each kind, then the hourly checkpoint."""
    clock.now = START + day * DAY_S
    log.record(f"m{day}", "delivered", rcpt="partner@ext.example")
    log.record("-", "access", account="kim@bank.example", address="10.0.0.1", action="signin")
    log.record("-", "access", account="admin@bank.example", address="10.0.0.1",
               action="role_changed")  # fmt: skip
    log.checkpoint(key)


def _kinds(log: AuditLog) -> dict[str, list[float]]:
    kinds: dict[str, list[float]] = {"mail": [], "access": [], "rights": []}
    for event in log.query():
        if event.step == "delivered":
            kinds["mail"].append(event.ts)
        elif event.details.get("action") == "signin":
            kinds["access"].append(event.ts)
        elif event.details.get("action") == "role_changed":
            kinds["rights"].append(event.ts)
    return kinds


@pytest.fixture
def aged(tmp_path: Path) -> tuple[AuditLog, Clock, SigningKey]:
    """Four years of events, one day apart each quarter (sparse, so the test is quick)."""
    clock, key = Clock(), SigningKey.generate()
    log = AuditLog(tmp_path / "audit.db", agent="inner", clock=clock)
    for day in range(0, 4 * 365, 30):
        _day(log, clock, key, day)
    return log, clock, key


def test_nothing_goes_before_its_retention(aged: tuple[AuditLog, Clock, SigningKey]) -> None:
    log, clock, _ = aged
    clock.now = START + 364 * DAY_S  # everything younger than every floor
    before = log.last_id()
    assert log.prune(Retention(365, 730, 1095), clock.now) == 0
    assert log.last_id() == before


def test_each_kind_is_pruned_to_its_setting_and_the_chain_still_verifies(
    aged: tuple[AuditLog, Clock, SigningKey],
) -> None:
    log, clock, key = aged
    clock.now = START + 4 * 365 * DAY_S
    deleted = log.prune(Retention(365, 730, 1095), clock.now)
    assert deleted > 0
    kinds = _kinds(log)
    # the oldest kept of each kind is within its retention (of what the prune could cut:
    # whole checkpoint intervals, and nothing before an event another retention still keeps)
    oldest_rights = min(kinds["rights"])
    assert oldest_rights >= clock.now - 1095 * DAY_S - 30 * DAY_S
    assert all(ts >= clock.now - 1095 * DAY_S - 30 * DAY_S for ts in kinds["mail"])
    # no kind lost an event younger than its floor
    assert min(kinds["access"]) <= clock.now - 730 * DAY_S
    report = log.verify([key.verify_key])
    assert report.ok, report.describe()
    (pruned,) = [e for e in log.query() if e.step == "audit_pruned"]
    assert pruned.details["events"] == deleted
    assert pruned.details["rights_days"] == 1095


def test_a_prune_is_by_whole_checkpoint_intervals(tmp_path: Path) -> None:
    """Without a checkpoint there is no boundary to keep: nothing is deleted."""
    clock = Clock()
    log = AuditLog(tmp_path / "audit.db", agent="outer", clock=clock)
    for day in range(0, 800, 50):
        clock.now = START + day * DAY_S
        log.record(f"m{day}", "delivered")
    clock.now = START + 2000 * DAY_S
    assert log.prune(Retention(365, 730, 1095), clock.now) == 0
    assert log.verify().ok


def test_the_upkeep_pass_prunes_daily_and_signs_first(
    aged: tuple[AuditLog, Clock, SigningKey],
) -> None:
    log, clock, key = aged
    clock.now = START + 4 * 365 * DAY_S
    upkeep = AuditCheckpointer(log, key, 3600, retention=Retention(365, 730, 1095),
                               prune_every_s=DAY_S, clock=clock)  # fmt: skip
    upkeep._one_pass()
    assert any(e.step == "audit_pruned" for e in log.query())
    assert log.verify([key.verify_key]).ok


@pytest.mark.parametrize(
    ("key", "days"),
    [("retention_days", 364), ("access_retention_days", 729), ("rights_retention_days", 1094)],
)
def test_configuration_cannot_go_below_a_legal_floor(key: str, days: int) -> None:
    with pytest.raises(ValidationError, match=key):
        AuditSection.model_validate({key: days})
    assert AuditSection.model_validate({key: days + 1}).retention()
