"""Opening an agent's state waits out a full disk instead of crashing."""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

import pytest

from agentkit.startup import open_state


def test_failures_are_retried_until_the_state_opens(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    attempts: list[int] = []

    def opener() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError(28, "No space left on device")
        if len(attempts) == 2:
            raise sqlite3.OperationalError("database or disk is full")
        return "state"

    with caplog.at_level(logging.INFO, logger="agentkit.startup"):
        assert open_state(opener, tmp_path, retry_s=0.01) == "state"
    assert len(attempts) == 3
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2
    assert "No space left on device" in errors[0]
    assert str(tmp_path) in errors[0]
    assert "database or disk is full" in errors[1]


def test_a_stop_ends_the_wait() -> None:
    stop = threading.Event()

    def opener() -> str:
        stop.set()  # e.g. SIGTERM while the disk is still full
        raise OSError(28, "No space left on device")

    assert open_state(opener, Path("/state"), stop=stop, retry_s=30) is None


def test_other_errors_are_not_swallowed() -> None:
    def opener() -> str:
        raise ValueError("a bug, not the disk")

    with pytest.raises(ValueError, match="a bug"):
        open_state(opener, Path("/state"), retry_s=0.01)


def test_a_permission_error_is_raised_at_once_not_waited_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 22: an unwritable spool is the administrator's to fix; retrying it forever while
    blaming a full disk hid that."""
    attempts: list[int] = []

    def opener() -> str:
        attempts.append(1)
        raise PermissionError(13, "Permission denied", "/state/inbound")

    with pytest.raises(PermissionError, match="Permission denied"):
        open_state(opener, Path("/state"), retry_s=0.01)
    assert attempts == [1]
    assert "disk full" not in caplog.text
