"""The pipeline with in-memory fakes for the renderer and the link."""

from __future__ import annotations

import threading
import time

import pytest

from outer_agent.authres import AuthVerdict
from outer_agent.pipeline import MAX_CRASH_ATTEMPTS, PackageOutcome, Pipeline
from outer_agent.spool import Envelope, Spool, SpoolRecord, new_bundle_id


class FakePackager:
    def __init__(self, fail_on: bytes = b"\x00never") -> None:
        self.fail_on = fail_on
        self.calls: list[tuple[bytes, str]] = []

    def package(self, raw, envelope, auth):
        self.calls.append((raw, "package"))
        if self.fail_on in raw:
            raise RuntimeError("renderer bug")
        if b"CRASH" in raw:
            return PackageOutcome(b"ND:" + raw, "not_displayable", "render_crash", 0)
        return PackageOutcome(b"PKG:" + raw + b"|" + auth.summary.encode(), "rendered", None, 1)

    def not_displayable(self, raw, envelope, auth, reason):
        self.calls.append((raw, reason))
        return PackageOutcome(b"ND:" + raw, "not_displayable", reason, 0)


class FakeSender:
    """Idempotent per bundle id, like protocol.Sender."""

    def __init__(self) -> None:
        self.seq_of: dict[bytes, int] = {}
        self.published: list[tuple[int, bytes, bytes]] = []
        self.heartbeats = 0
        self.fail_next = 0

    def publish(self, bundle, bundle_id):
        if self.fail_next:
            self.fail_next -= 1
            raise OSError("link folder missing")
        seq = self.seq_of.setdefault(bundle_id, len(self.seq_of) + 1)
        self.published.append((seq, bundle_id, bundle))
        return seq

    def publish_many(self, bundles):
        return [self.publish(bundle, bundle_id) for bundle, bundle_id in bundles]

    def heartbeat_if_due(self):
        self.heartbeats += 1


class FakeAudit:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict]] = []
        self.lock = threading.Lock()

    def record(self, mail_id, step, **fields):
        with self.lock:
            self.events.append((mail_id, step, fields))

    def record_many(self, events):
        for mail_id, step, fields in events:
            self.record(mail_id, step, **fields)

    def steps(self, step):
        return [e for e in self.events if e[1] == step]


def put(spool: Spool, body: bytes) -> Envelope:
    bundle_id = new_bundle_id()
    env = Envelope(
        bundle_id.hex(),
        bundle_id,
        "a@ext.example",
        ("u@corp.example",),
        time.time(),
        "127.0.0.1:1",
        "h",
        False,
    )
    spool.write_received(env, body)
    return env


def wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    pytest.fail("condition not reached")


def run_pipeline(spool, packager, sender, audit, **kw):
    pipeline = Pipeline(spool, packager, sender, audit, workers=2, **kw)
    pipeline.start()
    return pipeline


def test_mails_flow_to_published_and_leave_the_spool(tmp_path):
    spool, packager, sender, audit = Spool(tmp_path), FakePackager(), FakeSender(), FakeAudit()
    envs = [put(spool, b"mail %d" % i) for i in range(20)]
    pipeline = run_pipeline(
        spool,
        packager,
        sender,
        audit,
        authenticate=lambda raw, env: AuthVerdict.make("pass", "pass", "pass", "t"),
    )
    try:
        wait_for(lambda: len(audit.steps("published")) == 20)
    finally:
        pipeline.stop()
    assert {b for _, b, _ in sender.published} == {e.bundle_id for e in envs}
    assert all(p.endswith(b"spf=pass dkim=pass dmarc=pass (t)") for _, _, p in sender.published)
    assert spool.counts() == {
        "incoming": 0,
        "received": 0,
        "rendering": 0,
        "rendered": 0,
        "quarantine": 0,
    }
    published = audit.steps("published")[0][2]
    assert set(published) >= {"bundle_id", "seq", "latency_ms"}
    assert len(audit.steps("rendered")) == 20


def test_new_mail_is_picked_up_when_notified(tmp_path):
    spool, sender, audit = Spool(tmp_path), FakeSender(), FakeAudit()
    pipeline = run_pipeline(spool, FakePackager(), sender, audit)
    try:
        env = put(spool, b"late")
        pipeline.notify_received(env)
        wait_for(lambda: len(sender.published) == 1)
    finally:
        pipeline.stop()


def test_render_failure_becomes_a_not_displayable_package(tmp_path):
    spool, sender, audit = Spool(tmp_path), FakeSender(), FakeAudit()
    put(spool, b"boom: \x00never")
    pipeline = run_pipeline(spool, FakePackager(fail_on=b"\x00never"), sender, audit)
    try:
        wait_for(lambda: len(sender.published) == 1)
    finally:
        pipeline.stop()
    assert sender.published[0][2].startswith(b"ND:")
    assert audit.steps("rendered")[0][2]["reason"] == "render_error"


