"""FolderIntake: only settled regular files, claimed under our names, quarantined with reasons."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import FolderIntake, Reason, RemoteError
from protocol.names import is_our_name
from protocol.refusals import MIN_FILE_COST, QuarantineLimits
from tests.protocol.conftest import FakeClock


def make(tmp_path: Path, clock: FakeClock | None = None, **options: object) -> FolderIntake:
    (tmp_path / "recv").mkdir(exist_ok=True)
    return FolderIntake(tmp_path / "recv", tmp_path / "work", tmp_path / "q", watch=False,
                        clock=clock or FakeClock(), **options)  # type: ignore[arg-type]  # fmt: skip


def test_claims_regular_files_into_the_work_folder_under_our_names(tmp_path: Path) -> None:
    intake = make(tmp_path, settle_s=0)
    (tmp_path / "recv" / "Some File.MDC").write_bytes(b"data")
    (claimed,) = intake.claim_ready()
    assert claimed.path.parent == tmp_path / "work"
    assert is_our_name(claimed.path.name.split(".")[0])
    assert claimed.original_name == "Some File.MDC"
    assert intake.read(claimed) == b"data"
    assert list((tmp_path / "recv").iterdir()) == []
    assert (os.stat(tmp_path / "work").st_mode & 0o777) == 0o700


def test_symlinks_folders_and_fifos_are_ignored(tmp_path: Path) -> None:
    intake = make(tmp_path, settle_s=0)
    secret = tmp_path / "secret"
    secret.write_bytes(b"do not read")
    recv = tmp_path / "recv"
    (recv / "link.mdc").symlink_to(secret)
    (recv / "folder.mdc").mkdir()
    os.mkfifo(recv / "fifo.mdc")
    assert intake.claim_ready() == []
    assert intake.claim_ready() == []
    assert intake.counters["ignored"] == 3  # logged and counted once each
    assert secret.read_bytes() == b"do not read"
    assert (recv / "link.mdc").is_symlink()


def test_files_still_changing_are_left_to_settle(tmp_path: Path) -> None:
    clock = FakeClock(now=0.0)  # the files' ctime is "now" in real time, far after 0
    clock.now = __import__("time").time()
    intake = make(tmp_path, clock, settle_s=1.0)
    growing = tmp_path / "recv" / "growing.mdc"
    growing.write_bytes(b"part")
    assert intake.claim_ready() == []
    clock.advance(0.6)
    with growing.open("ab") as handle:
        handle.write(b" more")
    assert intake.claim_ready() == []  # changed: the settle time starts again
    clock.advance(0.6)
    assert intake.claim_ready() == []
    clock.advance(0.5)
    (claimed,) = intake.claim_ready()
    assert intake.read(claimed) == b"part more"


def test_files_older_than_settle_time_are_claimed_at_first_sight(tmp_path: Path) -> None:
    clock = FakeClock(now=__import__("time").time() + 10)
    intake = make(tmp_path, clock, settle_s=1.0)
    (tmp_path / "recv" / "old.mdc").write_bytes(b"x")
    assert len(intake.claim_ready()) == 1


def test_size_is_capped_before_reading(tmp_path: Path) -> None:
    intake = make(tmp_path, settle_s=0, max_file_bytes=4096)
    (tmp_path / "recv" / "big.mdc").write_bytes(b"x" * 5000)
    (claimed,) = intake.claim_ready()
    with pytest.raises(RemoteError) as caught:
        intake.read(claimed)
    assert caught.value.reason is Reason.TOO_LARGE


def test_quarantine_moves_the_file_and_writes_a_reason_file(tmp_path: Path) -> None:
    intake = make(tmp_path, settle_s=0)
    (tmp_path / "recv" / "evil\udcff name.mdc").write_bytes(b"junk")
    (claimed,) = intake.claim_ready()
    target = intake.quarantine(claimed.path, Reason.BAD_MAGIC, "no magic", claimed.original_name)
    assert target is not None
    assert target.parent == tmp_path / "q"
    assert target.read_bytes() == b"junk"
    record = json.loads(target.with_name(target.name + ".reason.json").read_text())
    assert record["reason"] == "bad-magic"
    assert record["detail"] == "no magic"
    assert record["original_name"] == "evil\\xff name.mdc"
    assert record["size"] == 4
    assert record["kept"] is True
    assert intake.counters["quarantined:bad-magic"] == 1


def test_quarantine_stops_keeping_files_over_its_budget(tmp_path: Path) -> None:
    """Room for one refused file and its reason file (a block each). Beyond the budget no
    reason file is written either: those were never counted and filled the folder (15.6)."""
    budget = QuarantineLimits(max_bytes=3 * MIN_FILE_COST)
    intake = make(tmp_path, settle_s=0, quarantine_limits=budget)
    for i in range(3):
        (tmp_path / "recv" / f"f{i}").write_bytes(b"12345678")
    for claimed in intake.claim_ready():
        intake.quarantine(claimed.path, Reason.BAD_MAGIC, "x")
    assert len(list((tmp_path / "q").glob("*.chunk"))) == 1
    assert len(list((tmp_path / "q").glob("*.reason.json"))) == 1
    assert intake.counters["quarantine_dropped"] == 2


def test_leftovers_lists_files_claimed_before_a_restart(tmp_path: Path) -> None:
    intake = make(tmp_path, settle_s=0)
    (tmp_path / "recv" / "a").write_bytes(b"a")
    (claimed,) = intake.claim_ready()
    again = make(tmp_path, settle_s=0)
    assert [c.path for c in again.leftovers()] == [claimed.path]


def test_file_events_wake_the_loop_early(tmp_path: Path) -> None:
    recv, outside = tmp_path / "recv", tmp_path / "staging"
    recv.mkdir()
    outside.mkdir()
    intake = FolderIntake(recv, tmp_path / "work", tmp_path / "q", watch=True)
    try:
        (recv / "new.mdc").write_bytes(b"x")  # written in place
        assert intake.wait(5.0) is True
        (outside / "moved.mdc").write_bytes(b"y")
        intake.wait(0.2)
        (outside / "moved.mdc").rename(recv / "moved.mdc")  # renamed in, as a carrier does
        assert intake.wait(5.0) is True
        intake.wait(0.2)
        (recv / "moved.mdc").unlink()  # a file leaving makes no work: no wake-up
        assert intake.wait(0.5) is False
    finally:
        intake.close()


NAMES = st.lists(
    st.sampled_from(
        [
            "..",
            ".",
            "/",
            "\\",
            "-",
            "_",
            " ",
            "a",
            "Z",
            "0",
            "~",
            "\n",
            "%2e",
            "\u202e",
            "한",
            "..\\..",
            "mdaaaaaaaaaaaaaaaaaaaaaaaa",
        ]
    ),
    min_size=1,
    max_size=8,
).map("".join)


@settings(max_examples=60, deadline=None)
@given(names=st.lists(NAMES, min_size=1, max_size=6, unique=True))
def test_received_names_never_escape_the_work_or_quarantine_folders(names: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        intake = make(root, settle_s=0)
        recv_fd = os.open(root / "recv", os.O_RDONLY | os.O_DIRECTORY)
        try:
            for name in names:
                if "/" in name:
                    continue  # cannot be an entry name: the linkage could not deliver it
                try:
                    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644,
                                 dir_fd=recv_fd)  # fmt: skip
                except (OSError, ValueError):
                    continue  # names the OS itself refuses (with / or NUL, or existing)
                os.write(fd, b"x")
                os.close(fd)
        finally:
            os.close(recv_fd)
        for claimed in intake.claim_ready():
            assert claimed.path.parent == root / "work"
            intake.quarantine(claimed.path, Reason.BAD_MAGIC, "x", claimed.original_name)
        files = [p for p in root.rglob("*") if p.is_file() or p.is_symlink()]
        assert all(p.parent in (root / "recv", root / "q") for p in files), files
        assert list((root / "recv").iterdir()) == [] or all(
            not p.is_file() for p in (root / "recv").iterdir()
        )
        for path in (root / "q").iterdir():
            assert is_our_name(path.name.split(".")[0])


def test_claim_across_file_systems_copies_then_deletes(tmp_path: Path, monkeypatch) -> None:
    import errno

    intake = make(tmp_path, settle_s=0)
    (tmp_path / "recv" / "far.mdc").write_bytes(b"over nfs")
    real_rename = os.rename

    def cross_device(src, dst, *args, **kwargs):  # type: ignore[no-untyped-def]
        if kwargs.get("src_dir_fd") is not None:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "rename", cross_device)
    (claimed,) = intake.claim_ready()
    assert intake.read(claimed) == b"over nfs"
    assert list((tmp_path / "recv").iterdir()) == []
