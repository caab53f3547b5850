"""The inner agent's stores sealed at rest (issue 21.3): the outbound spool, the outbound
state's preview and notice blobs, the injection queue and the quarantined bundle hold no byte
of a mail in clear — SQLite files and WAL included — and read back whole."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from inner_agent.bundle_check import BundleRefused
from inner_agent.bundle_quarantine import quarantine_files
from inner_agent.inject import InjectionQueue
from inner_agent.outbound.approval import Request, State
from inner_agent.outbound.spool import Spool, SpooledMail
from inner_agent.outbound.state import OutboundState
from protocol import Kind, ReceivedBundle
from protocol.atrest import AtRestKeyring

MARKER = b"zebracorn"
RRN = b"800101-1234567"
MAIL = b"Subject: list\r\n\r\n" + MARKER + b" " + RRN + b"\r\n"
MAIL_ID = "ab" * 16


def clear_anywhere(root: Path) -> list[Path]:
    found = []
    for folder, _, names in os.walk(root):
        for name in names:
            data = (Path(folder) / name).read_bytes()
            if MARKER in data or RRN in data:
                found.append(Path(folder) / name)
    return found


@pytest.fixture
def keyring() -> AtRestKeyring:
    return AtRestKeyring.generate()


def test_outbound_spool_is_sealed_and_loads_whole(tmp_path: Path, keyring) -> None:
    spool = Spool(tmp_path / "outbound", at_rest=keyring)
    mail = SpooledMail(MAIL_ID, "kim@corp.example", ("p@example.com",), 1.0, "127.0.0.1", "h")
    spool.store(mail, MAIL)
    assert clear_anywhere(tmp_path) == []
    assert spool.load(MAIL_ID) == (mail, MAIL)
    spool.quarantine(MAIL_ID, "unreadable")
    assert clear_anywhere(tmp_path) == []


def test_outbound_spool_reads_a_record_from_before_the_key(tmp_path: Path, keyring) -> None:
    mail = SpooledMail(MAIL_ID, "kim@corp.example", ("p@example.com",), 1.0, "127.0.0.1", "h")
    Spool(tmp_path / "outbound").store(mail, MAIL)
    assert Spool(tmp_path / "outbound", at_rest=keyring).load(MAIL_ID) == (mail, MAIL)


def test_state_preview_and_notices_are_sealed_in_the_database_and_wal(
    tmp_path: Path, keyring
) -> None:
    state = OutboundState(tmp_path / "state.db", at_rest=keyring)
    state.add_mail(MAIL_ID, "kim@corp.example", ("p@example.com",), 1.0)
    request = Request("r1", MAIL_ID, State.HELD, ("lee@corp.example",), 1.0)
    assert state.add_request(
        request, MAIL, [(MAIL_ID, "request", "lee@corp.example", MAIL)], pages=MAIL
    )  # the preview's pages and their searchable text
    state.queue_notice(MAIL_ID, "reminder", "lee@corp.example", MAIL)
    assert clear_anywhere(tmp_path) == []  # state.db, state.db-wal, state.db-shm
    assert state.preview("r1") == MAIL
    assert state.preview_pages("r1") == MAIL
    assert [n.data for n in state.due_notices()] == [MAIL, MAIL]
    state.close()


def test_injection_queue_messages_are_sealed(tmp_path: Path, keyring) -> None:
    queue = InjectionQueue(tmp_path / "inject.db", at_rest=keyring)
    assert queue.add_bundle(b"\x01" * 16, MAIL_ID, "a@ext.example", ["u@corp.example"], [MAIL])
    assert clear_anywhere(tmp_path) == []
    message = queue.next_due(set())
    assert message is not None
    assert message.data == MAIL
    queue.close()


def test_a_quarantined_bundle_is_sealed(tmp_path: Path, keyring) -> None:
    bundle = ReceivedBundle("inbound", 1, b"\x02" * 16, Kind.DATA, MAIL, 0, 1)
    path = quarantine_files(tmp_path, bundle, BundleRefused("bad_package", "x"), MAIL_ID, 1.0,
                            at_rest=keyring)  # fmt: skip
    assert clear_anywhere(tmp_path) == []
    assert keyring.open(path.read_bytes(), str(path)) == MAIL


def test_the_console_opens_a_sealed_picture_in_memory(tmp_path: Path, keyring) -> None:
    from inner_agent.console.data import ConsoleData
    from inner_agent.console.places import ConsolePlaces
    from inner_agent.web.config import ConsoleSection

    key_file = tmp_path / "inner-at-rest.keys"
    keyring.save(key_file)
    state = OutboundState(tmp_path / "state.db", at_rest=keyring)
    state.add_mail(MAIL_ID, "kim@corp.example", ("p@example.com",), 1.0)
    picture = b"\x89PNG\r\n\x1a\n" + MAIL
    assert state.add_request(Request("r1", MAIL_ID, State.HELD, ("lee@corp.example",), 1.0),
                             picture)  # fmt: skip
    state.close()
    places = ConsolePlaces(outbound_state=tmp_path / "state.db", at_rest_key=key_file)
    data = ConsoleData(places, zone=ConsoleSection().zone, language="ko")
    assert data.picture(MAIL_ID) == picture


def test_the_console_opens_sealed_preview_pages_in_memory(tmp_path: Path, keyring) -> None:
    from inner_agent.console.data import ConsoleData
    from inner_agent.console.places import ConsolePlaces
    from inner_agent.outbound.previews import Preview, PreviewPage
    from inner_agent.web.config import ConsoleSection

    key_file = tmp_path / "inner-at-rest.keys"
    keyring.save(key_file)
    state = OutboundState(tmp_path / "state.db", at_rest=keyring)
    state.add_mail(MAIL_ID, "kim@corp.example", ("p@example.com",), 1.0)
    body, sheet = b"\x89PNG\r\n\x1a\nbody" + MAIL, b"\x89PNG\r\n\x1a\nsheet" + MAIL
    pages = Preview((PreviewPage("image/png", body, "body", 1),
                     PreviewPage("image/png", sheet, "attachment:a.xlsx", 1)))  # fmt: skip
    assert state.add_request(Request("r1", MAIL_ID, State.HELD, ("lee@corp.example",), 1.0),
                             body, pages=pages.encode())  # fmt: skip
    state.close()
    stored = sqlite3.connect(tmp_path / "state.db").execute("SELECT pages FROM previews")
    assert sheet not in stored.fetchone()[0]  # sealed on disk
    places = ConsolePlaces(outbound_state=tmp_path / "state.db", at_rest_key=key_file)
    data = ConsoleData(places, zone=ConsoleSection().zone, language="ko")
    assert data.picture(MAIL_ID, 2) == sheet
    assert data.picture_pages(MAIL_ID) == ("본문", "첨부 a.xlsx 1쪽")
