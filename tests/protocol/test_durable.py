"""protocol.durable: the one durable write, tested once for every way it can fail.

The faults are injected into the os functions the helper calls (a full disk at write, a broken
disk at fsync, rename, link or close), only for the helper's own temp file or the target's
folder, so the test's own I/O is untouched. After every failure: the error is the OSError the
disk gave, no temp file remains, and the target holds its old bytes or nothing — never part of
the new ones.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import protocol.durable as durable
from protocol.durable import is_temp_name, move_durably, remove_temps, write_durably

OLD = b"the old content, complete\n"
NEW = b"N" * 200_000


def _fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


def _is_temp_fd(fd: int) -> bool:
    return is_temp_name(Path(_fd_path(fd)).name)


class Disk:
    """Fault injection and a journal of the calls the helper made, in order."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.journal: list[tuple[str, str]] = []

    def fail(self, name: str, code: int, when: Callable[..., bool]) -> None:
        """Make ``os.<name>`` raise OSError(code) when ``when(*args)`` holds (once per call)."""
        real = getattr(os, name)

        def faulty(*args: Any, **kwargs: Any) -> Any:
            if when(*args):
                raise OSError(code, os.strerror(code))
            return real(*args, **kwargs)

        self.monkeypatch.setattr(os, name, faulty)

    def record(self) -> None:
        """Journal every fsync (what it synced), rename and link."""
        real_fsync, real_rename, real_link = os.fsync, os.rename, os.link

        def fsync(fd: int) -> None:
            info = os.fstat(fd)
            kind = "folder" if stat.S_ISDIR(info.st_mode) else "file"
            self.journal.append((f"fsync {kind}", _fd_path(fd)))
            real_fsync(fd)

        def rename(src: Any, dst: Any, **kwargs: Any) -> None:
            self.journal.append(("rename", str(dst)))
            real_rename(src, dst, **kwargs)

        def link(src: Any, dst: Any, **kwargs: Any) -> None:
            self.journal.append(("link", str(dst)))
            real_link(src, dst, **kwargs)

        self.monkeypatch.setattr(os, "fsync", fsync)
        self.monkeypatch.setattr(os, "rename", rename)
        self.monkeypatch.setattr(os, "link", link)


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> Disk:
    return Disk(monkeypatch)


def temps(*folders: Path) -> list[str]:
    return [n for folder in folders for n in os.listdir(folder) if is_temp_name(n)]


def everything(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


# ------------------------------------------------------------------------------ what it writes


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(lambda: NEW, id="bytes"),
        pytest.param(lambda: bytearray(NEW), id="bytearray"),
        pytest.param(lambda: memoryview(NEW), id="memoryview"),
        pytest.param(lambda: io.BytesIO(NEW), id="stream"),
        pytest.param(lambda: lambda fd: os.write(fd, NEW) and None, id="filler"),
    ],
)
def test_every_kind_of_source_arrives_whole(tmp_path: Path, source: Callable[[], Any]) -> None:
    target = tmp_path / "t"
    write_durably(target, source())
    assert target.read_bytes() == NEW
    assert everything(tmp_path) == ["t"]


def test_a_stream_is_copied_in_blocks_not_read_whole(tmp_path: Path) -> None:
    class Counting(io.BytesIO):
        sizes: list[int] = []  # noqa: RUF012 - one instance per test

        def read(self, size: int | None = -1) -> bytes:
            self.sizes.append(-1 if size is None else size)
            return super().read(size)

    stream = Counting(b"x" * (durable.COPY_BLOCK * 2 + 5))
    write_durably(tmp_path / "t", stream)
    assert (tmp_path / "t").stat().st_size == durable.COPY_BLOCK * 2 + 5
    assert set(stream.sizes) == {durable.COPY_BLOCK}


@pytest.mark.parametrize("mode", [0o600, 0o644, 0o640])
def test_the_file_gets_exactly_its_mode_whatever_the_umask(tmp_path: Path, mode: int) -> None:
    old = os.umask(0o077)
    try:
        write_durably(tmp_path / "t", b"x", mode=mode)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "t").stat().st_mode) == mode


