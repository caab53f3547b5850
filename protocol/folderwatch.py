"""Waking a folder's reader early when a file arrives: Linux inotify, read by the waiting thread.

Only a wake-up: the reader's periodic full rescan stays the source of truth (events are lost
on network shares and when the kernel's event queue overflows). The watch asks for the events
that can make work (a file created, written and closed, or renamed in), not the ones our own
claims cause (a file renamed out), and :meth:`FolderWatch.wait` polls the descriptor itself.

This replaced watchdog, which ran two threads that turned every event of the folder into
Python objects (a move grouper with a delay queue among them) to set one flag: about 0.25 ms of
CPU per arriving chunk in the inner agent, and thread hand-offs on the path of every mail.
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
from pathlib import Path

__all__ = ["FolderWatch"]

# inotify(7) event bits and inotify_init1(2) flags (linux/inotify.h; stable kernel ABI).
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_ONLYDIR = 0x01000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
ARRIVALS = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE
# Pending events are drained in reads of this size (an event is 16 bytes plus its name).
DRAIN_BYTES = 64 * 1024


class FolderWatch:
    """One inotify descriptor watching one folder for arrivals. Not thread-safe: one waiter."""

    def __init__(self, folder: Path) -> None:
        """Raises OSError when the platform or the kernel's limits give no watch."""
        libc = ctypes.CDLL(None, use_errno=True)
        try:
            init, add_watch = libc.inotify_init1, libc.inotify_add_watch
        except AttributeError:
            raise OSError(errno.ENOSYS, "no inotify on this platform") from None
        fd = init(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise _last_error("inotify_init1")
        if add_watch(fd, os.fsencode(folder), ARRIVALS | IN_ONLYDIR) < 0:
            error = _last_error(f"inotify_add_watch {folder}")
            os.close(fd)
            raise error
        self._fd: int | None = fd
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)

    def wait(self, timeout_s: float) -> bool:
        """Sleep until a file arrives or ``timeout_s`` passes; True when woken by an arrival
        (also one that came since the last wait). The events are consumed."""
        fd = self._fd
        if fd is None or not self._poll.poll(max(0, int(timeout_s * 1000))):
            return False
        while True:  # drain: one wake-up for everything that arrived meanwhile
            try:
                if not os.read(fd, DRAIN_BYTES):
                    return True
            except BlockingIOError:
                return True

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _last_error(what: str) -> OSError:
    code = ctypes.get_errno()
    return OSError(code, f"{what}: {os.strerror(code)}")
