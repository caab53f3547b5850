"""The bounded hand-over from render threads to the publisher."""

from __future__ import annotations

import threading
import time

from outer_agent.handover import Handover


def test_items_come_out_in_order_and_a_full_handover_makes_putters_wait() -> None:
    handover: Handover[int] = Handover(2)
    assert handover.put(1, 0)
    assert handover.put(2, 0)
    assert handover.put(3, 0.05) is False  # full
    assert handover.take(1.0) == 1
    assert handover.put(3, 0)
    assert [handover.take(1.0), handover.take(1.0)] == [2, 3]
    assert handover.take(0.05) is None  # nothing came


def test_looked_at_items_stay_counted_until_dropped() -> None:
    """The publisher looks at the packages behind the one in hand and takes them only once
    they are published: until then they hold their places against the bound."""
    handover: Handover[str] = Handover(3)
    for item in "abc":
        handover.put(item)
    first = handover.take(1.0)
    assert handover.look(8, time.monotonic() + 1.0, lambda: False) == ["b", "c"]
    assert handover.put("d", 0) is True  # the taken one freed a place; b and c still hold theirs
    assert handover.put("e", 0) is False
    handover.drop(2)
    assert (first, handover.take(1.0)) == ("a", "d")


def test_look_waits_for_more_while_more_are_coming() -> None:
    handover: Handover[int] = Handover(8)
    handover.put(1)
    threading.Timer(0.05, handover.put, args=(2,)).start()
    assert handover.look(2, time.monotonic() + 5.0, lambda: True) == [1, 2]
    started = time.monotonic()
    assert handover.look(5, time.monotonic() + 0.1, lambda: True) == [1, 2]  # until the deadline
    assert time.monotonic() - started < 2.0
    assert handover.look(5, time.monotonic() + 30.0, lambda: False) == [1, 2]  # none coming
