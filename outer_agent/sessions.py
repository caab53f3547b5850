"""SMTP sessions: how many there are (overall and per client address), and how long one may
sit idle.

**Counts.** ``SessionCounter`` lives in shared memory made before the acceptor processes fork
(``outer_agent.acceptors``), so every process sees the same numbers; one lock guards them.
Addresses are counted exactly, in an open-addressing table (linear probing, entries shifted
back on removal, so no tombstones) with room for ``max_addresses`` addresses at a load of at
most one half. Two addresses never share a count: an attacker cannot lock a partner out by
opening sessions from addresses that hash alike, as the 4,096 hashed slots used before allowed
(issue 15.7). The table never evicts: when it holds ``max_addresses`` addresses, a new address
is refused with 421 while the ones held keep their counts. By default ``max_addresses`` is
``max_sessions``: every address held has a session, so the overall limit is reached first.
The hash is keyed with a secret drawn at start, so probe chains cannot be lengthened on purpose.

**Idle time.** ``IdleTimeouts.limit_s`` says how long a session waiting for its next command
may stay: the long ``[smtp] timeout_s`` inside a mail transaction (after MAIL), the short
``idle_timeout_s`` outside one (before MAIL, and between mails), and at most
``stress_timeout_s`` for every waiting session while the intake is under stress (sessions at
``stress_fraction`` of ``max_sessions``): Postfix's ``smtpd_timeout`` stress variant.

Pure apart from the shared memory and its lock.
"""

from __future__ import annotations

import enum
import hashlib
import math
import multiprocessing
import os
import socket
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["IdleTimeouts", "Refusal", "SessionCounter", "SessionLimits", "address_key"]

# Words per table entry: the address as two 64-bit halves, its session count, its home slot.
ENTRY_WORDS = 4
_KEY_HIGH, _KEY_LOW, _COUNT, _HOME = range(ENTRY_WORDS)
# IPv4 addresses are counted as IPv4-mapped IPv6 (::ffff:a.b.c.d): one key space for both.
_IPV4_MAPPED = 0xFFFF << 32
# Addresses whose key and home slot a process remembers (hashing costs more than the count);
# the memory is emptied when full, so a flood of addresses cannot grow it.
LOCATION_CACHE = 4096


class Refusal(enum.Enum):
    """Why a new session is refused; the value is the greeting it gets before the hang-up."""

    TOO_MANY_SESSIONS = "421 4.7.0 Too many connections, try again later"
    TOO_MANY_FROM_ADDRESS = "421 4.7.0 Too many connections from your address, try again later"
    TOO_MANY_ADDRESSES = "421 4.7.0 Too many client addresses connected, try again later"


class SessionLimits(Protocol):
    """What the counter needs of ``smtp.IntakeLimits``."""

    @property
    def max_sessions(self) -> int: ...

    @property
    def max_sessions_per_ip(self) -> int: ...

    @property
    def stress_fraction(self) -> float: ...


@dataclass(frozen=True)
class IdleTimeouts:
    """Seconds a session waiting for a command may stay (see the module's docstring)."""

    transaction_s: float  # [smtp] timeout_s: after MAIL, until the mail is done
    no_transaction_s: float  # [smtp] idle_timeout_s: before MAIL and between mails
    stress_s: float  # [smtp] stress_timeout_s: every waiting session, under stress

    def limit_s(self, *, in_transaction: bool, stressed: bool) -> float:
        limit = self.transaction_s
        if not in_transaction:
            limit = min(limit, self.no_transaction_s)
        return min(limit, self.stress_s) if stressed else limit


def address_key(ip: str) -> int:
    """The 128-bit key an address is counted under; IPv4 and its IPv4-mapped form are one."""
    text = ip.partition("%")[0]  # an IPv6 zone is not part of the address
    try:
        return _IPV4_MAPPED | int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except OSError:
        pass
    try:
        key = int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big")
    except OSError:  # not an IP (a Unix socket's peer): a stable stand-in of the same width
        return int.from_bytes(hashlib.blake2b(ip.encode(), digest_size=16).digest(), "big")
    return key  # an IPv4-mapped IPv6 address is already the IPv4 key


