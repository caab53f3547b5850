"""Lockout by account and client together, with exponential back-off. Pure: strikes and the
time in, strikes out; ``store.SignInStore`` keeps them across restarts.

A client is a known device (a signed cookie from an earlier sign-in of that account) or else
an address. ``lock_after`` wrong passwords lock the pair for ``lock_first_s``; once it was
locked, each wrong password after the lock ran out locks it again for twice as long, up to
``lock_max_s``. Tries made while locked are refused without being counted (before issue 15.4
they were, so one wrong try every three minutes kept an approver out for ever). A right
password forgets the pair; a pair without a failure for ``FORGET_AFTER_S`` is forgotten too.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FORGET_AFTER_S", "LockPolicy", "Strikes", "after_failure", "locked_for"]

# A day without a wrong password: the pair starts clean (and its row may be dropped).
FORGET_AFTER_S = 86400.0


@dataclass(frozen=True)
class LockPolicy:
    lock_after: int = 5
    first_s: float = 60.0
    max_s: float = 3600.0


@dataclass(frozen=True)
class Strikes:
    failures: int = 0  # wrong passwords since the pair was last clean or locked
    locks: int = 0  # how often the pair was locked since it was last clean
    locked_until: float = 0.0
    updated: float = 0.0  # the last counted failure


def locked_for(strikes: Strikes, now: float) -> float:
    """Seconds the pair stays locked (0: not locked)."""
    return max(0.0, strikes.locked_until - now)


def after_failure(strikes: Strikes, now: float, policy: LockPolicy) -> Strikes:
    """The strikes after a wrong password made while the pair was not locked."""
    if now - strikes.updated >= FORGET_AFTER_S:
        strikes = Strikes()
    failures = strikes.failures + 1
    if strikes.locks == 0 and failures < policy.lock_after:
        return Strikes(failures, 0, strikes.locked_until, now)
    locks = strikes.locks + 1
    lock_s = min(policy.max_s, policy.first_s * 2 ** min(locks - 1, 32))
    return Strikes(0, locks, now + lock_s, now)
