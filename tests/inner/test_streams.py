"""Several inbound streams into one inner agent (issue 23.1, D74): the config of the extra
streams, a reader per stream with its own state, the outer agents' events kept apart, and the
same mail arriving on two streams delivered once."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from agentkit.control import encode_control
from agentkit.settings import load_config
from inner_agent.config import InnerConfig
from inner_agent.duplicates import DuplicateBook, mail_identity
from inner_agent.link_service import DONE_GROUP, OneAtATime, build_readers
from inner_agent.preflight import preflight
from inner_agent.reports import ControlHandler, ReportStore
from maildiode.cli import main
from maildiode.commands.status import receive_side
from mailsafe.payload import encode_package
from outer_agent.config import OuterConfig
from protocol import (
    FolderTransport,
    Keyring,
    Kind,
    ReceivedBundle,
    Sender,
    SigningKey,
    decode_chunk,
)
from tests.agentkit.control_golden import REPORT
from tests.inner.helpers import checked, make_handler, rendered
from tests.support.streams import TwoOuterStack

NOW = 1767225700.0


def _keys(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in ("inner", "outer", "mx2"):
        key = SigningKey.generate()
        key.save(folder / f"{name}.key")
        key.verify_key.save(folder / f"{name}.pub")
        paths[name] = folder / f"{name}.key"
    return paths


def _config(root: Path, **streams: object) -> InnerConfig:
    _keys(root / "keys")
    for folder in ("in/recv", "out/send", "mx2/in/recv", "mx2/out/send"):
        (root / "link" / folder).mkdir(parents=True, exist_ok=True)
    outer = {"id": "mx2", "recv_dir": str(root / "link/mx2/in/recv"),
             "send_dir": str(root / "link/mx2/out/send"),
             "peer_keys": [str(root / "keys/mx2.pub")], **streams}  # fmt: skip
    return InnerConfig.model_validate({
        "link": {"recv_dir": str(root / "link/in/recv"), "send_dir": str(root / "link/out/send"),
                 "settle_s": 0},
        "keys": {"signing_key": str(root / "keys/inner.key"),
                 "peer_keys": [str(root / "keys/outer.pub")]},
        "state": {"dir": str(root / "inner")},
        "streams": {"outer": [outer]},
    })  # fmt: skip


# ----------------------------------------------------------------------------- config


def test_an_inner_config_without_streams_reads_one_stream(tmp_path: Path) -> None:
    config = _config(tmp_path).model_copy(update={"streams": None})
    readers = build_readers(config, tmp_path / "inner")
    try:
        assert list(readers) == ["inbound"]
    finally:
        for reader in readers.values():
            reader.close()


def test_every_inbound_reader_syncs_its_done_marks_in_groups(tmp_path: Path) -> None:
    """D82: the pair's reader and each further stream's share one sync per DONE_GROUP marks."""
    readers = build_readers(_config(tmp_path), tmp_path / "inner")
    try:
        assert {s: r.done_group for s, r in readers.items()} == {
            "inbound": DONE_GROUP, "mx2": DONE_GROUP}  # fmt: skip
        assert DONE_GROUP > 1
    finally:
        for reader in readers.values():
            reader.close()


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"id": "inbound"}, "the pair's own stream"),
        ({"id": "MX2"}, "is not a stream id"),
        ({"id": "a-very-long-id"}, "is not a stream id"),
        ({"tcp_listen": "127.0.0.1:9999"}, "exactly one of recv_dir, tcp_listen"),
        ({"send_dir": None}, "exactly one of send_dir, tcp_send"),
        ({"peer_keys": []}, "peer_keys"),
    ],
)
def test_a_stream_entry_that_cannot_work_is_refused(
    tmp_path: Path, change: dict[str, object], why: str
) -> None:
    with pytest.raises(ValidationError, match=why):
        _config(tmp_path, **change)


def test_stream_ids_are_unique(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert config.streams is not None
    twice = {**config.model_dump(mode="json")}
    twice["streams"]["outer"] = twice["streams"]["outer"] * 2
    with pytest.raises(ValidationError, match="stream ids must be unique"):
        InnerConfig.model_validate(twice)


# ----------------------------------------------------------------------------- readers


def test_each_stream_has_its_own_reader_state_and_keys(tmp_path: Path) -> None:
    """A chunk signed by mx2 arrives on mx2's reader; the pair's reader (outer's key) would
    refuse it; each keeps its own sequence."""
    config = _config(tmp_path)
    readers = build_readers(config, tmp_path / "inner")
    key = SigningKey.load(tmp_path / "keys/mx2.key")
    sender = Sender(
        tmp_path / "mx2-state", "mx2", key, FolderTransport(tmp_path / "link/mx2/in/recv")
    )
    got: dict[str, list[int]] = {"inbound": [], "mx2": []}
    try:
        assert list(readers) == ["inbound", "mx2"]
        for n in range(3):
            sender.publish(f"bundle {n}".encode(), bytes([n]) * 16)
        for stream, reader in readers.items():
            reader.poll(lambda b, s=stream: got[s].append(b.seq))
        assert got == {"inbound": [], "mx2": [1, 2, 3]}
        assert (tmp_path / "inner/receiver-mx2.db").exists()
        assert readers["mx2"].status().highest_seq == 3
        assert readers["inbound"].status().highest_seq == 0
    finally:
        sender.close()
        for reader in readers.values():
            reader.close()


def test_two_outer_agents_events_are_imported_apart(tmp_path: Path) -> None:
    """Both outer agents number their events from 1: imported under one name, the second
    agent's events of the same numbers were dropped as already seen."""
    handler = make_handler(tmp_path)
    handler.control = ControlHandler(ReportStore(tmp_path / "reports.db"), handler.audit,
                                     clock=lambda: NOW)  # fmt: skip
    for n, stream in enumerate(("inbound", "mx2"), start=1):
        data = encode_control(REPORT)
        handler(ReceivedBundle(stream, 1, bytes([n]) * 16, Kind.CONTROL, data, 1, 1))
    imported = handler.audit.query(mail_id=REPORT.events[0].mail_id)
    assert sorted({e.agent for e in imported}) == ["outer", "outer-mx2"]
    assert len(imported) == 2 * len(REPORT.events)
    assert handler.control.store.latest("mx2") is not None


# ----------------------------------------------------------------------------- duplicates


def test_the_identity_ignores_what_differs_between_two_outer_agents() -> None:
    first = checked(mail_id="11" * 16)
    manifest = dataclasses.replace(
        first.manifest,
        envelope=dataclasses.replace(first.manifest.envelope, received_at="2026-11-23T10:05:00Z",
                                     client_addr="198.51.100.7", helo="other.example", tls=False),
    )  # fmt: skip
    second = dataclasses.replace(first, manifest=manifest, images=())  # other pixels too
    assert mail_identity(first) == mail_identity(second)


def test_the_identity_changes_with_the_mail() -> None:
    base = checked()
    other_text = dataclasses.replace(base, text="다른 본문")
    other_rcpt = checked(rcpt=("other@corp.example",))
    other_subject = checked(subject="다른 제목")
    identities = {mail_identity(m) for m in (base, other_text, other_rcpt, other_subject)}
    assert len(identities) == 4


def test_a_mail_without_message_id_has_no_identity() -> None:
    mail = checked()
    headers = dataclasses.replace(mail.manifest.headers, message_id="  ")
    bare = dataclasses.replace(mail, manifest=dataclasses.replace(mail.manifest, headers=headers))
    assert mail_identity(bare) is None


def test_the_book_finds_a_copy_on_another_stream_within_the_window(tmp_path: Path) -> None:
    now = [1000.0]
    book = DuplicateBook(tmp_path / "dup.db", 3600, clock=lambda: now[0])
    identity = b"i" * 32
    assert book.first_elsewhere(identity, "inbound", b"a" * 16, "m1") is None
    assert book.first_elsewhere(identity, "inbound", b"a" * 16, "m1") is None  # itself again
    assert book.first_elsewhere(identity, "inbound", b"c" * 16, "m3") is None  # same stream
    first = book.first_elsewhere(identity, "mx2", b"b" * 16, "m2")
    assert first is not None
    assert (first.stream, first.bundle_id, first.mail_id) == ("inbound", b"a" * 16, "m1")
    now[0] += 3601  # past the window: a new first arrival
    assert book.first_elsewhere(identity, "mx2", b"b" * 16, "m2") is None
    assert book.first_elsewhere(identity, "inbound", b"a" * 16, "m1") is not None


def test_the_same_mail_on_two_streams_is_delivered_once_and_audited(tmp_path: Path) -> None:
    handler = make_handler(tmp_path)
    handler.duplicates = DuplicateBook(tmp_path / "dup.db", 3600)
    at_mx1 = encode_package(rendered(mail_id="11" * 16))
    at_mx2 = encode_package(rendered(mail_id="22" * 16))  # the sender's retry at the second MX
    handler(ReceivedBundle("inbound", 1, b"\x01" * 16, Kind.DATA, at_mx1, 1, 1))
    handler(ReceivedBundle("mx2", 1, b"\x02" * 16, Kind.DATA, at_mx2, 1, 1))
    assert handler.queue.counts() == {"queued": 1}
    (dropped,) = handler.audit.query(step="duplicate_dropped")
    assert dropped.mail_id == "22" * 16
    assert dropped.details["first_stream"] == "inbound"
    assert dropped.details["first_mail_id"] == "11" * 16
    assert dropped.details["stream"] == "mx2"
    (first,) = handler.audit.query(step="received_inside")
    assert "stream" not in first.details  # the pair's events as they were


def test_another_mail_on_the_second_stream_is_delivered(tmp_path: Path) -> None:
    handler = make_handler(tmp_path)
    handler.duplicates = DuplicateBook(tmp_path / "dup.db", 3600)
    handler(ReceivedBundle("inbound", 1, b"\x01" * 16, Kind.DATA,
                           encode_package(rendered(mail_id="11" * 16)), 1, 1))  # fmt: skip
    handler(ReceivedBundle("mx2", 1, b"\x02" * 16, Kind.DATA,
                           encode_package(rendered(mail_id="22" * 16, subject="다른 메일")), 1, 1))  # fmt: skip
    assert handler.queue.counts() == {"queued": 2}
    assert handler.audit.query(step="duplicate_dropped") == []
    streams = [e.details.get("stream") for e in handler.audit.query(step="received_inside")]
    assert streams == [None, "mx2"]  # where a decision on a held one goes back to


def test_one_stream_keeps_delivering_a_repeat_as_before(tmp_path: Path) -> None:
    """Within one stream nothing changes: two bundles of the same mail are two deliveries."""
    handler = make_handler(tmp_path)
    handler.duplicates = DuplicateBook(tmp_path / "dup.db", 3600)
    for n in (1, 2):
        data = encode_package(rendered(mail_id=f"{n}" * 32))
        handler(ReceivedBundle("inbound", n, bytes([n]) * 16, Kind.DATA, data, 1, 1))
    assert handler.queue.counts() == {"queued": 2}


# ----------------------------------------------------------------------------- check


def test_check_names_a_missing_folder_a_shared_folder_and_a_wrong_key(tmp_path: Path) -> None:
    config = _config(tmp_path)
    (tmp_path / "inner").mkdir()
    assert [f.key for f in preflight(config, "inner.toml", probes=False)] == []
    (tmp_path / "link/mx2/out/send").rmdir()
    shared = config.model_copy(update={"streams": config.streams.model_copy(update={"outer": (
        config.streams.outer[0].model_copy(update={
            "recv_dir": tmp_path / "link/in/recv",  # the pair's own receive folder
            "peer_keys": (tmp_path / "keys/mx2.key",),  # a private key given as the public one
        }),
    )})})  # fmt: skip
    found = {f.key: f.problem for f in preflight(shared, "inner.toml", probes=False)}
    assert set(found) == {
        "streams.outer[mx2].send_dir", "streams.outer[mx2].recv_dir", "streams.outer[mx2].peer_keys"
    }  # fmt: skip
    assert "link.recv_dir" in found["streams.outer[mx2].recv_dir"]


def test_the_streams_threads_enter_the_handler_one_at_a_time() -> None:
    inside, most = [0], [0]
    guard = threading.Lock()

    def handler(bundle: ReceivedBundle) -> None:
        with guard:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.01)
        with guard:
            inside[0] -= 1

    shared = OneAtATime(handler)
    bundle = ReceivedBundle("mx2", 1, b"\x01" * 16, Kind.DATA, b"", 1, 1)
    threads = [threading.Thread(target=lambda: [shared(bundle) for _ in range(5)])
               for _ in range(4)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 1


# ----------------------------------------------------------------------------- resend


def test_resend_publishes_again_on_one_outer_agents_stream(tmp_path: Path, capsys: object) -> None:
    stack = TwoOuterStack(tmp_path / "s", relay_port=1)  # its files only: nothing started
    root = stack.root
    inner_key = SigningKey.load(root / "keys/inner.key")
    out = root / "link/mx2/out/send"
    sender = Sender(root / "inner/outbound/link-state", "mx2-out", inner_key, FolderTransport(out))
    for n in range(1, 4):
        sender.publish(f"mail {n}".encode(), bytes([n]) * 16)
    sender.close()
    for path in out.iterdir():
        path.unlink()
    config = str(root / "inner.toml")
    assert main(["resend", "-c", config, "--stream", "mx2", "2", "3"]) == 0
    ring = Keyring([inner_key.verify_key])
    headers = [decode_chunk(p.read_bytes(), ring).header for p in out.iterdir()]
    assert sorted((h.stream, h.seq) for h in headers) == [("mx2-out", 2), ("mx2-out", 3)]
    assert "of stream mx2-out" in capsys.readouterr().out  # type: ignore[attr-defined]
    assert main(["resend", "-c", config, "--stream", "mx9", "2", "3"]) == 2
    assert main(["resend", "-c", str(root / "outer-mx2.toml"), "--stream", "mx2", "2", "3"]) == 2


def test_an_outer_agent_of_several_reads_its_own_outbound_stream(tmp_path: Path) -> None:
    """outer.toml link.stream = "mx2": it publishes mx2 and reads (and reports) mx2-out."""
    stack = TwoOuterStack(tmp_path / "s", relay_port=1)  # its files only: nothing started
    several = load_config(stack.root / "outer-mx2.toml", OuterConfig)
    assert several.link.stream == "mx2"
    assert receive_side(several, "outer") == ("mx2-out", several.spool.dir / "link-out")
    pair = load_config(stack.root / "outer.toml", OuterConfig)
    assert pair.link.stream == "inbound"
    assert receive_side(pair, "outer")[0] == "outbound"


def test_each_streams_link_quarantine_is_pruned_to_its_setting(tmp_path: Path) -> None:
    """A chunk file mx2's reader refused is kept link_quarantine_days, like the pair's."""
    from inner_agent.retention import retention_stores

    config = _config(tmp_path)
    stores = {store.store: store for store in retention_stores(config)}
    assert stores["link_quarantine_mx2"].days == config.retention.link_quarantine_days
    refused = tmp_path / "inner/link-quarantine-mx2"
    refused.mkdir(parents=True)
    old, young = refused / "old.mdc", refused / "young.mdc"
    old.write_bytes(b"refused")
    young.write_bytes(b"refused")
    now = time.time()
    os.utime(old, (now - 40 * 86400, now - 40 * 86400))
    assert stores["link_quarantine_mx2"].prune(now - 30 * 86400) == 1
    assert not old.exists()
    assert young.exists()
