"""Sending side of a link: a folder drop (for linkage products) or a TCP stream to a diode proxy.

FolderTransport discipline (``protocol.durable.write_durably``): write each file in a staging
folder on the same file system but outside the pickup folder, fsync it, rename it into the
pickup folder, and fsync the pickup folder once per batch. The linkage product therefore never
sees a partial file.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from protocol.armor import armor as armor_bytes
from protocol.durable import FileFiller, ensure_private_dir, fsync_dir, write_durably
from protocol.errors import LocalError
from protocol.limits import MAX_CHUNK_FILE_BYTES
from protocol.names import is_our_name, new_name

__all__ = ["FRAME_HEADER", "FolderTransport", "TcpTransport", "Transport"]

log = logging.getLogger("protocol.transport")

T = TypeVar("T")

FRAME_HEADER = struct.Struct(">I")  # TCP frame: u32 big-endian length, then one chunk file
PICKUP_FILE_MODE = 0o644  # the linkage product runs as another user and must read the file
TCP_TIMEOUT_S = 30.0  # a diode proxy that does not take a frame in 30 s is broken
WRITERS = 4  # hashing, payload writes and fsyncs of several chunks overlap; bounds memory


class Transport(Protocol):
    """What a Sender needs from a link."""

    def publish_file(self, name: str, data: bytes) -> None: ...

    def publish_chunks(
        self, chunks: Iterable[bytes], keep: Sequence[Path | None] = ()
    ) -> list[str]: ...

    def close(self) -> None: ...


def _keep_copy(source: Path, keep: Path | None, data: bytes | None) -> None:
    """Keep a copy for resends: a hard link when possible (no second write), else a copy."""
    if keep is None:
        return
    try:
        _link_over(source, keep)
    except OSError:
        _write_keep(keep, source.read_bytes() if data is None else data)


def _link_over(source: Path, keep: Path) -> None:
    """Hard-link ``source`` as ``keep``, replacing an older copy and creating the folder.

    The usual case (folder there, no older copy) is one system call; the folder and the
    replacement are handled when the link says they are needed, not checked every time."""
    try:
        os.link(source, keep)
        return
    except FileNotFoundError:
        keep.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        keep.unlink(missing_ok=True)
    os.link(source, keep)


class _SharedIterator(Generic[T]):
    """next() from several threads; stop() makes it end early."""

    def __init__(self, items: Iterator[T]) -> None:
        self._items = items
        self._lock = threading.Lock()
        self._stopped = False

    def next(self) -> T | None:
        with self._lock:
            if self._stopped:
                return None
            try:
                return next(self._items)
            except StopIteration:
                self._stopped = True
                return None
            except BaseException:
                self._stopped = True
                raise

    def stop(self) -> None:
        with self._lock:
            self._stopped = True


class FolderTransport:
    """Publish files atomically into ``send_dir`` (the linkage product's pickup folder)."""

    def __init__(
        self,
        send_dir: str | Path,
        *,
        staging_dir: str | Path | None = None,
        extension: str = ".mdc",
        armor: bool = False,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.send_dir = Path(send_dir)
        self.send_dir.mkdir(parents=True, exist_ok=True)
        default_staging = self.send_dir.parent / f".{self.send_dir.name}-staging"
        self.staging_dir = ensure_private_dir(Path(staging_dir or default_staging))
        if os.stat(self.staging_dir).st_dev != os.stat(self.send_dir).st_dev:
            raise LocalError(
                f"staging folder {self.staging_dir} is not on the same file system as "
                f"{self.send_dir}; a rename would not be atomic"
            )
        self.extension = extension
        self.armor = armor
        self._random_bytes = random_bytes
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    def new_name(self) -> str:
        return new_name(self._random_bytes, self.extension)

    def publish_file(self, name: str, data: bytes) -> None:
        """Publish one file under ``name`` (must be one of our generated names)."""
        if not is_our_name(name):
            raise LocalError(f"{name!r} is not a generated chunk file name")
        self._publish([(name, data)], (), writers=1)

    def publish_chunks(
        self, chunks: Iterable[bytes], keep: Sequence[Path | None] = (), *, parallel: bool = True
    ) -> list[str]:
        """Publish chunk files under fresh names; durable when this returns.

        ``chunks`` may be a generator: each chunk is written and fsynced by an I/O thread while
        the next one is being signed, so signing overlaps the disk instead of adding to it.
        ``parallel=False``: all on the caller's thread (small files, as in publish_files).
        """
        names: list[str] = []

        def named() -> Iterator[tuple[str, bytes]]:
            for data in chunks:
                names.append(self.new_name())
                yield names[-1], data

        self._publish(named(), keep, writers=WRITERS if parallel else 1)
        return names

    def publish_files(
        self,
        fillers: Iterable[FileFiller],
        keep: Sequence[Path | None] = (),
        *,
        parallel: bool = True,
    ) -> list[str]:
        """Like publish_chunks, but each file is written by ``filler(fd)`` on a writer thread
        (lets a producer write a payload before it has computed the bytes that precede it).
        ``parallel=False``: all on the caller's thread (small files: the hand-offs to writer
        threads cost more than the overlap gains)."""
        if self.armor:
            raise LocalError("armoured transports take whole chunks (publish_chunks)")
        names: list[str] = []
        fillers = list(fillers)

        def named() -> Iterator[tuple[str, FileFiller]]:
            for filler in fillers:
                names.append(self.new_name())
                yield names[-1], filler

        self._publish(named(), keep, writers=min(WRITERS, len(fillers)) if parallel else 1)
        return names

    def _publish(
        self,
        named: Iterable[tuple[str, bytes | FileFiller]],
        keep: Sequence[Path | None],
        *,
        writers: int,
    ) -> None:
        """``writers`` threads each take the next chunk (signing it, if ``named`` is a lazy
        generator) and write, fsync, keep and rename it; the caller's thread only waits.
        Hashing and fsync release the GIL and no thread runs long pure-Python loops, so one
        thread's hashing overlaps another's disk wait. With one writer (a single file) the
        caller's thread does it: handing one file to a pool only adds thread switches."""
        with self._lock:
            source = _SharedIterator(enumerate(named))

            def write_all() -> None:
                while (item := source.next()) is not None:
                    index, (name, data) = item
                    self._stage(name, data, keep[index] if index < len(keep) else None)

            failures = self._run_writers(write_all, writers)
            if failures:
                # A failed file leaves no temp behind (write_durably); chunks already renamed
                # in stay: each is complete and valid alone, and a re-publish sends them again.
                source.stop()
                if isinstance(failures[0], OSError):
                    raise LocalError(f"cannot publish into {self.send_dir}: {failures[0]}")
                raise failures[0]
            try:
                fsync_dir(self.send_dir)
            except OSError as exc:
                raise LocalError(f"cannot sync {self.send_dir}: {exc}") from exc

    def _run_writers(self, write_all: Callable[[], None], writers: int) -> list[BaseException]:
        if writers <= 1:
            try:
                write_all()
            except Exception as exc:  # noqa: BLE001 - handled like a pool worker's failure
                return [exc]
            return []
        workers = [self._writers().submit(write_all) for _ in range(writers)]
        return [exc for exc in (w.exception() for w in workers) if exc is not None]

    def _stage(self, name: str, data: bytes | FileFiller, keep: Path | None) -> None:
        """Write in staging, fsync, keep a copy, rename in (the folder is fsynced once per
        batch). The copy is kept before the chunk can appear: see Sender._other_content."""
        body = data if callable(data) or not self.armor else armor_bytes(data)
        known = None if callable(body) else body
        write_durably(
            self.send_dir / name,
            body,
            mode=PICKUP_FILE_MODE,
            staging=self.staging_dir,
            sync_folder=False,
            on_staged=None if keep is None else lambda staged: _keep_copy(staged, keep, known),
        )

    def _writers(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(WRITERS, thread_name_prefix="md-publish")
        return self._executor

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


class TcpTransport:
    """Length-prefixed frames over TCP toward a diode proxy. No reply is expected or read."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout_s: float = TCP_TIMEOUT_S,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.address = (host, port)
        self.timeout_s = timeout_s
        self._sock: socket.socket | None = None
        self._random_bytes = random_bytes
        self._lock = threading.Lock()

    def publish_file(self, name: str, data: bytes) -> None:
        self.publish_chunks([data])

    def publish_chunks(
        self, chunks: Iterable[bytes], keep: Sequence[Path | None] = ()
    ) -> list[str]:
        names: list[str] = []
        with self._lock:
            for i, data in enumerate(chunks):
                if len(data) > MAX_CHUNK_FILE_BYTES:
                    raise LocalError(f"frame of {len(data)} bytes exceeds the chunk file limit")
                self._send(FRAME_HEADER.pack(len(data)) + data)
                name = new_name(self._random_bytes)
                names.append(name)
                target = keep[i] if i < len(keep) else None
                if target is not None:
                    _write_keep(target, data)
        return names

    def _send(self, frame: bytes) -> None:
        for attempt in (1, 2):
            try:
                if self._sock is None:
                    self._sock = socket.create_connection(self.address, timeout=self.timeout_s)
                self._sock.sendall(frame)
                return
            except OSError as exc:
                self._drop()
                if attempt == 2:
                    raise LocalError(f"cannot send to diode proxy {self.address}: {exc}") from exc
                log.warning("diode proxy connection lost (%s); reconnecting", exc)

    def _drop(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def close(self) -> None:
        with self._lock:
            self._drop()


def _write_keep(target: Path, data: bytes) -> None:
    """A kept copy for resends, written but not synced: a copy lost in a power cut only
    means that bundle cannot be re-sent."""
    target.parent.mkdir(parents=True, exist_ok=True)
    write_durably(target, data, sync_file=False, sync_folder=False)