def test_the_default_mode_is_private(tmp_path: Path) -> None:
    write_durably(tmp_path / "t", b"x")
    assert stat.S_IMODE((tmp_path / "t").stat().st_mode) == 0o600


def test_an_existing_target_is_replaced_by_default(tmp_path: Path) -> None:
    (tmp_path / "t").write_bytes(OLD)
    write_durably(tmp_path / "t", NEW)
    assert (tmp_path / "t").read_bytes() == NEW


def test_refuse_existing_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "t").write_bytes(OLD)
    with pytest.raises(FileExistsError):
        write_durably(tmp_path / "t", NEW, overwrite=False)
    assert (tmp_path / "t").read_bytes() == OLD
    assert everything(tmp_path) == ["t"]
    write_durably(tmp_path / "fresh", NEW, overwrite=False)
    assert (tmp_path / "fresh").read_bytes() == NEW
    assert (tmp_path / "fresh").stat().st_nlink == 1  # the temp's second name is gone


def test_staging_keeps_the_temp_out_of_the_target_folder(tmp_path: Path, disk: Disk) -> None:
    (tmp_path / "send").mkdir()
    (tmp_path / "staging").mkdir()
    seen_in_send: list[list[str]] = []

    def look(staged: Path) -> None:
        assert staged.parent == tmp_path / "staging"
        assert staged.read_bytes() == NEW  # complete before it gets its name
        seen_in_send.append(everything(tmp_path / "send"))

    write_durably(tmp_path / "send" / "c.mdc", NEW, staging=tmp_path / "staging", on_staged=look)
    assert seen_in_send == [[]]
    assert everything(tmp_path / "send") == ["c.mdc"]
    assert everything(tmp_path / "staging") == []


# ------------------------------------------------------------------------------ the order of syncs


def test_file_synced_before_its_name_and_the_folder_after(tmp_path: Path, disk: Disk) -> None:
    (tmp_path / "staging").mkdir()
    (tmp_path / "out").mkdir()
    disk.record()
    write_durably(tmp_path / "out" / "t", NEW, staging=tmp_path / "staging")
    steps = [step for step, _ in disk.journal]
    assert steps == ["fsync file", "rename", "fsync folder"]
    assert is_temp_name(Path(disk.journal[0][1]).name)
    assert disk.journal[2][1] == str(tmp_path / "out")  # the target's folder, not the staging


def test_refuse_existing_links_then_syncs_the_folder(tmp_path: Path, disk: Disk) -> None:
    disk.record()
    write_durably(tmp_path / "t", NEW, overwrite=False)
    assert [step for step, _ in disk.journal] == ["fsync file", "link", "fsync folder"]


def test_a_batch_leaves_the_folder_sync_to_its_caller(tmp_path: Path, disk: Disk) -> None:
    disk.record()
    write_durably(tmp_path / "t", NEW, sync_folder=False)
    assert [step for step, _ in disk.journal] == ["fsync file", "rename"]


def test_an_unsynced_copy_makes_no_fsync_at_all(tmp_path: Path, disk: Disk) -> None:
    disk.record()
    write_durably(tmp_path / "t", NEW, sync_file=False, sync_folder=False)
    assert [step for step, _ in disk.journal] == ["rename"]
    assert (tmp_path / "t").read_bytes() == NEW


# ------------------------------------------------------------------------------ failures


def _temp_fd(*args: Any) -> bool:
    return isinstance(args[0], int) and _is_temp_fd(args[0])


def _folder_fd(*args: Any) -> bool:
    return isinstance(args[0], int) and stat.S_ISDIR(os.fstat(args[0]).st_mode)


