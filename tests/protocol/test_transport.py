"""Folder and TCP transports: atomic appearance, names, armour, staging, frames."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from maildiode.trial.stack import free_port
from protocol import FolderTransport, LocalError, TcpTransport
from protocol.armor import ARMOR_BEGIN, armor, dearmor
from protocol.errors import RemoteError
from protocol.names import is_our_name
from protocol.tcp_intake import TcpIntake


def test_files_appear_complete_under_short_fixed_width_lowercase_names(tmp_path: Path) -> None:
    transport = FolderTransport(tmp_path / "send", extension=".dat")
    names = transport.publish_chunks([b"a" * 10, b"b" * 20])
    assert len(names) == 2
    for name in names:
        assert is_our_name(name)
        assert len(name) == 2 + 24 + 4
        assert name == name.lower()
        assert name.isascii()
    assert sorted(p.read_bytes() for p in (tmp_path / "send").iterdir()) == [b"a" * 10, b"b" * 20]


def test_staging_is_outside_the_pickup_folder_and_left_empty(tmp_path: Path) -> None:
    transport = FolderTransport(tmp_path / "send")
    assert transport.staging_dir == tmp_path / ".send-staging"
    assert not transport.staging_dir.is_relative_to(tmp_path / "send")
    transport.publish_chunks([b"x"])
    assert list(transport.staging_dir.iterdir()) == []
    assert (os.stat(transport.staging_dir).st_mode & 0o777) == 0o700


def test_published_file_is_readable_by_the_linkage_user(tmp_path: Path) -> None:
    transport = FolderTransport(tmp_path / "send")
    (name,) = transport.publish_chunks([b"x"])
    assert (os.stat(tmp_path / "send" / name).st_mode & 0o777) == 0o644


def test_publish_file_accepts_only_generated_names(tmp_path: Path) -> None:
    transport = FolderTransport(tmp_path / "send")
    with pytest.raises(LocalError):
        transport.publish_file("../escape.mdc", b"x")
    name = transport.new_name()
    transport.publish_file(name, b"x")
    assert (tmp_path / "send" / name).read_bytes() == b"x"


def test_failure_to_publish_leaves_no_partial_file(tmp_path: Path) -> None:
    transport = FolderTransport(tmp_path / "send")
    (tmp_path / "send").chmod(0o500)
    try:
        if os.access(tmp_path / "send", os.W_OK):  # running as root: simulate instead
            (tmp_path / "send").chmod(0o700)
            (tmp_path / "send").rename(tmp_path / "gone")
        with pytest.raises(LocalError):
            transport.publish_chunks([b"x"])
        assert list(transport.staging_dir.iterdir()) == []
    finally:
        for folder in (tmp_path / "send", tmp_path / "gone"):
            if folder.exists():
                folder.chmod(0o700)


def test_kept_copies_create_their_folder_and_replace_an_older_copy(tmp_path: Path) -> None:
    transport = FolderTransport(tmp_path / "send")
    keep = tmp_path / "kept" / "g0" / "1.0.mdc"
    keep.parent.mkdir(parents=True)
    keep.write_bytes(b"an older copy of the same seq")
    [first] = transport.publish_chunks([b"first"], keep=[keep])
    assert keep.read_bytes() == b"first"
    assert os.stat(keep).st_ino == os.stat(tmp_path / "send" / first).st_ino  # a hard link
    new_folder = tmp_path / "kept" / "g1" / "1000.0.mdc"
    transport.publish_chunks([b"second"], keep=[new_folder])
    assert new_folder.read_bytes() == b"second"


def test_armour_round_trip_and_crlf_tolerance() -> None:
    data = os.urandom(500)
    text = armor(data)
    assert text.startswith(ARMOR_BEGIN)
    assert all(len(line) <= 76 for line in text.split(b"\n"))
    assert text.isascii()
    assert dearmor(text) == data
    assert dearmor(text.replace(b"\n", b"\r\n")) == data
    assert dearmor(text.replace(b"\n", b"  \n")) == data


@pytest.mark.parametrize(
    "bad",
    [
        b"-----BEGIN MAILDIODE CHUNK-----\nQUJD\n",
        b"-----BEGIN MAILDIODE CHUNK-----\nQUJ*\n-----END MAILDIODE CHUNK-----\n",
        b"-----BEGIN MAILDIODE CHUNK-----\nQUJ\n-----END MAILDIODE CHUNK-----\n",
        b"BEGIN\nQUJD\n-----END MAILDIODE CHUNK-----\n",
    ],
)
def test_bad_armour_is_refused(bad: bytes) -> None:
    with pytest.raises(RemoteError) as caught:
        dearmor(bad)
    assert caught.value.reason.value == "bad-armor"


def test_armoured_transport_writes_text(tmp_path: Path) -> None:
    transport = FolderTransport(tmp_path / "send", armor=True)
    (name,) = transport.publish_chunks([b"\x00\xff" * 100])
    text = (tmp_path / "send" / name).read_bytes()
    assert text.isascii()
    assert dearmor(text) == b"\x00\xff" * 100


def wait_for(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


def test_tcp_frames_arrive_as_files_in_the_intake(tmp_path: Path) -> None:
    intake = TcpIntake("127.0.0.1", 0, tmp_path / "spool", tmp_path / "work", tmp_path / "q")
    try:
        transport = TcpTransport(*intake.address)
        transport.publish_chunks([b"one", b"two" * 1000])
        transport.close()
        claimed: list[bytes] = []
        wait_for(lambda: claimed.extend(intake.read(c) for c in intake.claim_ready()) or
                 len(claimed) == 2)  # fmt: skip
        assert sorted(claimed) == [b"one", b"two" * 1000]
    finally:
        intake.close()


def test_tcp_intake_drops_oversized_frames(tmp_path: Path) -> None:
    intake = TcpIntake("127.0.0.1", 0, tmp_path / "spool", tmp_path / "work", tmp_path / "q",
                       max_file_bytes=4096)  # fmt: skip
    try:
        with socket.create_connection(intake.address) as conn:
            conn.sendall((10_000).to_bytes(4, "big") + b"x" * 100)
            wait_for(lambda: intake.counters["frames_too_large"] == 1)
        assert intake.claim_ready() == []
    finally:
        intake.close()


def test_tcp_transport_reports_an_unreachable_proxy(tmp_path: Path) -> None:
    transport = TcpTransport("127.0.0.1", free_port(), timeout_s=1)
    with pytest.raises(LocalError, match="diode proxy"):
        transport.publish_chunks([b"x"])
