"""The outbound spool: durable records, torn and foreign files recognised."""

from __future__ import annotations

import pytest

from inner_agent.outbound.errors import SpoolCorrupt
from inner_agent.outbound.spool import Spool, SpooledMail, new_mail_id


def mail() -> SpooledMail:
    return SpooledMail(
        new_mail_id(),
        "kim@corp.example",
        ("a@example.com", "b@example.com"),
        1.5,
        "127.0.0.1",
        "mx.corp.example",
    )


def test_round_trip_keeps_the_bytes(tmp_path):
    spool = Spool(tmp_path)
    item, data = mail(), b"Subject: x\r\n\r\nbody \xff\x00 bytes\r\n"
    spool.store(item, data)
    assert spool.ids() == [item.mail_id]
    assert spool.load(item.mail_id) == (item, data)
    assert not list((tmp_path / "tmp").iterdir())


@pytest.mark.parametrize("cut", [1, 10, 40])
def test_torn_record_is_refused(tmp_path, cut):
    spool = Spool(tmp_path)
    item = mail()
    spool.store(item, b"x" * 100)
    path = tmp_path / "mail" / item.mail_id
    path.write_bytes(path.read_bytes()[:-cut])
    with pytest.raises(SpoolCorrupt):
        spool.load(item.mail_id)


def test_foreign_file_and_bad_name(tmp_path):
    spool = Spool(tmp_path)
    (tmp_path / "mail" / ("a" * 32)).write_bytes(b"From: someone\r\n\r\n")
    with pytest.raises(SpoolCorrupt, match="not an outbound spool record"):
        spool.load("a" * 32)
    with pytest.raises(SpoolCorrupt, match="not a mail id"):
        spool.load("../../etc/passwd")
    spool.quarantine("a" * 32, "test")
    assert spool.ids() == []
    assert (tmp_path / "quarantine" / ("a" * 32 + ".reason")).exists()
