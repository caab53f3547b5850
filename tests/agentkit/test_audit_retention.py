"""Retention of the audit log (issue 21.2): with the clock moved forward, each kind of event is
deleted after its own setting and never before its legal floor; the chain and its signed
checkpoints still verify; the prune is itself an audit event."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from pydantic import ValidationError

from agentkit.audit import AuditLog, ImportedEvent
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


def test_own_checkpoints_before_the_base_go_with_the_events_and_verify_still_holds(
    aged: tuple[AuditLog, Clock, SigningKey],
) -> None:
    """Before: every checkpoint stayed forever (about 150 bytes an hour), also those naming
    events long pruned, which verify only skips."""
    log, clock, key = aged
    before = log.checkpoints()
    clock.now = START + 4 * 365 * DAY_S
    assert log.prune(Retention(365, 730, 1095), clock.now) > 0
    (pruned,) = [e for e in log.query() if e.step == "audit_pruned"]
    base = pruned.details["through_event"]
    kept = log.checkpoints()
    assert [p.event_id for p in kept] == [p.event_id for p in before if p.event_id >= base]
    assert kept[0].event_id == base  # verify compares the base's link with it
    assert pruned.details["checkpoints"] == len(before) - len(kept) > 0
    report = log.verify([key.verify_key])
    assert report.ok, report.describe()
    assert report.checkpoints == len(kept)


def carried_history(
    paths: tuple[Path, Path],
    clock: Clock,
    keys: tuple[SigningKey, SigningKey],
    outer_days: range,
    inner_days: range,
) -> tuple[AuditLog, AuditLog]:
    """An outer agent's log (``paths[0]``) whose events and announced checkpoints are
    imported into an inner agent's log (``paths[1]``) as its status reports carry them, each
    log signing its own."""
    outer_key, inner_key = keys
    outer = AuditLog(paths[0], agent="outer", clock=clock)
    inner = AuditLog(paths[1], agent="inner", clock=clock)
    upkeep, carried = AuditCheckpointer(outer, outer_key, 3600, announce=True), 0
    for day in sorted(set(outer_days) | set(inner_days)):
        clock.now = START + day * DAY_S
        if day in outer_days:
            outer.record(f"m{day}", "delivered", rcpt="partner@ext.example")
            upkeep.sign_now()
            new = outer.events_after(carried, 100)
            inner.import_events(
                "outer",
                [ImportedEvent(source, e.ts, e.mail_id, e.step, e.details) for source, e in new],
            )
            carried = new[-1][0]
            for point in outer.checkpoints():  # verified by the report handler first
                inner.keep_checkpoint(point)
        inner.record(f"m{day}", "injected", rcpt="kim@corp.example")
        inner.checkpoint(inner_key)
    return outer, inner


def test_carried_checkpoints_go_with_the_inner_copy_of_their_agent_s_events(
    tmp_path: Path,
) -> None:
    """Before: the outer agent's checkpoints kept inside stayed forever. Now those naming
    events older than the oldest of its events the inner log still keeps go with them; what
    the outer agent says it pruned changes nothing (the DMZ cannot make the intranet destroy
    its copies); the outer log still verifies against what is kept, after both prunes."""
    clock, keys = Clock(), (SigningKey.generate(), SigningKey.generate())
    days = range(0, 4 * 365, 30)
    paths = (tmp_path / "outer.db", tmp_path / "inner.db")
    outer, inner = carried_history(paths, clock, keys, days, days)
    claim = {"events": 10**6, "through_event": 10**9, "checkpoints": 10**6}
    inner.import_events("outer", [ImportedEvent(10**6, clock.now, "-", "audit_pruned", claim)])
    before = inner.checkpoints("outer")
    clock.now = START + 4 * 365 * DAY_S
    assert inner.prune(Retention(365, 730, 1095)) > 0
    with sqlite3.connect(tmp_path / "inner.db") as db:
        (oldest,) = db.execute("SELECT MIN(source_id) FROM imported WHERE agent = 'outer'"
                               ).fetchone()  # fmt: skip
    kept = inner.checkpoints("outer")
    assert 0 < len(kept) < len(before)
    assert kept == [p for p in before if p.event_id >= oldest]
    assert inner.verify([keys[1].verify_key]).ok
    assert outer.verify([keys[0].verify_key], checkpoints=kept).ok
    assert outer.prune(Retention(365, 730, 1095)) > 0
    report = outer.verify([keys[0].verify_key], checkpoints=inner.checkpoints("outer"))
    assert report.ok, report.describe()


def test_a_quiet_agent_s_newest_carried_checkpoint_stays(tmp_path: Path) -> None:
    """An outer agent heard from once, years ago: all its events are pruned inside, its last
    checkpoint is not (the one copy of its chain's signed link the intranet has)."""
    clock, keys = Clock(), (SigningKey.generate(), SigningKey.generate())
    paths = (tmp_path / "outer.db", tmp_path / "inner.db")
    _, inner = carried_history(paths, clock, keys, range(0, 60, 30), range(0, 4 * 365, 30))
    newest = inner.checkpoints("outer")[-1]
    clock.now = START + 4 * 365 * DAY_S
    assert inner.prune(Retention(365, 730, 1095)) > 0
    assert not [e for e in inner.query() if e.agent == "outer"]
    assert inner.checkpoints("outer") == [newest]
