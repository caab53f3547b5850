"""Fixtures of the inner-agent tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller

from maildiode.trial.stack import free_port
from tests.inner.smtpsink import FaultySink


@pytest.fixture
def sink() -> Iterator[tuple[FaultySink, int]]:
    handler, port = FaultySink(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()
