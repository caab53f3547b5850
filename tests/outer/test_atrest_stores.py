"""The outer agent's stores sealed at rest (issue 21.3): the spool (one-mail files, segments,
the split), held mail (and its release into received/), the delivery queue and its
quarantine hold no byte of a mail in clear, read back whole, and still read what was stored
before a key was configured."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from outer_agent.delivery import DeliveryQueue, OutboundItem
from outer_agent.errors import SpoolCorrupt
from outer_agent.holds import HoldInfo, HoldStore
from outer_agent.spool import RECEIVED, Envelope, Spool, SpoolRecord, new_bundle_id, peek_header
from protocol.atrest import CLEAR, AtRestKeyring

MARKER = b"zebracorn"
RRN = b"800101-1234567"
MAIL = b"Subject: quote\r\n\r\n" + MARKER + b" " + RRN + b"\r\n"


def envelope(n: int = 0) -> Envelope:
    bundle_id = new_bundle_id(1_700_000_000_000 + n)
    return Envelope(bundle_id.hex(), bundle_id, "a@ext.example", ("u@corp.example",), 1.5,
                    "127.0.0.1:4000", "client", False)  # fmt: skip


def clear_anywhere(root: Path) -> list[Path]:
    """Every file under ``root`` holding the marker or the number in clear."""
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


def test_spool_files_and_segments_are_sealed_and_read_back(tmp_path: Path, keyring) -> None:
    spool = Spool(tmp_path / "inbound", at_rest=keyring)
    one = spool.write_received(envelope(0), MAIL)
    spool.write_segment([(envelope(1), MAIL), (envelope(2), MAIL)])
    assert clear_anywhere(tmp_path) == []
    assert peek_header(one)["sealed"] is True  # the envelope stays readable for status
    assert spool.read(one).payload == MAIL
    assert len(spool.split_incoming()) == 2
    assert clear_anywhere(tmp_path) == []
    for name in spool.pending():
        assert spool.read(spool.folder(RECEIVED) / name).payload == MAIL


def test_a_clear_record_from_before_the_key_still_reads(tmp_path: Path, keyring) -> None:
    path = Spool(tmp_path / "inbound").write_received(envelope(), MAIL)  # no key yet
    assert Spool(tmp_path / "inbound", at_rest=keyring).read(path).payload == MAIL


def test_a_changed_sealed_payload_is_corrupt_and_names_the_file(tmp_path: Path, keyring) -> None:
    spool = Spool(tmp_path / "inbound", at_rest=keyring)
    path = spool.write_received(envelope(), MAIL)
    data = bytearray(path.read_bytes())
    data[-3] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(SpoolCorrupt, match="does not verify"):
        spool.read(path)
    with pytest.raises(SpoolCorrupt, match="no at-rest key is configured"):
        Spool(tmp_path / "inbound").read(spool.write_received(envelope(1), MAIL))


def test_record_sealed_flag_cannot_be_smuggled_in_by_a_header(keyring) -> None:
    """A clear record whose header claims "sealed" from the caller is sealed for real or not
    at all: encode sets the flag from the keyring only."""
    raw = SpoolRecord({"envelope": envelope().to_json(), "sealed": True}, MAIL).encode(CLEAR)
    assert SpoolRecord.decode(raw, "x").payload == MAIL


def test_held_mail_is_sealed_and_released_whole(tmp_path: Path, keyring) -> None:
    spool = Spool(tmp_path / "inbound", at_rest=keyring)
    holds = HoldStore(tmp_path / "held", spool.folder(RECEIVED), at_rest=keyring)
    info = HoldInfo("m", "hold-quotes", "why", "department_head", ("rrn",), "", 1, 1.0, 9e9,
                    {"subject": "quote"})  # fmt: skip
    env = envelope()
    assert holds.hold(env, MAIL, info)
    assert clear_anywhere(tmp_path) == []
    assert holds._read_header(env.mail_id) is not None
    held_file = tmp_path / "held" / "mail" / env.mail_id
    assert SpoolRecord.decode(held_file.read_bytes(), "held", keyring).payload == MAIL


def test_delivery_queue_and_its_quarantine_are_sealed(tmp_path: Path, keyring) -> None:
    queue = DeliveryQueue(tmp_path / "outbound", at_rest=keyring)
    item = OutboundItem("o1", b"\x01" * 16, "a@corp.example", ("x@ext.example",),
                        ["x@ext.example"], MAIL, first_seen=1.0)  # fmt: skip
    queue.store(item)
    queue.quarantine("bad-bundle", MAIL, "refused")
    assert clear_anywhere(tmp_path) == []
    [again] = DeliveryQueue(tmp_path / "outbound", at_rest=keyring).items()
    assert again.data == MAIL
    assert keyring.open((tmp_path / "outbound/quarantine/bad-bundle").read_bytes(), "q") == MAIL
