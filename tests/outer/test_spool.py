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


# ---- D81: a segment of several mails is linked under each mail's name, not copied


def test_a_segment_of_several_mails_is_named_per_mail_without_new_files(tmp_path):
    """Each mail's name in received/ is the segment itself (no new file, no second write, no
    second fsync of the mails) and reads as that mail alone."""
    spool = Spool(tmp_path)
    envs = [envelope(n) for n in range(4)]
    segment = spool.write_segment([(env, b"mail %d" % i) for i, env in enumerate(envs)])
    inode = segment.stat().st_ino
    assert [e.mail_id for e in spool.split_incoming()] == [e.mail_id for e in envs]
    assert os.listdir(tmp_path / "incoming") == []
    for i, env in enumerate(envs):
        name = tmp_path / "received" / f"{env.mail_id}.0"
        assert name.stat().st_ino == inode
        assert spool.read(name).envelope == env
        assert spool.read(name).payload == b"mail %d" % i


def test_a_linked_mail_goes_alone_and_the_segment_with_its_last_name(tmp_path):
    spool = Spool(tmp_path)
    envs = [envelope(n) for n in range(3)]
    spool.write_segment([(env, b"mail %d" % i) for i, env in enumerate(envs)])
    spool.split_incoming()
    claimed = [spool.claim(f"{env.mail_id}.0") for env in envs]
    assert all(claimed)
    spool.remove_published(claimed[1])  # published: its name goes, the others still read
    assert spool.read(claimed[0]).payload == b"mail 0"
    assert spool.read(claimed[2]).payload == b"mail 2"
    assert claimed[0].stat().st_nlink == 2
    spool.remove_published(claimed[0])
    spool.remove_published(claimed[2])
    assert spool.counts()["rendering"] == 0


@pytest.mark.parametrize("links_before_crash", [0, 1, 2, 3])
def test_a_crash_in_the_middle_of_linking_loses_and_doubles_nothing(
    tmp_path, monkeypatch, links_before_crash
):
    """kill -9 between any two steps of a split: at the next start every mail has exactly one
    name in received/ and reads as itself; the segment's own name is gone."""
    spool = Spool(tmp_path)
    envs = [envelope(n) for n in range(3)]
    spool.write_segment([(env, b"mail %d" % i) for i, env in enumerate(envs)])
    real_link, made = os.link, []

    def crashing_link(source, target):
        if len(made) == links_before_crash:
            raise KeyboardInterrupt("crash")  # not an OSError: nothing in the pass catches it
        real_link(source, target)
        made.append(target)

    monkeypatch.setattr(os, "link", crashing_link)
    if links_before_crash < len(envs):
        with pytest.raises(KeyboardInterrupt):
            spool.split_incoming()
    else:
        spool.split_incoming()
    monkeypatch.setattr(os, "link", real_link)
    Spool(tmp_path).recover()
    assert os.listdir(tmp_path / "incoming") == []
    assert sorted(spool.pending()) == sorted(f"{e.mail_id}.0" for e in envs)
    for i, env in enumerate(envs):
        assert spool.read(spool.folder("received") / f"{env.mail_id}.0").payload == b"mail %d" % i


def test_one_mail_of_a_linked_segment_is_quarantined_alone(tmp_path):
    spool = Spool(tmp_path)
    envs = [envelope(n) for n in range(3)]
    spool.write_segment([(env, b"mail %d" % i) for i, env in enumerate(envs)])
    spool.split_incoming()
    claimed = spool.claim(f"{envs[1].mail_id}.0")
    kept = spool.quarantine(claimed, "render policy")
    assert SpoolRecord.decode(kept.read_bytes(), str(kept)).payload == b"mail 1"
    assert not claimed.exists()
    assert sorted(spool.pending()) == sorted(f"{e.mail_id}.0" for e in (envs[0], envs[2]))
    assert spool.read(spool.folder("received") / f"{envs[2].mail_id}.0").payload == b"mail 2"


def test_a_linked_name_without_its_mail_is_corrupt(tmp_path):
    spool = Spool(tmp_path)
    envs = [envelope(n) for n in range(2)]
    segment = spool.write_segment([(env, b"x") for env in envs])
    stranger = tmp_path / "received" / f"{envelope(9).mail_id}.0"
    os.link(segment, stranger)
    with pytest.raises(SpoolCorrupt, match="no record of mail"):
        spool.read(stranger)
