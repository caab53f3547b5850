"""The writes that matter pass the lease's fence: no message reaches the internal server and no
bundle reaches the queue once this agent no longer holds the state's lease."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agentkit.leasekeeper import FenceClosed
from inner_agent.link_service import LEFTOVER_RESCAN_S, LinkService
from inner_agent.smtpclient import Hop, Session, TemporaryFailure
from inner_agent.standby import fenced
from protocol import (
    FolderIntake,
    FolderTransport,
    Keyring,
    Kind,
    LinkReader,
    ReceivedBundle,
    Receiver,
    Sender,
)
from tests.inner.smtpsink import FaultySink
from tests.protocol.golden import KEY_A

BODY = b"From: a@corp.example\r\nTo: u@corp.example\r\nSubject: s\r\n\r\nhello\r\n"


class Switch:
    def __init__(self) -> None:
        self.open = True

    def __call__(self) -> None:
        if not self.open:
            raise FenceClosed("the lease (token 1) is now held by inner-b (token 2)")


def test_a_closed_fence_stops_the_message_before_its_bytes_and_the_transaction_is_abandoned(
    sink: tuple[FaultySink, int],
) -> None:
    handler, port = sink
    fence = Switch()
    session = Session(Hop("127.0.0.1", port, timeout_s=5, fence=fence))
    assert session.send("a@corp.example", ["u@corp.example"], BODY).accepted
    fence.open = False
    started = time.monotonic()
    with pytest.raises(TemporaryFailure, match="fencing: .*inner-b"):
        session.send("a@corp.example", ["u@corp.example"], BODY)
    assert time.monotonic() - started < 2  # no QUIT waited on in the middle of DATA
    time.sleep(0.3)
    assert len(handler.received) == 1  # the fenced message was never delivered, not even empty
    fence.open = True
    assert (
        Session(Hop("127.0.0.1", port, timeout_s=5, fence=fence))
        .send("a@corp.example", ["u@corp.example"], BODY)
        .accepted
    )
    assert len(handler.received) == 2


def test_a_fenced_handler_refuses_bundles_so_the_reader_keeps_them(tmp_path: Path) -> None:
    handled: list[ReceivedBundle] = []
    fence = Switch()
    handle = fenced(handled.append, fence)
    bundle = ReceivedBundle("inbound", 1, b"\x01" * 16, Kind.DATA, b"x", 1_800_000_000_000, 1)
    handle(bundle)
    fence.open = False
    with pytest.raises(FenceClosed):
        handle(bundle)
    assert handled == [bundle]


def _two_readers(tmp_path: Path) -> tuple[LinkReader, LinkReader]:
    """Two agents' readers on one state folder (the old holder's and the new one's)."""

    def reader() -> LinkReader:
        intake = FolderIntake(tmp_path / "recv", tmp_path / "work", tmp_path / "quarantine",
                              settle_s=0, watch=False)  # fmt: skip
        return LinkReader(intake, Receiver(tmp_path / "state", "inbound",
                                           Keyring([KEY_A.verify_key])))  # fmt: skip

    return reader(), reader()


def _publish(tmp_path: Path, n: int, first: int = 1) -> None:
    sender = Sender(tmp_path / "sender", "inbound", KEY_A, FolderTransport(tmp_path / "recv"))
    for seq in range(first, first + n):
        sender.publish(f"mail {seq}".encode(), bytes([seq]) * 16)
    sender.close()


def test_files_another_holder_claimed_and_left_are_handled_at_the_next_leftover_look(
    tmp_path: Path,
) -> None:
    new, old = _two_readers(tmp_path)
    handled: list[ReceivedBundle] = []
    assert new.poll(handled.append) == 0  # started: its one look at the work folder is done
    _publish(tmp_path, 2)
    assert old.intake.claim_ready()  # the old holder claims them, then stops (lease lost)
    assert new.poll(handled.append) == 0  # not in the receive folder any more
    new.recover_again()
    assert new.poll(handled.append) == 2
    assert sorted(b.seq for b in handled) == [1, 2]
    assert not any((tmp_path / "work").iterdir())
    new.close()
    old.close()


def test_the_link_thread_claims_nothing_behind_a_closed_fence_and_looks_at_leftovers_in_time(
    tmp_path: Path,
) -> None:
    reader, _ = _two_readers(tmp_path)
    fence = Switch()
    fence.open = False
    now = [0.0]
    looks: list[float] = []
    handled: list[ReceivedBundle] = []
    service = LinkService(reader, handled.append, rescan_s=0.05, fence=fence,
                          clock=lambda: now[0])  # fmt: skip
    reader.recover_again = lambda: looks.append(now[0])  # type: ignore[method-assign]
    _publish(tmp_path, 1)
    service.start()
    try:
        time.sleep(0.5)
        assert handled == []
        assert any((tmp_path / "recv").iterdir())  # left for the lease's holder
        fence.open = True
        _wait(lambda: len(handled) == 1)
        assert looks == []
        now[0] = LEFTOVER_RESCAN_S
        _publish(tmp_path, 1, first=2)
        _wait(lambda: len(handled) == 2)
        assert looks == [LEFTOVER_RESCAN_S]
    finally:
        service.stop()


