"""Opening an agent's state at start-up, waiting out a full or failing disk.

An agent that cannot open its databases (the disk is full, a volume is not mounted yet) must
not die in a crash loop with a traceback: nothing is lost while it waits, because the mail
stays where it is (the receive folder, the senders' queues), so it says plainly what is wrong
and tries again until it can, or until it is told to stop.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

__all__ = ["STATE_RETRY_S", "open_state"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# How long to wait between attempts to open the state.
STATE_RETRY_S = 5.0


def open_state(
    opener: Callable[[], T],
    where: Path,
    *,
    stop: threading.Event | None = None,
    retry_s: float = STATE_RETRY_S,
) -> T | None:
    """``opener()``, tried again every ``retry_s`` while it fails with a disk or database
    error; None if ``stop`` is set first. ``opener`` must clean up after itself on failure.
    A permission error is raised at once: no wait mends it."""
    stop = stop or threading.Event()
    failures = 0
    while not stop.is_set():
        try:
            state = opener()
        except PermissionError:
            # An administrator's mistake (a folder of root's, a read-only mode): waiting does not
            # mend it, and "is the disk full?" would blame the wrong thing. The caller says it
            # in one line (maildiode.commands.agent_start).
            raise
        except (OSError, sqlite3.Error) as exc:
            failures += 1
            log.error(
                "cannot open the agent's state in %s (%s): is the disk full or the volume "
                "missing? Nothing is lost, mail waits where it is; trying again in %.0f s "
                "(attempt %d)", where, exc, retry_s, failures,
            )  # fmt: skip
            stop.wait(retry_s)
            continue
        if failures:
            log.info("opened the agent's state in %s after %d failed attempt(s)", where, failures)
        return state
    return None
