"""Hand commands that write the inner agent's shared state refuse on a standby host (D98).

The running agents write that state only while they hold its fencing lease (D70, D80). A
command run by hand (``maildiode inbound decide``, ``maildiode directory sync`` and
``import``) writes the same state, and a write from the standby host is the second writer
the lease exists to stop: the hold book or the directory the active host's agent acts on,
changed by a host that does not hold the state. So such a command asks the lease row first:

- ``standby`` (another host's unexpired lease): refused, exit :data:`EXIT_STANDBY`, nothing
  written; the message names the holder and says where to run it instead;
- ``active`` (this host's agent holds it) or ``unheld`` (no agent holds it: an installation
  not started yet, or every agent stopped and its lease expired): allowed, as before.

There is no ``--force``: the one case it would serve (the active host dead, its lease not yet
expired) ends by itself within ``[lease] ttl_s``.

The check at the start (:func:`standby_refusal`) refuses early, before any work. The write
itself goes through :func:`fenced_write` (D108, "hand commands fenced through the write"): the
row is read again with the lease's lock held until the write is done, so a standby that took
the lease while the command ran (an LDAP fetch, a file read, a command frozen by SIGSTOP) is
seen and nothing is written, and no standby can take the lease between that look and the
write's commit.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from agentkit.lease import Lease, role
from agentkit.leasekeeper import LEASE_DB, LeaseUnreadable, lease_held_still, read_lease
from inner_agent.config import LeaseSection
from inner_agent.standby import holder_of

__all__ = ["EXIT_STANDBY", "StandbyRefused", "fenced_write", "standby_refusal"]

# As the inner agent's own exit when it lost the lease (maildiode.commands.agent_start): this
# host is not the one that writes the state.
EXIT_STANDBY = 4


class StandbyRefused(Exception):
    """A write refused on a standby host; its message is :func:`standby_refusal`'s."""


def standby_refusal(
    what: str, state_dir: Path, lease: LeaseSection, *, now: float | None = None
) -> str | None:
    """Why ``what`` may not write ``state_dir`` from this host; None when it may."""
    at = time.time() if now is None else now
    return _refusal(what, state_dir, read_lease(state_dir), holder_of(lease), at)


@contextmanager
def fenced_write(what: str, state_dir: Path, lease: LeaseSection) -> Iterator[None]:
    """Run the block (the command's write) only while this host is not a standby, with the
    lease's lock held through it (``agentkit.leasekeeper.lease_held_still``): raises
    :class:`StandbyRefused` before the block when another host's agent holds the lease now
    (it may have taken it while the command ran), or when the lease cannot be looked at."""
    this = holder_of(lease)
    try:
        with lease_held_still(state_dir) as current:
            if refusal := _refusal(what, state_dir, current, this, time.time(), late=True):
                raise StandbyRefused(refusal)
            yield
    except LeaseUnreadable as exc:  # raised before the block runs: nothing written
        raise StandbyRefused(
            f"{what}: refused: the state's lease could not be checked ({exc}); nothing was "
            "written. Try again; if it lasts, see whether an agent is stuck holding it."
        ) from exc


def _refusal(
    what: str, state_dir: Path, current: Lease | None, this: str, at: float, *, late: bool = False
) -> str | None:
    if current is None or role(current, this, at) != "standby":
        return None
    when = " (it was taken while this command ran)" if late else ""
    return (f"{what}: refused: this host ({this}) is a standby; the state's lease "
            f"({state_dir / LEASE_DB}) is held by {current.holder}{when} (pid {current.pid}, "
            f"token {current.token}, expires in {current.expires - at:.0f} s). Run it on "
            f"{current.holder}, or here once that agent has stopped and its lease expired. "
            "Nothing was written.")  # fmt: skip
