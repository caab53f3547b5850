"""Signed checkpoints of the audit chain (issue 21.1): a log whose links were all computed
again from some event onwards holds as a chain, and only a checkpoint catches it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from agentkit.audit import AuditLog
from agentkit.auditchain import GENESIS, ChainRow, link_of
from protocol.keys import SigningKey


def _filled(path: Path, key: SigningKey) -> AuditLog:
    log = AuditLog(path, agent="outer")
    for n in range(5):
        log.record(f"m{n}", "received", n=n)
    assert log.checkpoint(key) is not None
    for n in range(5, 8):
        log.record(f"m{n}", "received", n=n)
    assert log.checkpoint(key) is not None
    return log


def _rewrite_from(path: Path, first: int, new_step: str) -> None:
    """What someone with the file and our code does: change event ``first`` and compute every
    link from there on again, the head included. The chain alone cannot tell."""
    db = sqlite3.connect(path)
    db.execute("UPDATE events SET step = ? WHERE id = ?", (new_step, first))
    rows = db.execute(
        "SELECT id, ts, agent, mail_id, step, details, link FROM events ORDER BY id"
    ).fetchall()
    link = GENESIS
    for row in rows:
        link = link_of(link, ChainRow(*row[:6], None))
        db.execute("UPDATE events SET link = ? WHERE id = ?", (link, row[0]))
    db.execute("UPDATE chain SET link = ? WHERE name = 'head'", (link,))
    db.commit()
    db.close()


def test_checkpoints_agree_with_an_untouched_log(tmp_path: Path) -> None:
    key = SigningKey.generate()
    log = _filled(tmp_path / "audit.db", key)
    report = log.verify([key.verify_key])
    assert report.ok, report.describe()
    assert report.checkpoints == 2
    assert "2 signed checkpoint(s) agree" in report.describe()
    assert log.checkpoint(key) is None  # nothing new since the last


def test_a_rewritten_chain_holds_alone_but_not_against_its_checkpoints(tmp_path: Path) -> None:
    key = SigningKey.generate()
    _filled(tmp_path / "audit.db", key).close()
    _rewrite_from(tmp_path / "audit.db", 3, "deleted_evidence")
    log = AuditLog(tmp_path / "audit.db", agent="outer")
    assert log.verify().ok  # the chain alone is fooled
    report = log.verify([key.verify_key])
    assert not report.ok
    assert report.event_id == 5  # the first checkpoint after the change
    assert "rewritten" in report.describe()


def test_events_cut_off_after_a_checkpoint_are_named(tmp_path: Path) -> None:
    key = SigningKey.generate()
    _filled(tmp_path / "audit.db", key).close()
    db = sqlite3.connect(tmp_path / "audit.db")
    (link,) = db.execute("SELECT link FROM events WHERE id = 6").fetchone()
    db.execute("DELETE FROM events WHERE id > 6")
    db.execute("UPDATE chain SET id = 6, link = ? WHERE name = 'head'", (link,))
    db.commit()
    db.close()
    log = AuditLog(tmp_path / "audit.db", agent="outer")
    assert log.verify().ok
    report = log.verify([key.verify_key])
    assert report.event_id == 7
    assert "removed" in report.describe()


def test_a_changed_or_foreign_checkpoint_is_refused(tmp_path: Path) -> None:
    key = SigningKey.generate()
    _filled(tmp_path / "audit.db", key).close()
    db = sqlite3.connect(tmp_path / "audit.db")
    db.execute("UPDATE checkpoints SET ts = ts + 1 WHERE event_id = 5")
    db.commit()
    db.close()
    log = AuditLog(tmp_path / "audit.db", agent="outer")
    assert "does not verify" in log.verify([key.verify_key]).describe()
    assert (
        "key this agent does not have" in log.verify([SigningKey.generate().verify_key]).describe()
    )


def test_the_outer_agents_checkpoints_kept_inside_check_its_log(tmp_path: Path) -> None:
    """The copy carried inward: even with the outer agent's key (the DMZ host is taken) its
    own checkpoints can be signed again, but not the ones the inner agent already holds."""
    key = SigningKey.generate()
    outer = _filled(tmp_path / "outer.db", key)
    kept = outer.checkpoints()
    outer.close()
    inner = AuditLog(tmp_path / "inner.db", agent="inner")
    for point in kept:
        inner.keep_checkpoint(point)
    held = inner.checkpoints("outer")
    assert held == kept
    _rewrite_from(tmp_path / "outer.db", 2, "nothing")
    taken = AuditLog(tmp_path / "outer.db", agent="outer")
    taken.checkpoint(key)  # the attacker signs the rewritten head with the stolen key
    assert not taken.verify([key.verify_key], checkpoints=held).ok


def test_an_announced_checkpoint_is_an_event_and_alone_is_no_news(tmp_path: Path) -> None:
    """The outer agent's checkpoints are also events (its status report carries them
    inward); the announcing event alone does not call for another checkpoint."""
    from agentkit.auditchain import CHECKPOINT_STEP, checkpoint_from_details

    key = SigningKey.generate()
    log = AuditLog(tmp_path / "audit.db", agent="outer")
    log.record("m1", "received")
    point = log.checkpoint(key, announce=True)
    assert point is not None
    (announced,) = log.query(step=CHECKPOINT_STEP)
    assert checkpoint_from_details("outer", announced.details) == point
    assert log.checkpoint(key, announce=True) is None  # only its own announcement since
    log.record("m2", "received")
    later = log.checkpoint(key, announce=True)
    assert later is not None
    assert later.event_id == 3  # m1, its announcement, m2
    report = log.verify([key.verify_key])
    assert (report.ok, report.checkpoints) == (True, 2)


def test_details_that_hold_no_checkpoint_give_none() -> None:
    from agentkit.auditchain import Checkpoint, checkpoint_details, checkpoint_from_details

    point = Checkpoint("outer", 7, bytes(range(32)), 1767225600.5, b"\x01" * 8, b"\x02" * 64)
    good = checkpoint_details(point)
    assert checkpoint_from_details("outer", good) == point
    for key, bad in [("event", 0), ("event", True), ("event", "7"), ("signed_at", "now"),
                     ("signed_at", float("nan")), ("link", "00" * 31), ("link", "zz" * 32),
                     ("link", "0" * 63), ("key", ""), ("signature", "00" * 65), ("key", None)]:  # fmt: skip
        assert checkpoint_from_details("outer", {**good, key: bad}) is None, (key, bad)
    assert checkpoint_from_details("outer", {}) is None
