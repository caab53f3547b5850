"""The agents' periodic passes: a failing pass is logged and the next one runs."""

import logging
import threading

import pytest

from agentkit.periodic import PeriodicPass


def test_a_failing_pass_is_logged_and_the_next_pass_runs(caplog: pytest.LogCaptureFixture) -> None:
    passes: list[int] = []
    third = threading.Event()

    def one_pass() -> None:
        passes.append(len(passes))
        if len(passes) == 1:
            raise OSError("disk full")
        if len(passes) == 3:
            third.set()

    runner = PeriodicPass(
        "test-pass", one_pass, lambda: 0.01, "test pass failed", threading.Event()
    )
    with caplog.at_level(logging.ERROR, logger="agentkit.periodic"):
        runner.start()
        assert third.wait(5)
        runner.stop()
    assert [r.getMessage() for r in caplog.records] == ["test pass failed; trying again in 0 s"]
    assert "disk full" in caplog.text


def test_stop_waits_for_the_pass_in_hand_and_no_pass_follows() -> None:
    stopping = threading.Event()
    entered, release = threading.Event(), threading.Event()
    passes: list[str] = []

    def one_pass() -> None:
        passes.append("start")
        entered.set()
        release.wait(5)
        passes.append("end")

    runner = PeriodicPass("test-pass", one_pass, lambda: 0.01, "failed", stopping)
    runner.start()
    assert entered.wait(5)
    stopper = threading.Thread(target=runner.stop)
    stopper.start()
    stopper.join(0.2)
    assert stopper.is_alive()  # still waiting for the pass in hand
    release.set()
    stopper.join(5)
    assert not stopper.is_alive()
    assert passes == ["start", "end"]
    assert stopping.is_set()
