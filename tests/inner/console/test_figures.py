"""The inner agent's state as the dashboard reads it: from the agent's own databases, opened
read-only (a file the agent has not made yet reads as nothing and is not created)."""

from __future__ import annotations

import sqlite3

from inner_agent.console.figures import (
    MAX_COUNTED_FILES,
    approvals,
    count_files,
    inbound_link,
    inner_queues,
    outbound_mail,
    outbound_picture,
)
from inner_agent.outbound.approval import Request, State
from inner_agent.outbound.state import OutboundState
from protocol import Keyring, Receiver, SigningKey

NOW = 1_800_000_000.0


def receiver_state(tmp_path):
    """A receiver's database as the link reader leaves it: seen, two gaps, refused files."""
    receiver = Receiver(tmp_path, "inbound", Keyring([SigningKey.generate().verify_key]))
    receiver.count("quarantined:bad_signature", 3)
    receiver.count("quarantine_dropped", 1)
    receiver.close()
    db = sqlite3.connect(tmp_path / "receiver-inbound.db")
    with db:
        for key, value in (
            ("last_seen_ms", int(NOW * 1000) - 2000),
            ("highest_seq", 41),
            ("sender_epoch", 7),
            ("last_heartbeat_ms", int(NOW * 1000) - 9000),
        ):
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
        db.executemany(
            "INSERT INTO missing (seq, since_ms) VALUES (?, ?)",
            [
                (12, int(NOW * 1000) - 60_000),
                (13, int(NOW * 1000) - 60_000),
                (40, int(NOW * 1000) - 1000),
            ],
        )  # the last one: not waited for yet
    db.close()  # fmt: skip


def test_the_inbound_links_end_as_the_receiver_left_it(tmp_path):
    receiver_state(tmp_path)
    (tmp_path / "quarantine").mkdir()
    (tmp_path / "quarantine" / "bundle-ab.reason.json").write_text("{}")
    (tmp_path / "quarantine" / "bundle-ab.bin").write_text("x")
    found = inbound_link(tmp_path, NOW, gap_wait_s=30, silence_alarm_s=300)
    assert found is not None
    assert found["highest_seq"] == 41
    assert found["epoch"] == 7
    assert found["gaps"] == [12, 13]
    assert found["gap_count"] == 2
    assert found["quarantined"] == 2  # three refused, one of them deleted over the budget
    assert found["dropped"] == 1
    assert found["refused_bundles"] == 1
    assert found["silent"] is False
    later = inbound_link(tmp_path, NOW + 400, gap_wait_s=30, silence_alarm_s=300)
    assert later is not None
    assert later["silent"] is True


def test_nothing_received_yet_reads_as_never_and_creates_no_file(tmp_path):
    found = inbound_link(tmp_path, NOW, gap_wait_s=30, silence_alarm_s=300)
    assert found is not None
    assert found["last_seen_ms"] == 0
    assert found["silent"] is True
    assert not (tmp_path / "receiver-inbound.db").exists()
    assert inbound_link(None, NOW, gap_wait_s=30, silence_alarm_s=300) is None


def test_outbound_waiting_approvals_findings_and_pictures(tmp_path):
    path = tmp_path / "state.db"
    state = OutboundState(path, clock=lambda: NOW - 100)
    state.add_mail("m1", "kim@corp.example", ("a@example.com",), NOW - 100)
    state.add_mail("m2", "kim@corp.example", ("a@example.com",), NOW - 50)
    state.set_mail("m2", "received", findings=[{"type": "rrn", "masked": "800101-1******",
                                                "where": "attachment:명단.xlsx"}])  # fmt: skip
    state.add_request(Request("r1", "m2", State.HELD, ("lee@corp.example",), NOW - 3600),
                      b"\x89PNG fake")  # fmt: skip
    state.close()
    queues = inner_queues(None, path, NOW)
    assert queues["outbound"] == {"received": 1, "sending": 0, "oldest_waiting_s": 100.0}
    assert queues["notices"] == {"waiting": 0, "max_attempts": 0}
    assert queues["injection"] is None
    assert approvals(path, NOW) == {"pending": 1, "escalated": 0, "oldest_s": 3600.0}
    mail = outbound_mail(path, "m2")
    assert mail is not None
    assert mail["findings"] == [{"type": "rrn", "masked": "800101-1******",
                                 "where": "attachment:명단.xlsx"}]  # fmt: skip
    assert outbound_picture(path, "m2") == b"\x89PNG fake"
    assert outbound_picture(path, "m1") is None
    assert outbound_mail(path, "nope") is None
    assert approvals(None, NOW) is None


def test_a_flooded_quarantine_is_counted_up_to_a_cap(tmp_path):
    for n in range(MAX_COUNTED_FILES + 5):
        (tmp_path / f"bundle-{n}.reason.json").touch()
    assert count_files(tmp_path, "bundle-", ".reason.json") == MAX_COUNTED_FILES + 1
    assert count_files(tmp_path / "missing") == 0
