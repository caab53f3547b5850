"""A small fixed pool for password checks: at most ``workers`` run at once, at most ``queue``
wait, the rest are turned away at once (``Busy``) instead of piling up.

A check is argon2 with 64 MiB of memory (or, later, an LDAP bind): forty at once took the
inner agent from 120 MB to 2.4 GB (issue 15.3). The workers lower their own CPU priority
(nice +10 below the listener's, which runs below the agent's), so when the cores are short
the mail path runs first, then the pages, and sign-ins wait.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["Busy", "CheckPool"]

log = logging.getLogger(__name__)

T = TypeVar("T")
# How much lower the workers' CPU priority is than the listener's (Linux: per thread).
WORKER_NICE = 10
MAX_NICE = 19  # the lowest priority there is


class Busy:
    """Every worker busy and the queue full: come back in ``retry_after_s``."""

    def __init__(self, retry_after_s: int) -> None:
        self.retry_after_s = retry_after_s


class CheckPool:
    def __init__(self, workers: int, queue: int) -> None:
        self.workers, self.limit = workers, workers + queue
        self._admitted = 0
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(
            workers, thread_name_prefix="signin-check", initializer=_lower_priority
        )

    async def run(self, check: Callable[..., T], *args: object) -> T | Busy:
        """``check(*args)`` in a worker, or ``Busy`` when the pool and its queue are full."""
        with self._lock:
            if self._admitted >= self.limit:
                return Busy(self._retry_after())
            self._admitted += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, check, *args)
        finally:
            with self._lock:
                self._admitted -= 1

    def _retry_after(self) -> int:
        """Seconds until a place is likely free: one round of the queue, at least one."""
        return max(1, round(self.limit / self.workers))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _lower_priority() -> None:
    """Linux keeps a nice value per thread: lower this worker's alone, from the nice value
    it was made with (the web process's, itself below the agent's), at most to 19."""
    thread = threading.get_native_id()
    try:
        lowered = min(os.getpriority(os.PRIO_PROCESS, thread) + WORKER_NICE, MAX_NICE)
        os.setpriority(os.PRIO_PROCESS, thread, lowered)
    except (AttributeError, OSError) as exc:  # not Linux, or not allowed
        log.debug("sign-in check worker keeps its priority: %s", exc)
