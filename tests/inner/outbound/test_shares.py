"""Approved mail with several outer agents (issue 23.1, D75): each mail on exactly one
stream, the same stream again after a crash, and the share of an agent gone silent moved to a
live one once (never a finished one, never to nobody)."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import pytest

from agentkit.audit import AuditLog
from agentkit.auditimport import ImportedEvent
from agentkit.control import Decision, encode_control
from inner_agent.outbound.shares import (
    Reported,
    SharedPublisher,
    arrival_stream,
    finished_outside,
    rank,
    reported_outside,
    rest_bundle_id,
)
from mailsafe.payload import OutboundMail, decode_outbound, encode_outbound
from protocol import Kind
from protocol.atrest import AtRestKey, AtRestKeyring
from tests.agentkit.control_golden import POLICY
from tests.support.outbound import MemoryAudit


class FakeStream:
    def __init__(self) -> None:
        self.published: list[tuple[bytes, Kind]] = []
        self.ids: dict[bytes, int] = {}

    def publish(self, bundle: bytes, bundle_id: bytes, kind: Kind = Kind.DATA) -> int:
        self.published.append((bundle_id, kind))
        return self.ids.setdefault(bundle_id, len(self.ids) + 1)  # a repeat keeps its seq

    def heartbeat_if_due(self) -> None:
        pass

    def close(self) -> None:
        pass


class FakeLiveness:
    def __init__(self) -> None:
        self.ages: dict[str, float | None] = {"inbound": 1.0, "mx2": 1.0}

    def report_age_s(self, stream: str) -> float | None:
        return self.ages[stream]

    def fresh(self, stream: str) -> bool:
        age = self.ages[stream]
        return age is not None and age < 90


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _shares(tmp_path: Path, finished: set[str] | None = None, **kwargs: object):
    streams = {"inbound": FakeStream(), "mx2": FakeStream()}
    liveness, clock, audit = FakeLiveness(), Clock(), MemoryAudit()
    done = finished if finished is not None else set()
    reported = kwargs.pop(
        "reported", lambda m, _streams: Reported(unnamed=True) if m in done else Reported()
    )
    shares = SharedPublisher(
        streams, tmp_path / "shares.db", liveness, takeover_after_s=300,
        reported=reported, audit=audit, clock=clock, **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip
    return shares, streams, liveness, clock, audit


def _ids(n: int) -> list[bytes]:
    return [i.to_bytes(2, "big") * 8 for i in range(n)]


def test_each_mail_goes_to_one_stream_and_both_get_a_share(tmp_path: Path) -> None:
    shares, streams, *_ = _shares(tmp_path)
    for bundle_id in _ids(60):
        shares.publish(b"mail", bundle_id)
    carried = [len(s.published) for s in streams.values()]
    assert sum(carried) == 60
    assert min(carried) >= 15  # rendezvous hashing spreads them
    both = {b for b, _ in streams["inbound"].published} & {b for b, _ in streams["mx2"].published}
    assert both == set()


def test_a_repeat_after_a_crash_goes_to_the_same_stream(tmp_path: Path) -> None:
    shares, streams, liveness, *_ = _shares(tmp_path)
    bundle_id = _ids(1)[0]
    first = shares.publish(b"mail", bundle_id)
    chosen = next(name for name, s in streams.items() if s.published)
    liveness.ages = {"inbound": 1.0, "mx2": 1.0}
    reopened, *_ = _shares(tmp_path)  # the same shares.db after a restart
    reopened.publishers = streams
    assert reopened.publish(b"mail", bundle_id) == first
    assert [len(s.published) for s in streams.values()].count(0) == 1
    assert len(streams[chosen].published) == 2


def test_a_silent_agents_share_moves_to_the_live_one_once(tmp_path: Path) -> None:
    shares, streams, liveness, clock, audit = _shares(tmp_path)
    ids = _ids(20)
    for bundle_id in ids:
        shares.publish(b"mail " + bundle_id, bundle_id)
    at_mx2 = [b for b, _ in streams["mx2"].published]
    assert at_mx2
    liveness.ages["mx2"] = 200.0  # stale (no report for 200 s), not yet past the takeover time
    clock.now += 200
    assert shares.settle() == 0
    liveness.ages["mx2"] = 301.0
    clock.now += 101
    assert shares.settle() == len(at_mx2)
    moved = [b for b, _ in streams["inbound"].published[-len(at_mx2) :]]
    assert sorted(moved) == sorted(at_mx2)
    assert audit.steps().count("stream_takeover") == len(at_mx2)
    clock.now += 10
    assert shares.settle() == 0  # on a live stream now: stays
    assert {s.stream for s in shares.open_shares()} == {"inbound"}


def test_a_finished_mail_is_forgotten_not_moved(tmp_path: Path) -> None:
    finished: set[str] = set()
    shares, streams, liveness, clock, audit = _shares(tmp_path, finished)
    for bundle_id in _ids(20):
        shares.publish(b"mail", bundle_id)
    at_mx2 = [b for b, _ in streams["mx2"].published]
    finished.update(b.hex() for b in at_mx2)  # mx2 said so in its last report
    liveness.ages["mx2"] = None  # then went silent for good (reports gone)
    clock.now += 400
    assert shares.settle() == 0
    assert audit.steps().count("stream_takeover") == 0
    assert all(s.stream == "inbound" for s in shares.open_shares())


def test_with_nobody_alive_the_share_waits(tmp_path: Path) -> None:
    shares, streams, liveness, clock, _audit = _shares(tmp_path)
    for bundle_id in _ids(10):
        shares.publish(b"mail", bundle_id)
    liveness.ages = {"inbound": 1000.0, "mx2": 1000.0}
    clock.now += 1000
    assert shares.settle() == 0
    assert sum(len(s.published) for s in streams.values()) == 10


def test_a_new_mail_avoids_a_stale_stream(tmp_path: Path) -> None:
    shares, streams, liveness, *_ = _shares(tmp_path)
    liveness.ages["mx2"] = 120.0
    for bundle_id in _ids(20):
        shares.publish(b"mail", bundle_id)
    assert streams["mx2"].published == []


def test_the_policy_goes_to_every_stream_a_decision_to_its_mails(tmp_path: Path) -> None:
    arrivals = {"held-at-mx2": "mx2"}
    shares, streams, *_ = _shares(tmp_path, arrived_on=arrivals.get)
    shares.publish(encode_control(POLICY), b"p" * 16, Kind.CONTROL)
    assert all(s.published == [(b"p" * 16, Kind.CONTROL)] for s in streams.values())
    decision = Decision("held-at-mx2", "release", "lee@corp.example", 1_767_225_600_000, 3)
    shares.publish(encode_control(decision), b"d" * 16, Kind.CONTROL)
    assert streams["mx2"].published[-1] == (b"d" * 16, Kind.CONTROL)
    assert (b"d" * 16, Kind.CONTROL) not in streams["inbound"].published
    unknown = dataclasses.replace(decision, mail_id="held-before-the-log")
    shares.publish(encode_control(unknown), b"u" * 16, Kind.CONTROL)  # where from? everyone
    assert all(s.published[-1] == (b"u" * 16, Kind.CONTROL) for s in streams.values())
    assert shares.open_shares() == []


def test_the_kept_bundle_is_sealed_at_rest(tmp_path: Path) -> None:
    at_rest = AtRestKeyring([AtRestKey(os.urandom(32))])
    shares, streams, liveness, clock, _audit = _shares(tmp_path, at_rest=at_rest)
    secret = b"Subject: confidential offer\r\n\r\nbody"
    bundle_id = next(b for b in _ids(20) if rank(b, ["inbound", "mx2"])[0] == "mx2")
    shares.publish(secret, bundle_id)
    assert secret not in (tmp_path / "shares.db").read_bytes()
    liveness.ages["mx2"] = 400.0
    clock.now += 400
    assert shares.settle() == 1
    assert streams["inbound"].published == [(bundle_id, Kind.DATA)]


def test_finished_outside_reads_the_outer_agents_events(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.db", agent="inner")
    mail_id = "ab" * 16
    audit.record(mail_id, "sent_out", seq=1)
    assert not finished_outside(audit, mail_id)
    audit.import_events(
        "outer-mx2", [ImportedEvent(7, time.time(), mail_id, "delivery_deferred", {})]
    )
    assert not finished_outside(audit, mail_id)
    audit.import_events("outer-mx2", [ImportedEvent(8, time.time(), mail_id, "delivered", {})])
    assert finished_outside(audit, mail_id)
    assert not finished_outside(MemoryAudit(), mail_id)  # no query: never finished


@pytest.mark.parametrize("n", [1, 2, 3])
def test_rank_is_a_stable_order_of_the_streams(n: int) -> None:
    streams = ["inbound", "mx2", "mx3"][:n]
    bundle_id = b"x" * 16
    assert sorted(rank(bundle_id, streams)) == sorted(streams)
    assert rank(bundle_id, streams) == rank(bundle_id, list(reversed(streams)))


def test_arrival_stream_reads_the_received_inside_event(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.db", agent="inner")
    audit.record("at-pair", "received_inside", seq=1)
    audit.record("at-mx2", "received_inside", seq=1, stream="mx2")
    assert arrival_stream(audit, "at-pair") == "inbound"
    assert arrival_stream(audit, "at-mx2") == "mx2"
    assert arrival_stream(audit, "never-seen") is None


def _outer_says(audit: AuditLog, mail_id: str, step: str, rcpt: list[str]) -> None:
    source = len(list(audit.query())) + 100
    audit.import_events("outer-mx2", [ImportedEvent(source, time.time(), mail_id, step,
                                                    {"rcpt": rcpt})])  # fmt: skip


def test_a_partly_delivered_mail_waits_for_its_agent_then_only_its_rest_moves(
    tmp_path: Path,
) -> None:
    """D88: delivered to a, bounced for c, b still queued at mx2 when mx2 went silent for good.
    Before, the first final event ended the share: b was never delivered nor bounced."""
    log = AuditLog(tmp_path / "audit.db", agent="inner")
    bundle_id = next(b for b in _ids(20) if rank(b, ["inbound", "mx2"])[0] == "mx2")
    mail_id = bundle_id.hex()
    whole = encode_outbound(OutboundMail(mail_id, "kim@corp.example", ("a@x.example",
                            "b@y.example", "c@z.example"), b"Subject: hi\r\n\r\nbody\r\n",
                            "lee@corp.example", "2026-12-06T05:00:00+00:00"))  # fmt: skip
    shares, streams, liveness, clock, audit = _shares(
        tmp_path, reported=lambda m, s: reported_outside(log, m, s)
    )
    shares.publish(whole, bundle_id)
    _outer_says(log, mail_id, "delivered", ["a@x.example"])
    _outer_says(log, mail_id, "delivery_deferred", ["b@y.example"])
    _outer_says(log, mail_id, "bounced", ["c@z.example"])
    clock.now += 400
    assert shares.settle() == 0  # mx2 reports: its own queue retries b
    assert [s.stream for s in shares.open_shares()] == ["mx2"]
    liveness.ages["mx2"] = 400.0  # then silent past the takeover time
    clock.now += 10
    assert shares.settle() == 1
    rest_id = rest_bundle_id(bundle_id, ["b@y.example"])
    assert streams["inbound"].published == [(rest_id, Kind.DATA)]
    assert audit.steps().count("stream_takeover") == 1
    shares.publish(whole, bundle_id)  # the whole mail published again (a crash inside)
    assert streams["inbound"].published == [(rest_id, Kind.DATA)] * 2  # its rest again: a repeat
    clock.now += 10
    assert shares.settle() == 0  # on a live stream: its queue has b
    _outer_says(log, mail_id, "delivered", ["b@y.example"])
    clock.now += 10
    assert shares.settle() == 0
    assert shares.open_shares() == []  # every recipient served: finished


def test_the_rest_that_moves_is_the_mail_for_the_recipients_left(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.db", agent="inner")
    bundle_id = next(b for b in _ids(20) if rank(b, ["inbound", "mx2"])[0] == "mx2")
    mail = OutboundMail(bundle_id.hex(), "kim@corp.example", ("a@x.example", "b@y.example"),
                        b"original bytes", "lee@corp.example", "2026-12-06T05:00:00+00:00")  # fmt: skip
    shares, streams, liveness, clock, _audit = _shares(
        tmp_path, reported=lambda m, s: reported_outside(log, m, s)
    )
    published: list[bytes] = []
    real = streams["inbound"].publish

    def keep(bundle: bytes, bundle_id: bytes, kind: Kind = Kind.DATA) -> int:
        published.append(bundle)
        return real(bundle, bundle_id, kind)

    streams["inbound"].publish = keep  # type: ignore[method-assign]
    shares.publish(encode_outbound(mail), bundle_id)
    _outer_says(log, mail.mail_id, "delivered", ["a@x.example"])
    liveness.ages["mx2"] = None
    clock.now += 400
    assert shares.settle() == 1
    (rest,) = (decode_outbound(b) for b in published)
    assert rest == dataclasses.replace(mail, rcpt_to=("b@y.example",))


def test_reported_outside_names_the_recipients_served(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.db", agent="inner")
    mail_id = "cd" * 16
    assert reported_outside(audit, mail_id) == Reported()
    _outer_says(audit, mail_id, "delivered", ["a@x.example"])
    _outer_says(audit, mail_id, "bounced", ["c@z.example"])
    _outer_says(audit, mail_id, "delivery_deferred", ["b@y.example"])
    reported = reported_outside(audit, mail_id)
    assert reported.final == {"a@x.example", "c@z.example"}
    assert reported.left(["a@x.example", "b@y.example", "c@z.example"]) == ["b@y.example"]
    audit.import_events("outer-mx2", [ImportedEvent(1, time.time(), mail_id, "delivered", {})])
    assert reported_outside(audit, mail_id).left(["b@y.example"]) == []  # names none: all


# ------------------------------------------------------------ one DMZ host speaks for itself


def _in_mx2s_share(tmp_path: Path, log: AuditLog):
    bundle_id = next(b for b in _ids(20) if rank(b, ["inbound", "mx2"])[0] == "mx2")
    mail = OutboundMail(bundle_id.hex(), "kim@corp.example", ("a@x.example",), b"body",
                        "lee@corp.example", "2026-12-06T05:00:00+00:00")  # fmt: skip
    parts = _shares(tmp_path, reported=lambda m, s: reported_outside(log, m, s))
    parts[0].publish(encode_outbound(mail), bundle_id)
    return mail.mail_id, parts


def test_an_agent_that_never_held_a_mail_cannot_end_its_share(tmp_path: Path) -> None:
    """D98: whoever holds the pair's DMZ host reports mx2's mail delivered (its own stream,
    its own key). The old settle took any outer agent's word: the share was forgotten and the
    mail, still queued at a dead mx2, would never move."""
    log = AuditLog(tmp_path / "audit.db", agent="inner")
    mail_id, (shares, _streams, liveness, clock, audit) = _in_mx2s_share(tmp_path, log)
    log.import_events("outer", [ImportedEvent(5, time.time(), mail_id, "delivered",
                                              {"rcpt": ["a@x.example"]})])  # fmt: skip
    clock.now += 10
    assert shares.settle() == 0
    assert [s.stream for s in shares.open_shares()] == ["mx2"]  # not ended by a stranger
    clock.now += 10
    shares.settle()  # said once, not at every pass
    refused = [f for _m, step, f in audit.events if step == "outer_claim_refused"]
    assert refused == [{"claim": "delivered", "mail": mail_id, "agent": "outer",
                        "stream": "mx2", "reason": "not_its_share"}]  # fmt: skip
    liveness.ages["mx2"] = 400.0
    clock.now += 400
    assert shares.settle() == 1  # mx2 silent: the mail moves, delivered by nobody yet


def test_the_agent_holding_the_share_and_the_one_it_moved_from_both_count(
    tmp_path: Path,
) -> None:
    log = AuditLog(tmp_path / "audit.db", agent="inner")
    mail_id, (shares, _streams, liveness, clock, _audit) = _in_mx2s_share(tmp_path, log)
    liveness.ages["mx2"] = None
    clock.now += 400
    assert shares.settle() == 1
    (share,) = shares.open_shares()
    assert (share.stream, share.earlier) == ("inbound", ("mx2",))
    assert reported_outside(log, mail_id, share.speakers) == Reported()
    _outer_says(log, mail_id, "delivered", ["a@x.example"])  # mx2 reports late: it held it
    clock.now += 10
    shares.settle()
    assert shares.open_shares() == []


def test_a_share_stored_before_the_history_was_kept_takes_any_agents_report(
    tmp_path: Path,
) -> None:
    """A row of an earlier release has no ``earlier``: which agents held it is not known, so
    any outer agent's report counts for it, as before (no share left waiting for ever)."""
    log = AuditLog(tmp_path / "audit.db", agent="inner")
    mail_id, (shares, *_rest) = _in_mx2s_share(tmp_path, log)
    shares._db.execute("UPDATE shares SET earlier = NULL")
    (share,) = shares.open_shares()
    assert share.speakers is None
    log.import_events("outer", [ImportedEvent(5, time.time(), mail_id, "delivered",
                                              {"rcpt": ["a@x.example"]})])  # fmt: skip
    assert reported_outside(log, mail_id, share.speakers).final == {"a@x.example"}


def test_an_earlier_releases_shares_file_is_migrated_with_its_history_unknown(
    tmp_path: Path,
) -> None:
    import sqlite3

    old = sqlite3.connect(tmp_path / "shares.db")
    old.execute("CREATE TABLE shares (bundle_id BLOB PRIMARY KEY, mail_id TEXT NOT NULL, "
                "stream TEXT NOT NULL, assigned_ms INTEGER NOT NULL, bundle BLOB NOT NULL) "
                "WITHOUT ROWID")  # fmt: skip
    old.execute("INSERT INTO shares VALUES (?, 'ab', 'mx2', 1, x'00')", (b"\x01" * 16,))
    old.commit()
    old.close()
    shares, *_ = _shares(tmp_path)
    (share,) = shares.open_shares()
    assert (share.stream, share.earlier, share.speakers) == ("mx2", None, None)
    assert list(tmp_path.glob("shares.db.v0-*.bak"))  # the copy D71 makes first
