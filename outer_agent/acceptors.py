"""Extra SMTP acceptor processes: the same intake, forked, on the same port (SO_REUSEPORT).

One event loop is one core. With ``smtp.processes = N`` the main process serves SMTP and
N-1 forked acceptors do too; the kernel spreads new connections over them. Each acceptor
writes its own segments into ``incoming/`` and wakes the main process's splitter through a
pipe; the session limits live in shared memory (``SessionCounter``). Acceptors are forked
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


class Acceptors:
    """The forked acceptor processes and the pipe they wake the main process with."""

    def __init__(self, processes: list[Any], wake_read: int | None) -> None:
        self.processes = processes
        self._wake_read = wake_read
        self._thread: threading.Thread | None = None

    @classmethod
    def start(cls, count: int, target: Callable[..., None], *args: Any) -> Acceptors:
        """Fork ``count`` processes running ``target(*args, wake)``; call before any thread."""
        if count <= 0:
            return cls([], None)
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_write, False)
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

    def on_wake(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever an acceptor committed mail (a thread reads the pipe)."""
        if self._wake_read is None:
            return
        self._thread = threading.Thread(
            target=self._read_wakes, args=(self._wake_read, callback), name="acceptor-wakes",
            daemon=True,
        )  # fmt: skip
        self._thread.start()

    @staticmethod
    def _read_wakes(fd: int, callback: Callable[[], None]) -> None:
        while os.read(fd, 4096):
            callback()

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

    def wake() -> None:
        with contextlib.suppress(BlockingIOError):  # a full pipe already says "wake up"
            os.write(wake_write, b"w")

    target(*args, wake)


def _die_with(parent: int) -> None:
    """Get SIGKILL when the main process dies, even by kill -9 (Linux prctl)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
