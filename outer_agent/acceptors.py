"""Extra SMTP acceptor processes: the same intake, forked, on the same port (SO_REUSEPORT).

One event loop is one core. With ``smtp.processes = N`` the main process serves SMTP and
N-1 forked acceptors do too; the kernel spreads new connections over them. Each acceptor
stores its own mail (a small batch as one file per mail in ``received/``, a large one as a
segment in ``incoming/``) and tells the main process through a pipe, one line per message: a
mail's file name (queue it for rendering) or ``w`` (split the new segment). The session
limits live in shared memory (``SessionCounter``). Acceptors are forked
before the main process starts any thread, and die with it (``PR_SET_PDEATHSIG``), so a
kill -9 of the agent leaves no process behind holding the port.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["Acceptors"]

log = logging.getLogger(__name__)

# prctl(2) option: signal the child gets when its parent dies.
PR_SET_PDEATHSIG = 1
# How long a stopping acceptor may take to finish its sessions' commits before it is killed.
STOP_GRACE_S = 10.0
# The line that says "a segment is in incoming/"; any other line is the name of a received mail.
SEGMENT_LINE = b"w"


class MainProcessLink:
    """An acceptor's end of the pipe: what it tells the main process after a commit.

    Writes block while the pipe is full (the main process reads it in a thread of its own), so
    no message is dropped; if the main process is gone, nothing is lost either: its start-up
    finds every file in ``received/`` and ``incoming/``."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def segment_written(self) -> None:
        self._send(SEGMENT_LINE)

    def mail_received(self, name: str) -> None:
        self._send(name.encode("ascii"))

    def _send(self, line: bytes) -> None:
        with contextlib.suppress(BrokenPipeError):  # the main process is gone; we die with it
            os.write(self._fd, line + b"\n")  # one write of < PIPE_BUF bytes: never interleaved


class Acceptors:
    """The forked acceptor processes and the pipe they wake the main process with."""

    def __init__(self, processes: list[Any], wake_read: int | None) -> None:
        self.processes = processes
        self._wake_read = wake_read
        self._thread: threading.Thread | None = None

    @classmethod
    def start(cls, count: int, target: Callable[..., None], *args: Any) -> Acceptors:
        """Fork ``count`` processes running ``target(*args, MainProcessLink)``; call before
        any thread."""
        if count <= 0:
            return cls([], None)
        wake_read, wake_write = os.pipe()
        context = multiprocessing.get_context("fork")
        parent = os.getpid()
        processes = []
        for index in range(count):
            process = context.Process(
                target=_child, args=(parent, wake_write, target, args),
                name=f"maildiode-smtp-{index + 1}", daemon=False,
            )  # fmt: skip
            process.start()
            processes.append(process)
        os.close(wake_write)  # only the acceptors write; EOF once they are all gone
        log.info("started %d extra SMTP acceptor process(es)", count)
        return cls(processes, wake_read)

    def on_messages(self, *, segment: Callable[[], None], received: Callable[[str], None]) -> None:
        """Call ``segment()`` for each segment and ``received(name)`` for each mail file an
        acceptor stored (a thread reads the pipe)."""
        if self._wake_read is None:
            return
        self._thread = threading.Thread(
            target=self._read_messages, args=(self._wake_read, segment, received),
            name="acceptor-messages", daemon=True,
        )  # fmt: skip
        self._thread.start()

    @staticmethod
    def _read_messages(
        fd: int, segment: Callable[[], None], received: Callable[[str], None]
    ) -> None:
        pending = b""
        while block := os.read(fd, 4096):
            *lines, pending = (pending + block).split(b"\n")
            if SEGMENT_LINE in lines:
                segment()
            for line in lines:
                if line != SEGMENT_LINE:
                    received(line.decode("ascii"))

    def stop(self) -> None:
        """SIGTERM each acceptor (it closes its port and finishes its commits), then reap."""
        for process in self.processes:
            if process.is_alive():
                process.terminate()
        for process in self.processes:
            process.join(STOP_GRACE_S)
            if process.is_alive():
                log.error("acceptor %s did not stop in %.0f s; killed", process.name, STOP_GRACE_S)
                process.kill()
                process.join()
        if self._thread is not None:
            self._thread.join(timeout=STOP_GRACE_S)
        if self._wake_read is not None:
            os.close(self._wake_read)
            self._wake_read = None
        self.processes = []  # stopping twice is harmless


def _child(
    parent: int, wake_write: int, target: Callable[..., None], args: tuple[Any, ...]
) -> None:
    _die_with(parent)
    target(*args, MainProcessLink(wake_write))


def _die_with(parent: int) -> None:
    """Get SIGKILL when the main process dies, even by kill -9 (Linux prctl)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