def test_quarantine_policy_keeps_unrenderable_mail(tmp_path):
    spool, sender, audit = Spool(tmp_path), FakeSender(), FakeAudit()
    put(spool, b"CRASH me")
    put(spool, b"fine")
    pipeline = run_pipeline(spool, FakePackager(), sender, audit, on_failure="quarantine")
    try:
        wait_for(lambda: len(sender.published) == 1 and len(audit.steps("quarantined")) == 1)
    finally:
        pipeline.stop()
    assert spool.counts()["quarantine"] == 1
    assert audit.steps("quarantined")[0][2]["reason"] == "render_crash"


def test_a_mail_that_keeps_crashing_the_agent_is_given_up(tmp_path):
    spool, packager, sender, audit = Spool(tmp_path), FakePackager(), FakeSender(), FakeAudit()
    env = put(spool, b"poison")
    for _ in range(MAX_CRASH_ATTEMPTS):  # each start finds it half-rendered
        [name] = spool.pending()
        spool.claim(name)
        Spool(tmp_path).recover()
    pipeline = run_pipeline(spool, packager, sender, audit)
    try:
        wait_for(lambda: len(sender.published) == 1)
    finally:
        pipeline.stop()
    assert packager.calls == [(b"poison", "agent_crash")]
    assert sender.published[0][1] == env.bundle_id


def test_publish_after_crash_reuses_the_bundle_id(tmp_path):
    spool, sender, audit = Spool(tmp_path), FakeSender(), FakeAudit()
    env = put(spool, b"once")
    # crashed after publish, before the claimed original was removed: rendered and published
    # again at the next start, under the same id (the Sender keeps seq 1)
    claimed = spool.claim(f"{env.mail_id}.0")
    assert claimed is not None
    sender.publish(b"PKG:once|", env.bundle_id)
    Spool(tmp_path).recover()
    pipeline = run_pipeline(spool, FakePackager(), sender, audit)
    try:
        wait_for(lambda: len(sender.published) == 2)
    finally:
        pipeline.stop()
    assert [(s, b) for s, b, _ in sender.published] == [(1, env.bundle_id)] * 2
    assert sum(spool.counts().values()) == 0


def test_a_package_stored_by_an_earlier_version_is_published_first(tmp_path):
    spool, sender, audit = Spool(tmp_path), FakeSender(), FakeAudit()
    old, new = put(spool, b"old"), put(spool, b"new")
    claimed = spool.claim(f"{old.mail_id}.0")
    assert claimed is not None
    record = SpoolRecord({"envelope": old.to_json(), "kind": "package"}, b"STORED")
    (spool.folder("rendered") / old.mail_id).write_bytes(record.encode())
    Spool(tmp_path).recover()  # drops the claimed copy: its package is stored
    pipeline = run_pipeline(spool, FakePackager(), sender, audit)
    try:
        wait_for(lambda: len(sender.published) == 2)
    finally:
        pipeline.stop()
    assert [(b, p[:7]) for _, b, p in sender.published] == [
        (old.bundle_id, b"STORED"), (new.bundle_id, b"PKG:new")
    ]  # fmt: skip
    assert sum(spool.counts().values()) == 0


def test_a_stuck_link_holds_few_packages_and_stop_gives_the_mails_back(tmp_path, monkeypatch):
    """While the link fails, rendering stops after a handful of packages (the rest wait in
    received/); a stop then returns every claimed mail to received/ as not attempted."""
    monkeypatch.setattr("outer_agent.pipeline.PUBLISH_RETRY_S", 0.05)
    monkeypatch.setattr("outer_agent.pipeline.IDLE_TICK_S", 0.02)
    spool, sender, audit, packager = Spool(tmp_path), FakeSender(), FakeAudit(), FakePackager()
    sender.fail_next = 10**9
    envs = [put(spool, b"mail %d" % i) for i in range(30)]
    pipeline = run_pipeline(spool, packager, sender, audit)
    try:
        # 4 render threads, each with one package in hand, 4 queued, 1 with the publisher
        wait_for(lambda: len(packager.calls) == 9)
        time.sleep(0.3)
        assert len(packager.calls) == 9
        assert spool.counts()["received"] == 21
    finally:
        pipeline.stop()
    assert sender.published == []
    assert spool.pending() == sorted(f"{e.mail_id}.0" for e in envs)


def test_a_failing_link_keeps_the_package_until_it_works(tmp_path, monkeypatch):
    monkeypatch.setattr("outer_agent.pipeline.PUBLISH_RETRY_S", 0.05)
    spool, sender, audit = Spool(tmp_path), FakeSender(), FakeAudit()
    sender.fail_next = 3
    put(spool, b"x")
    pipeline = run_pipeline(spool, FakePackager(), sender, audit)
    try:
        wait_for(lambda: len(sender.published) == 1)
    finally:
        pipeline.stop()
    assert sum(spool.counts().values()) == 0


