"""A thread that runs one pass of durable work every interval until it is stopped.

The agents' background duties (delivery, the archive copy, held mail's expiry, the mail
index's catch-up) share one shape: do a pass, sleep, repeat. Their work is durable (a queue on
disk, a position in a database), so a pass that fails loses nothing: it is logged with what
failed and the next pass tries again, and the thread never dies silently behind a stale queue.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["PeriodicPass"]

log = logging.getLogger(__name__)


class PeriodicPass:
    """Run ``one_pass`` every ``interval_s`` seconds in a daemon thread named ``name``.

    ``stopping`` is shared with the owner, so a long pass can look at it and end early;
    ``stop`` sets it and waits for the pass in hand to finish.
    """

    def __init__(
        self,
        name: str,
        one_pass: Callable[[], object],
        interval_s: Callable[[], float],
        failed: str,
        stopping: threading.Event,
    ) -> None:
        self.name, self.one_pass, self.interval_s, self.failed = name, one_pass, interval_s, failed
        self.stopping = stopping
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                self.one_pass()
            except Exception:  # durable work: the next pass tries again
                log.exception("%s; trying again in %.0f s", self.failed, self.interval_s())
            self.stopping.wait(self.interval_s())
