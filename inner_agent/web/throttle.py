"""Sign-ins per client address: a token bucket each, in a bounded map. Pure: the time is
passed in.

Each address may try ``burst`` sign-ins at once, then ``per_minute``. The map holds at most
``max_clients`` addresses; a new one pushes out the one seen longest ago (an attacker with
very many addresses can push out an honest one, whose bucket then starts full again: only
this limit weakens, never the lockout, which is stored).
"""

from __future__ import annotations

import math
from collections import OrderedDict

__all__ = ["ClientBuckets"]

# Far more client addresses than an intranet site sees in an hour; ~100 bytes each.
MAX_CLIENTS = 10_000


class ClientBuckets:
    def __init__(self, per_minute: float, burst: int, max_clients: int = MAX_CLIENTS) -> None:
        self.rate_s, self.burst, self.max_clients = per_minute / 60.0, float(burst), max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at

    def take(self, client: str, now: float) -> int:
        """0 when ``client`` may try now (a token is taken); else the seconds to wait."""
        tokens, at = self._buckets.pop(client, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - at) * self.rate_s)
        if tokens >= 1.0:
            self._keep(client, tokens - 1.0, now)
            return 0
        self._keep(client, tokens, now)
        return max(1, math.ceil((1.0 - tokens) / self.rate_s))

    def waiting(self, client: str, now: float) -> int:
        """Seconds ``client`` must wait before its next try (0: it may try now); takes
        nothing. For limits that count only failures: look first, ``take`` on a failure."""
        tokens, at = self._buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - at) * self.rate_s)
        return 0 if tokens >= 1.0 else max(1, math.ceil((1.0 - tokens) / self.rate_s))

    def _keep(self, client: str, tokens: float, now: float) -> None:
        self._buckets[client] = (tokens, now)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