def _wait(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def test_the_inbound_policy_is_neither_planned_nor_published_behind_a_closed_fence(
    tmp_path: Path,
) -> None:
    """The receive filters' policy publisher as the outbound service wires it, on the agent's
    fenced link: once the lease is gone a changed rules file is not published, and the
    state's ``inbound-policy.json`` is not written either (the old code planned the next
    version there before the link refused it: a write to the state without the lease, which
    a new holder that had meanwhile published that version would find overwritten)."""
    from types import SimpleNamespace

    from agentkit.audit import AuditLog
    from agentkit.links import LinkPublisher
    from inner_agent.inbound.config import InboundSection
    from inner_agent.inbound.holds import HoldBook
    from inner_agent.outbound.directory import Directory
    from inner_agent.outbound.service import OutboundService
    from tests.inner.test_receive_filters import HR, RULES
    from tests.support.outbound import make_section

    rules = tmp_path / "inbound-rules.toml"
    rules.write_text(RULES, encoding="utf-8")
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    config = SimpleNamespace(outbound=make_section(tmp_path), state=SimpleNamespace(dir=state_dir),
                             inbound=InboundSection(rules_file=rules))  # fmt: skip
    fence = Switch()
    audit = AuditLog(tmp_path / "audit.db", agent="inner")
    book = HoldBook(state_dir / "inbound-holds.db")
    directory = Directory(tmp_path / "directory.db")
    directory.import_csv(HR.encode())
    link = LinkPublisher(Sender(state_dir / "link", "outbound", KEY_A,
                                FolderTransport(tmp_path / "send")), fence=fence)  # fmt: skip
    service = OutboundService(config, audit, holds=book, fence=fence)  # type: ignore[arg-type]
    outward = service._inbound(directory, link)
    assert outward is not None
    try:
        outward.check_policy()
        published = sorted((tmp_path / "send").iterdir())
        assert published
        state = (state_dir / "inbound-policy.json").read_bytes()
        assert json.loads(state)["version"] == 1
        rules.write_text(RULES.replace("hold-sales", "hold-sales-2"), encoding="utf-8")
        outward.recheck()
        fence.open = False
        with pytest.raises(FenceClosed):
            outward.check_policy()
        assert (state_dir / "inbound-policy.json").read_bytes() == state
        assert sorted((tmp_path / "send").iterdir()) == published
        fence.open = True  # the lease's holder (this one again) publishes the change
        outward.recheck()
        outward.check_policy()
        assert json.loads((state_dir / "inbound-policy.json").read_bytes())["version"] == 2
    finally:
        link.close()
        directory.close()
        book.close()
        audit.close()


def test_the_ldap_sync_replaces_no_directory_behind_a_closed_fence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent's LDAP sync as the outbound service wires it: a pass whose fetch finished
    after the lease went replaces nothing (the new holder's sync does), and says so in one
    line; with the lease held the same pass replaces the directory."""
    from types import SimpleNamespace

    from agentkit.audit import AuditLog
    from inner_agent.outbound import service as service_module
    from inner_agent.outbound.directory import Directory
    from inner_agent.outbound.directory_sync import DirectorySync, sync_duty
    from inner_agent.outbound.ldap_config import DirectorySection, LdapSection
    from inner_agent.outbound.ldap_sync import LdapEntry
    from inner_agent.outbound.service import OutboundService
    from inner_agent.outbound.state import OutboundState
    from tests.support.outbound import HR_CSV, make_section

    section = make_section(tmp_path)
    ldap = LdapSection(url="ldap://127.0.0.1:1", base_dn="dc=corp")  # type: ignore[arg-type]
    config = SimpleNamespace(outbound=section, directory=DirectorySection(ldap=ldap),
                             state=SimpleNamespace(dir=tmp_path / "state"))  # fmt: skip
    fence = Switch()
    audit = AuditLog(tmp_path / "audit.db", agent="inner")
    directory = Directory(section.directory_db)
    directory.import_csv(HR_CSV)
    state = OutboundState(section.spool_dir / "state.db")
    service = OutboundService(config, audit, fence=fence)  # type: ignore[arg-type]
    entry = LdapEntry("uid=new,ou=보안팀,dc=corp", {"mail": ["new@corp.example"], "cn": ["신입"]})
    built: list[DirectorySync] = []
    monkeypatch.setattr(service_module, "sync_duty",  # the sync as wired, without its thread
                        lambda sync, _told: built.append(sync) or SimpleNamespace(start=lambda: None))  # fmt: skip
    try:
        service._directory_sync(directory, state)
        (sync,) = built
        sync.fetch = lambda _section: [entry]
        fence.open = False
        sync_duty(sync).one_pass()
        assert len(directory.users()) == 5
        assert directory.user("new@corp.example") is None
        fence.open = True
        sync_duty(sync).one_pass()
        assert [u.email for u in directory.users()] == ["new@corp.example"]
    finally:
        state.close()
        directory.close()
        audit.close()
