"""Fixtures for the outer agent: an SMTP intake running in its own event-loop thread."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from outer_agent.sessions import SessionCounter
from outer_agent.smtp import (
    IntakeHandler,
    IntakeLimits,
    IntakeServer,
    SpoolCommitter,
    intake_event_loop,
)
from outer_agent.spool import Envelope, Spool


@dataclass
class RunningIntake:
    port: int
    spool: Spool
    committed: list[Envelope] = field(default_factory=list)


class LoopThread:
    """The intake's own event loop (uvloop, as the agent runs it) in a thread."""

    def __init__(self) -> None:
        self.loop = intake_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro):  # run a coroutine in the loop and wait for it
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def start_intake(
    tmp_path: Path,
    *,
    domains=("corp.example",),
    max_message_bytes=100_000,
    max_recipients=5,
    max_sessions=10,
    max_sessions_per_ip=5,
    min_free_bytes=0,
    tls: ssl.SSLContext | None = None,
    require_tls: bool = False,
    acceptors: int = 1,
    **timeouts: float,
):
    """An intake on a free port; ``timeouts`` are IntakeLimits' idle and stress settings.

    With ``acceptors`` > 1, that many servers (each in its own event-loop thread) share the
    port (SO_REUSEPORT) and one SessionCounter, as the agent's acceptor processes do.
    """
    spool = Spool(tmp_path / "spool", min_free_bytes=min_free_bytes)
    running = RunningIntake(port=0, spool=spool)
    committer = SpoolCommitter(spool, on_committed=lambda env, size: running.committed.append(env))
    limits = IntakeLimits(
        frozenset(domains),
        max_message_bytes,
        max_recipients,
        max_sessions,
        max_sessions_per_ip,
        require_tls,
        **timeouts,
    )
    counter = SessionCounter(limits)
    servers: list[tuple[IntakeServer, LoopThread]] = []
    for _ in range(acceptors):
        server = IntakeServer(
            IntakeHandler(limits, spool, committer),
            host="127.0.0.1",
            port=running.port,
            hostname="outer.test",
            tls_context=tls,
            reuse_port=acceptors > 1,
            counter=counter,
        )
        loop = LoopThread()
        loop.call(server.start())
        running.port = server.port
        servers.append((server, loop))

    def stop() -> None:
        for server, loop in servers:
            loop.call(server.stop())
            loop.close()
        committer.close()

    return running, stop


@pytest.fixture
def intake(tmp_path: Path) -> Iterator[RunningIntake]:
    running, stop = start_intake(tmp_path)
    yield running
    stop()