class SessionCounter:
    """Concurrent sessions overall and per client address, exact, shared by the acceptors."""

    def __init__(
        self, limits: SessionLimits, context: Any = None, *, max_addresses: int | None = None
    ) -> None:
        context = context or multiprocessing.get_context("fork")
        self.limits = limits
        self.max_addresses = max_addresses or limits.max_sessions
        self._slots = 1 << (2 * self.max_addresses - 1).bit_length()  # load at most one half
        self._mask = self._slots - 1
        self._stress_at = max(1, math.ceil(limits.stress_fraction * limits.max_sessions))
        self._secret = os.urandom(16)  # drawn before the fork: every acceptor hashes alike
        self._lock = context.Lock()
        self._totals = context.RawArray("q", 2)  # [0]: sessions, [1]: addresses held
        self._table = context.RawArray("Q", ENTRY_WORDS * self._slots)
        self._locations: dict[str, tuple[int, int]] = {}  # per process: ip -> (key, home)

    def enter(self, ip: str) -> Refusal | None:
        """Count a new session from ``ip``; the refusal instead when a limit is reached."""
        key, home = self._locate(ip)
        with self._lock:
            if self._totals[0] >= self.limits.max_sessions:
                return Refusal.TOO_MANY_SESSIONS
            index, found = self._find(key, home)
            base = index * ENTRY_WORDS
            if found and self._table[base + _COUNT] >= self.limits.max_sessions_per_ip:
                return Refusal.TOO_MANY_FROM_ADDRESS
            if not found:
                if self._totals[1] >= self.max_addresses:
                    return Refusal.TOO_MANY_ADDRESSES  # full: held counts are never evicted
                self._table[base + _KEY_HIGH] = key >> 64
                self._table[base + _KEY_LOW] = key & (2**64 - 1)
                self._table[base + _HOME] = home
                self._totals[1] += 1
            self._table[base + _COUNT] += 1
            self._totals[0] += 1
        return None

    def leave(self, ip: str) -> None:
        """Uncount a session that ``enter`` counted."""
        key, home = self._locate(ip)
        with self._lock:
            index, found = self._find(key, home)
            if not found:  # never counted (a bug of ours): nothing to give back
                return
            self._totals[0] -= 1
            self._table[index * ENTRY_WORDS + _COUNT] -= 1
            if self._table[index * ENTRY_WORDS + _COUNT] == 0:
                self._totals[1] -= 1
                self._remove(index)

    def count(self, ip: str) -> int:
        """Sessions counted for ``ip`` now."""
        key, home = self._locate(ip)
        with self._lock:
            index, found = self._find(key, home)
            return int(self._table[index * ENTRY_WORDS + _COUNT]) if found else 0

    @property
    def total(self) -> int:
        return int(self._totals[0])

    @property
    def stressed(self) -> bool:
        """Sessions at ``stress_fraction`` of ``max_sessions`` or more (read without the lock:
        a moment's staleness only moves a timeout by one sweep)."""
        return bool(self._totals[0] >= self._stress_at)

    def _locate(self, ip: str) -> tuple[int, int]:
        """(key, home slot) of ``ip``, remembered for the next session from it."""
        location = self._locations.get(ip)
        if location is None:
            if len(self._locations) >= LOCATION_CACHE:
                self._locations.clear()
            key = address_key(ip)
            location = self._locations[ip] = (key, self._home(key))
        return location

    def _home(self, key: int) -> int:
        digest = hashlib.blake2b(key.to_bytes(16, "big"), digest_size=8, key=self._secret)
        return int.from_bytes(digest.digest(), "big") & self._mask

    def _find(self, key: int, home: int) -> tuple[int, bool]:
        """(index of ``key``'s entry, True) or (the empty slot that ends its probe, False)."""
        table, high, low = self._table, key >> 64, key & (2**64 - 1)
        index = home
        while table[index * ENTRY_WORDS + _COUNT]:  # the load of one half keeps an empty slot
            base = index * ENTRY_WORDS
            if table[base + _KEY_HIGH] == high and table[base + _KEY_LOW] == low:
                return index, True
            index = (index + 1) & self._mask
        return index, False

    def _remove(self, index: int) -> None:
        """Empty entry ``index``, moving later entries of the probe run back into the hole so
        every remaining key is still found from its home slot."""
        table, mask, hole, probe = self._table, self._mask, index, index
        while True:
            probe = (probe + 1) & mask
            base = probe * ENTRY_WORDS
            if table[base + _COUNT] == 0:
                break
            home = table[base + _HOME]
            if (probe - home) & mask >= (probe - hole) & mask:  # the hole lies on its probe path
                target = hole * ENTRY_WORDS
                table[target : target + ENTRY_WORDS] = table[base : base + ENTRY_WORDS]
                hole = probe
        table[hole * ENTRY_WORDS + _COUNT] = 0