def test_stop_with_a_failing_link_and_old_packages_does_not_hang(tmp_path, monkeypatch):
    """Packages an earlier version stored, a link that fails and a full publish queue: stop()
    still returns, the stored packages stay, and every claimed mail is back in received/."""
    monkeypatch.setattr("outer_agent.pipeline.PUBLISH_RETRY_S", 0.05)
    monkeypatch.setattr("outer_agent.pipeline.IDLE_TICK_S", 0.02)
    spool, sender, packager = Spool(tmp_path), FakeSender(), FakePackager()
    sender.fail_next = 10**9
    stored = [put(spool, b"stored %d" % i) for i in range(3)]
    for env in stored:
        spool.remove_published(spool.received_path(env.mail_id))
        record = SpoolRecord({"envelope": env.to_json(), "kind": "package"}, b"OLD")
        (spool.folder("rendered") / env.mail_id).write_bytes(record.encode())
    fresh = [put(spool, b"fresh %d" % i) for i in range(20)]
    pipeline = run_pipeline(spool, packager, sender, FakeAudit())
    wait_for(lambda: len(packager.calls) >= 8)  # render threads busy, publish queue full
    stopper = threading.Thread(target=pipeline.stop)
    stopper.start()
    stopper.join(timeout=10)
    assert not stopper.is_alive(), "stop() hung"
    assert sender.published == []
    assert spool.rendered() == sorted(e.mail_id for e in stored)
    assert spool.pending() == sorted(f"{e.mail_id}.0" for e in fresh)
    assert spool.claimed() == []


def test_idle_pipeline_sends_heartbeats(tmp_path, monkeypatch):
    monkeypatch.setattr("outer_agent.pipeline.IDLE_TICK_S", 0.01)
    sender = FakeSender()
    pipeline = run_pipeline(Spool(tmp_path), FakePackager(), sender, FakeAudit())
    try:
        wait_for(lambda: sender.heartbeats >= 3)
    finally:
        pipeline.stop()


def test_inject_is_idempotent_per_id(tmp_path):
    spool = Spool(tmp_path)
    pipeline = Pipeline(spool, FakePackager(), FakeSender(), FakeAudit(), workers=1)
    bundle_id = new_bundle_id()
    env = Envelope(bundle_id.hex(), bundle_id, "", ("a@corp.example",), 1.0, "local", "h", False)
    pipeline.inject(env, b"notice")
    pipeline.inject(env, b"notice")
    assert len(spool.pending()) == 1


def test_a_storage_error_while_rendering_puts_the_mail_back_and_retries(tmp_path, monkeypatch):
    monkeypatch.setattr("outer_agent.pipeline.PUBLISH_RETRY_S", 0.05)
    spool, sender, audit = Spool(tmp_path), FakeSender(), FakeAudit()
    put(spool, b"x")
    real = spool.read
    failures = []

    def flaky(*args, **kwargs):
        if not failures:
            failures.append(1)
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(spool, "read", flaky)
    pipeline = run_pipeline(spool, FakePackager(), sender, audit)
    try:
        wait_for(lambda: len(sender.published) == 1)
    finally:
        pipeline.stop()
    assert failures == [1]


class BatchRecordingSender(FakeSender):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    def publish_many(self, bundles):
        self.batches.append(len(bundles))
        return super().publish_many(bundles)


class SlowPackager(FakePackager):
    """Rendering takes a while, as it does: packages come in while others are rendered."""

    def package(self, raw, envelope, auth):
        time.sleep(0.01)
        return super().package(raw, envelope, auth)


def test_mails_rendered_together_are_published_together(tmp_path):
    """Group commit: while other mails are being rendered, the publisher publishes the
    packages waiting behind the one in hand with it (one seq commit, one folder fsync, one
    audit commit for all), each exactly once."""
    spool, sender, audit = Spool(tmp_path), BatchRecordingSender(), FakeAudit()
    envs = [put(spool, b"mail %d" % i) for i in range(24)]
    pipeline = run_pipeline(spool, SlowPackager(), sender, audit)
    try:
        wait_for(lambda: len(audit.steps("published")) == 24)
    finally:
        pipeline.stop()
    assert sorted(b for _, b, _ in sender.published) == sorted(e.bundle_id for e in envs)
    assert max(sender.batches) > 1
    assert len(audit.steps("published")) == 24
    assert sum(spool.counts().values()) == 0


def test_a_lone_mail_is_published_without_waiting(tmp_path, monkeypatch):
    """Nothing else being rendered: no group to wait for."""
    monkeypatch.setattr("outer_agent.pipeline.PUBLISH_LINGER_S", 30.0)
    spool, sender, audit = Spool(tmp_path), BatchRecordingSender(), FakeAudit()
    put(spool, b"alone")
    started = time.monotonic()
    pipeline = run_pipeline(spool, FakePackager(), sender, audit)
    try:
        wait_for(lambda: len(sender.published) == 1)
    finally:
        pipeline.stop()
    assert time.monotonic() - started < 5.0
    assert sender.batches == []
