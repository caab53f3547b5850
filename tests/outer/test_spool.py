"""The spool's record format, states and crash recovery."""

from __future__ import annotations

import os

import pytest

from outer_agent.errors import SpoolCorrupt, SpoolFull
from outer_agent.spool import Envelope, Spool, SpoolRecord, new_bundle_id


def envelope(n: int = 0) -> Envelope:
    bundle_id = new_bundle_id(1_700_000_000_000 + n)
    return Envelope(
        bundle_id.hex(),
        bundle_id,
        "a@ext.example",
        ("u@corp.example",),
        1.5,
        "127.0.0.1:4000",
        "client",
        False,
    )


def test_record_round_trips_and_carries_a_version():
    env = envelope()
    record = SpoolRecord({"envelope": env.to_json(), "kind": "mail"}, b"\x00raw\r\nmail\xff")
    raw = record.encode()
    assert raw.startswith(b"MDSPOOL 1\n")
    again = SpoolRecord.decode(raw, "x")
    assert again.payload == b"\x00raw\r\nmail\xff"
    assert again.envelope == env
    assert again.header["version"] == 1


@pytest.mark.parametrize("cut", [1, 5, 20, -1])
def test_torn_or_foreign_files_are_recognised(cut):
    raw = SpoolRecord({"envelope": envelope().to_json()}, b"payload").encode()
    with pytest.raises(SpoolCorrupt):
        SpoolRecord.decode(raw[:cut], "x")
    with pytest.raises(SpoolCorrupt):
        SpoolRecord.decode(b"MDSPOOL 2\n" + raw[10:], "x")


def test_bundle_ids_sort_by_arrival():
    ids = [new_bundle_id(1_700_000_000_000 + n).hex() for n in range(50)]
    assert sorted(ids) == ids


def test_states_move_by_rename_and_claim_is_exclusive(tmp_path):
    spool = Spool(tmp_path)
    env = envelope()
    spool.write_received(env, b"mail")
    [name] = spool.pending()
    claimed = spool.claim(name)
    assert claimed is not None
    assert spool.claim(name) is None
    assert spool.read(claimed).payload == b"mail"
    assert spool.claimed() == [name]
    assert spool.counts() == {
        "incoming": 0,
        "received": 0,
        "rendering": 1,
        "rendered": 0,
        "quarantine": 0,
    }
    spool.remove_published(claimed)
    assert spool.counts()["rendering"] == 0


def write_legacy_package(spool: Spool, env) -> None:
    """A package as earlier versions (before D12) stored it in rendered/ between render and publish."""
    record = SpoolRecord({"envelope": env.to_json(), "kind": "package"}, b"package")
    (spool.folder("rendered") / env.mail_id).write_bytes(record.encode())


def test_recovery_after_a_crash_in_each_state(tmp_path):
    spool = Spool(tmp_path)
    a, b, c = envelope(1), envelope(2), envelope(3)
    for env in (a, b, c):
        spool.write_received(env, b"mail")
    (tmp_path / "tmp" / "half-written.tmp").write_bytes(b"MDSPOOL 1\n")
    # a: crashed while rendering or before the link took its package; b: an earlier version
    # crashed after storing its package in rendered/, before the unlink
    spool.claim(f"{a.mail_id}.0")
    claimed_b = spool.claim(f"{b.mail_id}.0")
    assert claimed_b is not None
    write_legacy_package(spool, b)
    counts = Spool(tmp_path).recover()
    assert counts == {"tmp_removed": 1, "split": 0, "reclaimed": 1, "duplicates_removed": 1}
    assert spool.pending() == sorted([f"{a.mail_id}.1", f"{c.mail_id}.0"])
    assert spool.rendered() == [b.mail_id]
    assert os.listdir(tmp_path / "rendering") == []


def test_quarantine_keeps_the_mail_and_a_reason(tmp_path):
    spool = Spool(tmp_path)
    env = envelope()
    path = spool.write_received(env, b"mail")
    target = spool.quarantine(path, "render_crash: worker died")
    assert spool.read(target).payload == b"mail"
    assert target.with_name(env.mail_id + ".reason").read_text().startswith("render_crash")
    assert list(spool.iter_quarantine()) == [target]


def test_free_space_floor(tmp_path):
    spool = Spool(tmp_path, min_free_bytes=0)
    spool.check_space(1000)
    spool.min_free_bytes = spool.free_bytes() + 1
    with pytest.raises(SpoolFull, match="min_free_bytes"):
        spool.check_space()


def test_segments_split_into_per_mail_files_once_even_after_a_crash_midway(tmp_path):
    spool = Spool(tmp_path)
    envs = [envelope(n) for n in range(5)]
    spool.write_segment([(env, b"mail %d" % i) for i, env in enumerate(envs)])
    # crashed midway through a split: two mails already have their own file
    for env in envs[:2]:
        spool.write_received(env, b"earlier copy")
    split = Spool(tmp_path).split_incoming()
    assert [e.mail_id for e in split] == [e.mail_id for e in envs[2:]]
    assert os.listdir(tmp_path / "incoming") == []
    assert sorted(spool.pending()) == sorted(f"{e.mail_id}.0" for e in envs)
    claimed = spool.claim(f"{envs[4].mail_id}.0")
    assert spool.read(claimed).payload == b"mail 4"


def test_a_segment_of_one_mail_becomes_its_file_by_rename(tmp_path):
    """No copy and no second fsync for the usual segment; a crash before the split left
    the mail's own file already there, it is not renamed over."""
    spool = Spool(tmp_path)
    env = envelope(1)
    segment = spool.write_segment([(env, b"just one")])
    inode = segment.stat().st_ino
    assert [e.mail_id for e in spool.split_incoming()] == [env.mail_id]
    assert os.listdir(tmp_path / "incoming") == []
    received = tmp_path / "received" / f"{env.mail_id}.0"
    assert received.stat().st_ino == inode
    assert spool.read(received).payload == b"just one"
    again = spool.write_segment([(env, b"replayed segment")])
    assert spool.split_incoming() == []
    assert not again.exists()
    assert spool.read(received).payload == b"just one"


def test_a_torn_segment_goes_to_quarantine(tmp_path):
    spool = Spool(tmp_path)
    path = spool.write_segment([(envelope(1), b"x" * 100)])
    path.write_bytes(path.read_bytes()[:-10])
    assert spool.split_incoming() == []
    assert len(list(spool.iter_quarantine())) == 1
