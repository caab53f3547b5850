"""``WebProcess``: the agent's side of its web process. Start it (after the agent's own
start-up) and wait until it serves; wake the worker when it says a decision was stored;
start it again when it dies, after a back-off, logged; stop it with the agent.

The listening socket is the agent's: bound before the child starts (a busy port is the
agent's start-up error, as before), passed to every child, and kept open across restarts,
so clients connecting while a new child starts wait in the socket's backlog instead of
being refused. The child dies with the agent: it asks the kernel for SIGKILL when the agent
ends (``PR_SET_PDEATHSIG``), and stops when the agent's end of the channel closes. (The
kernel sends that signal when the *thread* that started the child ends, so the child is
started from the event loop's thread, which lives as long as the agent's outbound service.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from inner_agent.webproc.channel import MAX_MESSAGE_BYTES, Failed, Message, Ready, Wake, decode
from inner_agent.webproc.errors import ChannelRefused, WebProcessFailed
from inner_agent.webproc.spec import WebSpec

__all__ = ["FIRST_RESTART_S", "MAX_RESTART_S", "START_TIMEOUT_S", "STOP_TIMEOUT_S", "WebProcess"]

log = logging.getLogger(__name__)

# A child importing the web stack on a loaded two-core machine takes a few seconds; one that
# has not served after this long is stopped and counts as failed.
START_TIMEOUT_S = 60.0
# SIGTERM, then this long (the child gives requests in flight 5 s), then SIGKILL.
STOP_TIMEOUT_S = 10.0
# Restarts wait 1, 2, 4 ... 60 s; a child that served this long counts as healthy again.
FIRST_RESTART_S = 1.0
MAX_RESTART_S = 60.0
HEALTHY_AFTER_S = 60.0
# Wakes from the child run the worker's pass at most this often: a compromised child cannot
# make the agent spin, and decisions a moment apart share one pass.
MIN_WAKE_GAP_S = 0.02
# Records read per readiness callback, so a flooding child cannot hold the event loop.
MAX_RECORDS_PER_READ = 64


class WebProcess:
    def __init__(
        self,
        spec: WebSpec,
        listener: socket.socket,
        *,
        on_wake: Callable[[], None],
        before_restart: Callable[[], Awaitable[object]] | None = None,
        start_timeout_s: float = START_TIMEOUT_S,
    ) -> None:
        self.spec, self.listener = spec, listener
        self.on_wake, self.before_restart = on_wake, before_restart
        self.start_timeout_s = start_timeout_s
        self.restarts = 0  # how many times it was started again (tests, status)
        self._process: asyncio.subprocess.Process | None = None
        self._control: socket.socket | None = None
        self._answer: asyncio.Future[Ready | Failed] | None = None
        self._supervising: asyncio.Task[None] | None = None
        self._stopping = False
        self._started_at = 0.0
        self._delay = FIRST_RESTART_S
        self._last_wake = 0.0
        self._wake_later: asyncio.TimerHandle | None = None
        self._refused = 0

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    async def start(self) -> None:
        """Start the child and wait until it serves; WebProcessFailed (in its own words, or
        how it ended) when it does not, with nothing left running."""
        await self._spawn()
        self._supervising = asyncio.create_task(self._supervise(), name="web-process")

    async def stop(self) -> None:
        self._stopping = True
        if self._supervising is not None:
            self._supervising.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervising
        if self._process is not None:
            await _end(self._process)
        self._close_control()
        if self._wake_later is not None:
            self._wake_later.cancel()

    # ----------------------------------------------------------------------------- start

    async def _spawn(self) -> None:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setblocking(False)
        self._close_control()
        self._control, self._answer = ours, loop.create_future()
        try:
            self._process = await asyncio.create_subprocess_exec(
                *self._command(theirs), stdin=asyncio.subprocess.PIPE,
                pass_fds=(self.listener.fileno(), theirs.fileno()),
                start_new_session=True,  # the terminal's Ctrl-C is the agent's to handle
            )  # fmt: skip
        finally:
            theirs.close()
        self._started_at = time.monotonic()
        loop.add_reader(ours.fileno(), self._readable)
        try:
            await asyncio.wait_for(self._until_served(self._process), self.start_timeout_s)
        except BaseException as exc:
            await _end(self._process)
            self._close_control()
            if isinstance(exc, TimeoutError):
                limit = f"{self.start_timeout_s:.0f} s"
                raise WebProcessFailed(f"it did not serve within {limit}") from None
            raise

    def _command(self, theirs: socket.socket) -> list[str]:
        return [
            sys.executable, "-m", "inner_agent.webproc",
            "--listen-fd", str(self.listener.fileno()), "--control-fd", str(theirs.fileno()),
            "--parent", str(os.getpid()), "--nice", str(self.spec.outbound.web.nice),
        ]  # fmt: skip

    async def _until_served(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdin is not None  # made with stdin=PIPE just above
        try:
            with contextlib.suppress(ConnectionError):  # it died first: said below
                process.stdin.write(self.spec.to_bytes())
                await process.stdin.drain()
        finally:  # also when cancelled: a child left reading its spec would outlive a stop
            process.stdin.close()
        assert self._answer is not None  # made in _spawn
        ended = asyncio.ensure_future(process.wait())
        first: set[asyncio.Future[Any]] = {self._answer, ended}
        try:
            await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
        if not self._answer.done():
            self._readable()  # a last word sent just before it exited
        if not self._answer.done():
            raise WebProcessFailed(f"it {_how(process.returncode)} before serving")
        answer = self._answer.result()
        if isinstance(answer, Failed):
            raise WebProcessFailed(answer.error)
        log.info("web process %d serving on %s (nice +%d)", process.pid,
                 self.spec.outbound.web.listen, self.spec.outbound.web.nice)  # fmt: skip

    # ----------------------------------------------------------------------------- channel

    def _readable(self) -> None:
        control = self._control
        if control is None:
            return
        for _ in range(MAX_RECORDS_PER_READ):
            try:
                record = control.recv(MAX_MESSAGE_BYTES + 1)
            except BlockingIOError:
                return
            except OSError:
                record = b""
            if not record:  # the child's end closed: it is ending; _supervise sees it
                asyncio.get_running_loop().remove_reader(control.fileno())
                return
            try:
                self._received(decode(record))
            except ChannelRefused as refused:
                self._refused += 1
                if self._refused & (self._refused - 1) == 0:  # 1, 2, 4, 8 ...: bounded log
                    log.warning("web process %s: %s (%d so far)", self.pid, refused,
                                self._refused)  # fmt: skip

    def _received(self, message: Message) -> None:
        if isinstance(message, Wake):
            self._wake()
        elif self._answer is not None and not self._answer.done():
            self._answer.set_result(message)

    def _wake(self) -> None:
        now = time.monotonic()
        if now - self._last_wake >= MIN_WAKE_GAP_S:
            self._last_wake = now
            self.on_wake()
        elif self._wake_later is None:
            delay = MIN_WAKE_GAP_S - (now - self._last_wake)
            self._wake_later = asyncio.get_running_loop().call_later(delay, self._woken_later)

    def _woken_later(self) -> None:
        self._wake_later = None
        self._wake()

    def _close_control(self) -> None:
        if self._control is not None:
            with contextlib.suppress(ValueError, RuntimeError):
                asyncio.get_running_loop().remove_reader(self._control.fileno())
            self._control.close()
            self._control = None

    # ----------------------------------------------------------------------------- restarts

    async def _supervise(self) -> None:
        while True:
            assert self._process is not None  # started before supervising
            code = await self._process.wait()
            if self._stopping:
                return
            delay = self._next_delay(time.monotonic() - self._started_at)
            log.error("web process %d %s; starting it again in %.0f s", self._process.pid,
                      _how(code), delay)  # fmt: skip
            self._close_control()
            await asyncio.sleep(delay)
            await self._restart()

    async def _restart(self) -> None:
        if self.before_restart is not None:
            try:
                await self.before_restart()
            except Exception:
                log.exception("before starting the web process again")
        self.restarts += 1
        try:
            await self._spawn()
        except (WebProcessFailed, OSError) as exc:
            log.error("web process did not start again: %s", exc)

    def _next_delay(self, served_s: float) -> float:
        if served_s >= HEALTHY_AFTER_S:
            self._delay = FIRST_RESTART_S
        delay, self._delay = self._delay, min(self._delay * 2, MAX_RESTART_S)
        return delay


async def _end(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT_S; waits for it."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            log.warning("web process %d did not stop within %.0f s: killed", process.pid,
                        STOP_TIMEOUT_S)  # fmt: skip
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


def _how(code: int | None) -> str:
    if code is None:
        return "is still running"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"