FAULTS = {
    "ENOSPC at write": ("write", errno.ENOSPC, _temp_fd),
    "EIO at write": ("write", errno.EIO, _temp_fd),
    "EIO at file fsync": ("fsync", errno.EIO, _temp_fd),
    "ENOSPC at file fsync": ("fsync", errno.ENOSPC, _temp_fd),
    "EIO at close": ("close", errno.EIO, _temp_fd),
    "EIO at fchmod": ("fchmod", errno.EIO, _temp_fd),
    "ENOSPC at rename": ("rename", errno.ENOSPC, lambda *a: True),
    "EIO at rename": ("rename", errno.EIO, lambda *a: True),
    "ENOSPC at create": ("open", errno.ENOSPC, lambda *a: is_temp_name(Path(a[0]).name)),
}


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("existing", [False, True], ids=["new", "replacing"])
def test_a_failure_leaves_the_old_file_or_nothing_and_no_temp(
    tmp_path: Path, disk: Disk, fault: str, existing: bool
) -> None:
    name, code, when = FAULTS[fault]
    if existing:
        (tmp_path / "t").write_bytes(OLD)
    disk.fail(name, code, when)
    with pytest.raises(OSError) as raised:
        write_durably(tmp_path / "t", NEW)
    assert raised.value.errno == code  # the disk's own error, not a cleanup error
    assert everything(tmp_path) == (["t"] if existing else [])
    if existing:
        assert (tmp_path / "t").read_bytes() == OLD


@pytest.mark.parametrize("code", [errno.EIO, errno.ENOSPC])
def test_a_failure_at_link_when_refusing_existing(tmp_path: Path, disk: Disk, code: int) -> None:
    disk.fail("link", code, lambda *a: True)
    with pytest.raises(OSError) as raised:
        write_durably(tmp_path / "t", NEW, overwrite=False)
    assert raised.value.errno == code
    assert everything(tmp_path) == []


def test_a_failure_in_the_staging_folder_cleans_the_staging(tmp_path: Path, disk: Disk) -> None:
    (tmp_path / "staging").mkdir()
    (tmp_path / "out").mkdir()
    disk.fail("fsync", errno.EIO, _temp_fd)
    with pytest.raises(OSError):
        write_durably(tmp_path / "out" / "t", NEW, staging=tmp_path / "staging")
    assert everything(tmp_path / "staging") == []
    assert everything(tmp_path / "out") == []


def test_a_staging_folder_on_another_file_system_is_refused_cleanly(
    tmp_path: Path, disk: Disk
) -> None:
    disk.fail("rename", errno.EXDEV, lambda *a: True)
    with pytest.raises(OSError) as raised:
        write_durably(tmp_path / "t", NEW)
    assert raised.value.errno == errno.EXDEV
    assert everything(tmp_path) == []


def test_a_failing_source_leaves_nothing(tmp_path: Path) -> None:
    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            raise OSError(errno.EIO, "the source's disk broke")

    def filler(fd: int) -> None:
        os.write(fd, b"half")
        raise ValueError("the producer gave up")

    with pytest.raises(OSError):
        write_durably(tmp_path / "a", Broken())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="gave up"):
        write_durably(tmp_path / "b", filler)
    assert everything(tmp_path) == []


def test_a_failing_hook_leaves_nothing(tmp_path: Path) -> None:
    def keep(staged: Path) -> None:
        raise OSError(errno.ENOSPC, "no room for the kept copy")

    with pytest.raises(OSError):
        write_durably(tmp_path / "t", NEW, on_staged=keep)
    assert everything(tmp_path) == []


