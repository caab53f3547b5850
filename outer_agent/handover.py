"""Rendered packages on their way to the publisher: a bounded FIFO with one consumer that may
look at the waiting packages before it takes them.

Render threads put packages (waiting while it is full, so a stuck link holds only a few in
memory); the publisher takes the first and looks at the ones behind it to publish them together
(group commit), taking them only once they are published. Packages it looked at but could not
publish stay where they were, counted against the bound.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Handover"]

T = TypeVar("T")


class Handover(Generic[T]):
    """At most ``capacity`` items waiting (the consumer's taken item not counted)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: deque[T] = deque()
        self._changed = threading.Condition()

    def put(self, item: T, timeout_s: float | None = None) -> bool:
        """Queue ``item``; False when still full after ``timeout_s`` (None: wait for room)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._changed:
            while len(self._items) >= self.capacity:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._changed.wait(remaining)
            self._items.append(item)
            self._changed.notify_all()
        return True

    def take(self, timeout_s: float) -> T | None:
        """The first item, removed; None when nothing came within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while not self._items:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._changed.wait(remaining)
            item = self._items.popleft()
            self._changed.notify_all()
            return item

    def look(self, limit: int, until: float, more_coming: Callable[[], bool]) -> list[T]:
        """Up to ``limit`` waiting items, left in place; while fewer wait and ``more_coming()``,
        waits for more until the monotonic time ``until``."""
        with self._changed:
            while len(self._items) < limit and more_coming():
                remaining = until - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            return [self._items[index] for index in range(min(limit, len(self._items)))]

    def drop(self, count: int) -> None:
        """Remove the first ``count`` items (ones the consumer looked at and has handled)."""
        with self._changed:
            for _ in range(count):
                self._items.popleft()
            self._changed.notify_all()
