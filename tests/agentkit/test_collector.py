"""The agents' collector settings after start-up (agentkit.collector)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from agentkit.collector import YOUNG_THRESHOLD, settle_collector


@pytest.fixture
def collector_restored() -> Iterator[None]:
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("collector_restored")
def test_settling_freezes_what_start_up_made_and_raises_only_the_young_threshold() -> None:
    default_middle, default_old = gc.get_threshold()[1:]
    made_at_start_up = {"config": [1, 2, 3]}
    settle_collector()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (YOUNG_THRESHOLD, default_middle, default_old)
    assert not gc.is_tracked(made_at_start_up) or made_at_start_up not in gc.get_objects()


@pytest.mark.usefixtures("collector_restored")
def test_cycles_made_after_settling_are_still_collected() -> None:
    settle_collector()

    class Node:
        partner: object = None

    first, second = Node(), Node()
    first.partner, second.partner = second, first
    del first, second
    assert gc.collect() >= 2