def test_an_interrupt_mid_write_leaves_nothing(tmp_path: Path, disk: Disk) -> None:
    real_write = os.write

    def interrupted(fd: int, data: Any) -> int:
        if _is_temp_fd(fd):
            real_write(fd, bytes(data)[:100])
            raise KeyboardInterrupt
        return real_write(fd, data)

    disk.monkeypatch.setattr(os, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_durably(tmp_path / "t", NEW)
    assert everything(tmp_path) == []


def test_a_folder_sync_failure_is_reported_with_the_file_whole(tmp_path: Path, disk: Disk) -> None:
    """The name may or may not survive a power cut: the caller must not say "stored" (SMTP
    answers 451), and what is there is complete."""
    disk.fail("fsync", errno.EIO, _folder_fd)
    with pytest.raises(OSError) as raised:
        write_durably(tmp_path / "t", NEW)
    assert raised.value.errno == errno.EIO
    assert everything(tmp_path) == ["t"]
    assert (tmp_path / "t").read_bytes() == NEW


def test_a_cleanup_failure_does_not_hide_the_first_error(tmp_path: Path, disk: Disk) -> None:
    disk.fail("write", errno.ENOSPC, _temp_fd)
    disk.fail("unlink", errno.EROFS, lambda *a: True)
    with pytest.raises(OSError) as raised:
        write_durably(tmp_path / "t", NEW)
    assert raised.value.errno == errno.ENOSPC


# ------------------------------------------------------------------------------ symlinks


def test_a_symlink_at_the_target_is_replaced_never_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(OLD)
    (tmp_path / "t").symlink_to(victim)
    write_durably(tmp_path / "t", NEW)
    assert not (tmp_path / "t").is_symlink()
    assert (tmp_path / "t").read_bytes() == NEW
    assert victim.read_bytes() == OLD


@pytest.mark.parametrize("dangling", [False, True])
def test_a_symlink_at_the_target_is_refused_when_refusing_existing(
    tmp_path: Path, dangling: bool
) -> None:
    victim = tmp_path / "victim"
    if not dangling:
        victim.write_bytes(OLD)
    (tmp_path / "t").symlink_to(victim)
    with pytest.raises(FileExistsError):
        write_durably(tmp_path / "t", NEW, overwrite=False)
    assert (tmp_path / "t").is_symlink()
    assert victim.exists() is not dangling
    if not dangling:
        assert victim.read_bytes() == OLD
    assert temps(tmp_path) == []


def test_a_symlink_planted_at_the_temp_name_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(OLD)
    planted = tmp_path / ".t.guessed.tmp"
    planted.symlink_to(victim)
    monkeypatch.setattr(durable, "temp_path", lambda target, staging=None: planted)
    with pytest.raises(FileExistsError):
        write_durably(tmp_path / "t", NEW)
    assert victim.read_bytes() == OLD
    assert planted.is_symlink()  # not ours: left alone, not deleted
    assert not (tmp_path / "t").exists()


# ------------------------------------------------------------------------------ concurrency


def test_concurrent_writers_of_one_name_never_show_a_mix(tmp_path: Path) -> None:
    target = tmp_path / "t"
    contents = [bytes([65 + i]) * 100_000 for i in range(6)]
    target.write_bytes(contents[0])
    stop = threading.Event()
    torn: list[int] = []
    errors: list[BaseException] = []

    def writer(content: bytes) -> None:
        try:
            for _ in range(40):
                write_durably(target, content, sync_file=False, sync_folder=False)
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        while not stop.is_set():
            seen = target.read_bytes()
            if seen not in contents:
                torn.append(len(seen))

    watching = threading.Thread(target=reader)
    watching.start()
    writers = [threading.Thread(target=writer, args=(c,)) for c in contents]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    watching.join()
    assert errors == []
    assert torn == []
    assert target.read_bytes() in contents
    assert everything(tmp_path) == ["t"]


def test_concurrent_refusing_writers_exactly_one_wins(tmp_path: Path) -> None:
    target = tmp_path / "t"
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def writer(i: int) -> None:
        barrier.wait()
        try:
            write_durably(target, bytes([i]) * 50_000, overwrite=False)
            outcomes.append("won")
        except FileExistsError:
            outcomes.append("refused")

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 7 + ["won"]
    assert len(set(target.read_bytes())) == 1
    assert everything(tmp_path) == ["t"]


def test_temp_names_are_unique_across_threads_and_a_fork(tmp_path: Path) -> None:
    names = {durable.temp_path(tmp_path / "t") for _ in range(1000)}
    assert len(names) == 1000
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its first temp name and leave at once
        os.write(write_end, str(durable.temp_path(tmp_path / "t")).encode())
        os._exit(0)
    os.close(write_end)
    child_name = os.read(read_end, 4096).decode()
    os.close(read_end)
    os.waitpid(pid, 0)
    parent_token = durable._process_token
    assert parent_token not in child_name  # the child made a token of its own


# ------------------------------------------------------------------------------ moves and leftovers


def test_move_syncs_each_arrival_folder_before_each_source_folder(
    tmp_path: Path, disk: Disk
) -> None:
    for name in ("a", "b", "q"):
        (tmp_path / name).mkdir()
    (tmp_path / "a" / "1").write_bytes(b"1")
    (tmp_path / "a" / "2").write_bytes(b"2")
    (tmp_path / "b" / "3").write_bytes(b"3")
    disk.record()
    move_durably(
        [(tmp_path / s / n, tmp_path / "q" / n) for s, n in (("a", "1"), ("a", "2"), ("b", "3"))]
    )
    assert everything(tmp_path / "q") == ["1", "2", "3"]
    synced = [path for step, path in disk.journal if step == "fsync folder"]
    assert synced == [str(tmp_path / "q"), str(tmp_path / "a"), str(tmp_path / "b")]
    disk.journal.clear()
    move_durably([(tmp_path / "q" / "1", tmp_path / "a" / "1")], sync_sources=False)
    assert [path for step, path in disk.journal if step == "fsync folder"] == [str(tmp_path / "a")]


def test_remove_temps_takes_only_temp_files(tmp_path: Path) -> None:
    (tmp_path / ".t.abc1.tmp").write_bytes(b"cut short")
    (tmp_path / "t").write_bytes(b"a real file")
    (tmp_path / "t.tmp").write_bytes(b"not one of ours: no dot in front")
    (tmp_path / ".dir.tmp").mkdir()
    (tmp_path / ".link.tmp").symlink_to(tmp_path / "t")
    assert remove_temps(tmp_path) == 1
    assert everything(tmp_path) == [".dir.tmp", ".link.tmp", "t", "t.tmp"]


def test_a_very_long_target_name_still_gets_a_valid_temp_name(tmp_path: Path) -> None:
    target = tmp_path / ("n" * 255)
    write_durably(target, b"x")
    assert target.read_bytes() == b"x"


# ------------------------------------------------------------------------------ any fault, any time

FAULTABLE = ("open", "fchmod", "write", "fsync", "close", "rename", "link", "unlink")


@contextlib.contextmanager
def fault_at(call: int, code: int) -> Iterator[list[str]]:
    """The ``call``-th os call the helper makes (of FAULTABLE, counted together) fails once."""
    made: list[str] = []
    patches = []
    for name in FAULTABLE:
        real = getattr(os, name)

        def counted(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            made.append(_name)
            if len(made) - 1 == call:
                raise OSError(code, os.strerror(code))
            return _real(*args, **kwargs)

        patches.append(mock.patch.object(os, name, counted))
    with contextlib.ExitStack() as stack:
        for patch in patches:
            stack.enter_context(patch)
        yield made


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    old=st.none() | st.binary(max_size=64),
    new=st.binary(max_size=3000),
    overwrite=st.booleans(),
    sync_folder=st.booleans(),
    staged=st.booleans(),
    call=st.integers(min_value=0, max_value=12),
    code=st.sampled_from([errno.EIO, errno.ENOSPC, errno.EDQUOT]),
)
def test_any_single_fault_leaves_old_or_new_whole_and_no_temp(
    old: bytes | None,
    new: bytes,
    overwrite: bool,
    sync_folder: bool,
    staged: bool,
    call: int,
    code: int,
) -> None:
    with tempfile.TemporaryDirectory() as root:
        out, staging = Path(root, "out"), Path(root, "staging")
        out.mkdir()
        staging.mkdir()
        target = out / "t"
        if old is not None:
            target.write_bytes(old)
        failed: OSError | None = None
        with fault_at(call, code) as made:
            try:
                write_durably(target, new, overwrite=overwrite, sync_folder=sync_folder,
                              staging=staging if staged else None)  # fmt: skip
            except OSError as exc:
                failed = exc
        cleanup_broke = (
            failed is not None and failed.errno != code and made[call : call + 1] == ["unlink"]
        )
        if not cleanup_broke:  # a refused name, then the disk refused to unlink the temp too
            assert temps(out, staging) == []
        now = target.read_bytes() if target.exists() else None
        if failed is None:
            assert now == new
            assert overwrite or old is None
        else:
            assert failed.errno in (code, errno.EEXIST)
            assert now in (old, new)  # whole: the old bytes, or the new once they had the name
            if failed.errno == errno.EEXIST:
                assert not overwrite
                assert now == old
