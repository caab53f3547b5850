"""Child processes that handle hostile input under limits: the plumbing both pools share.

The render workers (:mod:`mailsafe.render.pool`), the attachment reader
(:mod:`mailsafe.extract.isolated`) and the sender-authentication reader
(:mod:`mailsafe.senderauth.isolated`, through :class:`ChildPool`) each run a ``python -m``
child that reads length-prefixed
frames on stdin and answers on stdout, with an address-space limit, a CPU limit re-armed per
job, no core files, and a wall-clock deadline kept by the parent. Only bytes cross; the parent
treats every reply as untrusted. Frame: a 4-byte big-endian length, then the payload.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import resource
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO

__all__ = [
    "FRAME_LENGTH",
    "STOP_GRACE_SECONDS",
    "ChildFailed",
    "ChildPool",
    "arm_cpu_limit",
    "death_reason",
    "exchange",
    "kill_child",
    "read_exact",
    "read_until",
    "serve_frames",
    "set_limits",
    "widen_pipe",
    "write_frame",
]

FRAME_LENGTH = struct.Struct(">I")
# A child still alive this long after being told to stop is killed.
STOP_GRACE_SECONDS = 2.0


class ChildFailed(Exception):
    """The child died, hit a limit or ran out of time; ``reason`` is a reason code."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# fcntl(2) F_SETPIPE_SZ (Linux): a pipe that holds a whole reply lets the child write it in one
# go and the parent read it in one, instead of a context switch per 64 KiB.
F_SETPIPE_SZ = 1031
PIPE_BYTES = 1 << 20  # the default /proc/sys/fs/pipe-max-size


def widen_pipe(stream: IO[bytes] | None) -> None:
    """Make a pipe ``PIPE_BYTES`` deep where the platform allows (a no-op elsewhere)."""
    if stream is not None:
        with contextlib.suppress(OSError, AttributeError, ValueError):
            fcntl.fcntl(stream.fileno(), F_SETPIPE_SZ, PIPE_BYTES)


def write_frame(stream: IO[bytes], payload: bytes) -> None:
    stream.write(FRAME_LENGTH.pack(len(payload)) + payload)
    stream.flush()


def read_exact(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if data is None or len(data) != size:
        raise EOFError("pipe closed")
    return data


# --------------------------------------------------------------------------- child side


def set_limits(memory_bytes: int | None) -> None:
    if memory_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core files of hostile content


def arm_cpu_limit(cpu_seconds: int) -> None:
    """RLIMIT_CPU counts the process's whole life: move the soft limit to now + budget."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    now = int(used.ru_utime + used.ru_stime) + 1
    _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(resource.RLIMIT_CPU, (now + cpu_seconds, hard))


def frames_only_stdout() -> IO[bytes]:
    """The reply pipe, on a descriptor of its own; descriptor 1 then points at stderr.

    Nothing but frames may reach the parent's pipe, and rebinding ``sys.stdout`` is not enough:
    a library can hold the old stream object (PyMuPDF keeps ``sys.stdout`` from its import and
    prints MuPDF's CSS warnings there) or write to descriptor 1 from C. Either used to put text
    into a reply frame, and the mail became "not displayable" (``bad_package``)."""
    sys.stdout.flush()
    frames = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return frames


def serve_frames(answer: Callable[[bytes], bytes], cpu_seconds: int, max_job_bytes: int) -> None:
    """The child's loop: a job frame in, ``answer(job)`` out, until stdin closes. Call after
    :func:`set_limits`; ``answer`` must turn every failure into a reply, never raise."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    stdin, stdout = sys.stdin.buffer, frames_only_stdout()
    while True:
        try:
            (size,) = FRAME_LENGTH.unpack(read_exact(stdin, FRAME_LENGTH.size))
            if size > max_job_bytes:
                return
            job = read_exact(stdin, size)
        except (EOFError, OSError):
            return
        arm_cpu_limit(cpu_seconds)
        reply = answer(job)
        try:
            write_frame(stdout, reply)
        except (OSError, ValueError):
            return


# --------------------------------------------------------------------------- parent side


def exchange(
    process: subprocess.Popen[bytes], job: bytes, wall_seconds: float, max_reply_bytes: int
) -> bytes:
    """Send ``job``, return the untrusted reply; ChildFailed("timeout" | "too_big" | a death
    reason) when the child does not answer in time or in bounds."""
    deadline = time.monotonic() + wall_seconds
    stdin, stdout = process.stdin, process.stdout
    if stdin is None or stdout is None:
        raise ChildFailed("worker_crash")
    try:
        write_frame(stdin, job)
        (untrusted_size,) = FRAME_LENGTH.unpack(read_until(stdout, FRAME_LENGTH.size, deadline))
        if untrusted_size > max_reply_bytes:
            raise ChildFailed("too_big")
        return read_until(stdout, untrusted_size, deadline)
    except TimeoutError as exc:
        raise ChildFailed("timeout") from exc
    except (EOFError, OSError, ValueError) as exc:
        raise ChildFailed(death_reason(process)) from exc


def read_until(stream: IO[bytes], size: int, deadline: float) -> bytes:
    """Read exactly ``size`` bytes from a pipe before ``deadline`` (monotonic seconds)."""
    fd = stream.fileno()
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            raise TimeoutError
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise EOFError("worker closed its pipe")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def death_reason(process: subprocess.Popen[bytes]) -> str:
    try:
        code = process.wait(STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        return "worker_crash"
    if code == -signal.SIGXCPU:
        return "cpu_limit"
    return "worker_crash"


def kill_child(process: subprocess.Popen[bytes]) -> None:
    """Kill the child's whole process group (Chromium children too) and close its pipes."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(STOP_GRACE_SECONDS)


class ChildPool:
    """``size`` children of one command (each runs :func:`serve_frames`), one job at a time
    each. ``run`` blocks for an idle child, is thread-safe, and raises ChildFailed when the
    child fails on the job; that child is killed (its whole group) and replaced."""

    def __init__(self, command: Sequence[str], size: int) -> None:
        self._command = list(command)
        self._idle: queue.Queue[subprocess.Popen[bytes]] = queue.Queue()
        self._all: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()
        self._closed = False
        for _ in range(size):
            self._idle.put(self._start())

    def _start(self) -> subprocess.Popen[bytes]:
        child = subprocess.Popen(
            self._command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,  # its own process group: a kill takes all of it
        )
        with self._lock:
            self._all.add(child)
        return child

    def run(self, job: bytes, wall_seconds: float, max_reply_bytes: int) -> bytes:
        """The untrusted reply of an idle child to ``job``."""
        if self._closed:
            raise RuntimeError("ChildPool is closed")
        child = self._idle.get()
        try:
            untrusted_reply = exchange(child, job, wall_seconds, max_reply_bytes)
        except ChildFailed:
            self._replace(child)
            raise
        self._idle.put(child)
        return untrusted_reply

    def _replace(self, child: subprocess.Popen[bytes]) -> None:
        kill_child(child)
        with self._lock:
            self._all.discard(child)
        if not self._closed:
            self._idle.put(self._start())

    def close(self) -> None:
        """Stop every child."""
        self._closed = True
        with self._lock:
            children = list(self._all)
            self._all.clear()
        for child in children:
            kill_child(child)
