"""The fencing lease's decisions, without I/O: who may run an agent on a state folder now.

One row in the state says who holds it (``holder``, ``pid``), until when (``expires``, wall
clock, seconds since the epoch: two hosts share no monotonic clock) and under which fencing
token. The token only grows: every take raises it by one, so a write checked against the token
it was started under cannot come from an agent that has since lost the lease.

Decisions for one claimant, given the row as it is now (docs/operations.md, "Standby")::

    no row ----------------------------------------> Taken (token 1)
    my row (holder, pid and my token) -------------> Renewed (same token, new expiry)
    I held it, the row is no longer mine ----------> Lost
    someone's row, expired ------------------------> Taken (token + 1)
    my host's row, its process gone ---------------> Taken (token + 1)   (a restart after kill -9)
    someone's row, not expired --------------------> Held
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Claimant",
    "Decision",
    "Held",
    "Lease",
    "Lost",
    "Renewed",
    "Taken",
    "Terms",
    "decide",
    "renew_every_s",
    "role",
    "still_trusted",
    "trusted_for_s",
]

# The holder trusts its lease for this share of the TTL after a renewal began, and renews
# this often: two hosts' clocks may differ by up to a quarter of the TTL (NTP keeps them
# within milliseconds) and a renewal may fail twice before the holder stops writing.
TRUST_SHARE = 0.75
RENEW_SHARE = 0.25


@dataclass(frozen=True)
class Lease:
    """The row: who holds the state, until when, under which fencing token."""

    holder: str
    pid: int
    token: int
    expires: float


@dataclass(frozen=True)
class Claimant:
    """One agent process asking for the lease: its host's name, its pid, the TTL it asks for."""

    holder: str
    pid: int
    ttl_s: float


@dataclass(frozen=True)
class Terms:
    """What another process of the holder (its web process) knows of the lease it runs under:
    the row it must find, and the TTL it was taken with."""

    holder: str
    pid: int
    token: int
    ttl_s: float


@dataclass(frozen=True)
class Taken:
    lease: Lease
    previous: Lease | None  # whom it was taken from (None: the state was never held)


@dataclass(frozen=True)
class Renewed:
    lease: Lease


@dataclass(frozen=True)
class Held:
    lease: Lease  # someone else's, still valid: refuse (or, as a standby, wait)


@dataclass(frozen=True)
class Lost:
    lease: Lease | None  # what the row says now: the agent must stop writing at once


Decision = Taken | Renewed | Held | Lost


def decide(
    current: Lease | None,
    claimant: Claimant,
    now: float,
    *,
    my_token: int | None = None,
    holder_process_gone: bool = False,
) -> Decision:
    """What ``claimant`` may do with the row ``current`` at wall-clock time ``now``.

    ``my_token``: the token the claimant holds (None when it is asking for the first time).
    ``holder_process_gone``: the row's pid no longer runs on this host (only meaningful when
    the row's holder is the claimant's own host name; the caller checks the process table)."""
    if my_token is not None:
        return _renewal(current, claimant, now, my_token)
    if current is None:
        return Taken(_fresh(claimant, now, token=1), previous=None)
    if current.expires <= now or (current.holder == claimant.holder and holder_process_gone):
        return Taken(_fresh(claimant, now, token=current.token + 1), previous=current)
    return Held(current)


def _renewal(current: Lease | None, claimant: Claimant, now: float, my_token: int) -> Decision:
    if current is None or not _is_mine(current, claimant, my_token):
        return Lost(current)
    return Renewed(_fresh(claimant, now, token=my_token))


def _is_mine(lease: Lease, claimant: Claimant, token: int) -> bool:
    return (lease.holder, lease.pid, lease.token) == (claimant.holder, claimant.pid, token)


def _fresh(claimant: Claimant, now: float, *, token: int) -> Lease:
    return Lease(claimant.holder, claimant.pid, token, now + claimant.ttl_s)


def trusted_for_s(ttl_s: float) -> float:
    """How long after a renewal *began* the holder may still write: less than the TTL, so it
    stops before any standby (with a clock up to a quarter TTL ahead) can take over."""
    return ttl_s * TRUST_SHARE


def renew_every_s(ttl_s: float) -> float:
    return ttl_s * RENEW_SHARE


def still_trusted(current: Lease | None, terms: Terms, now: float) -> bool:
    """Whether the row ``current`` is still the one taken under ``terms`` and, at wall-clock
    ``now``, inside the share of the TTL its holder trusts after a renewal (the row's expiry
    is the renewal's start plus the TTL): the holder's own fence, seen from another process."""
    if current is None:
        return False
    mine = (current.holder, current.pid, current.token) == (terms.holder, terms.pid, terms.token)
    return mine and now < current.expires - terms.ttl_s + trusted_for_s(terms.ttl_s)


def role(current: Lease | None, this_holder: str, now: float) -> str:
    """The role of the agent named ``this_holder`` on a state whose row is ``current``:
    ``active`` (its lease, not expired), ``standby`` (another holder's, not expired: this
    one waits) or ``unheld`` (no row, or expired: the next agent to start takes it)."""
    if current is None or current.expires <= now:
        return "unheld"
    return "active" if current.holder == this_holder else "standby"
