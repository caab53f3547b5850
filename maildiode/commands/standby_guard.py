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
"""

from __future__ import annotations

import time
from pathlib import Path

from agentkit.lease import role
from agentkit.leasekeeper import LEASE_DB, read_lease
from inner_agent.config import LeaseSection
from inner_agent.standby import holder_of

__all__ = ["EXIT_STANDBY", "StandbyRefused", "standby_refusal"]

# As the inner agent's own exit when it lost the lease (maildiode.commands.agent_start): this
# host is not the one that writes the state.
EXIT_STANDBY = 4


class StandbyRefused(Exception):
    """A write refused on a standby host; its message is :func:`standby_refusal`'s."""


def standby_refusal(
    what: str, state_dir: Path, lease: LeaseSection, *, now: float | None = None
) -> str | None:
    """Why ``what`` may not write ``state_dir`` from this host; None when it may."""
    current = read_lease(state_dir)
    this = holder_of(lease)
    at = time.time() if now is None else now
    if current is None or role(current, this, at) != "standby":
        return None
    return (f"{what}: refused: this host ({this}) is a standby; the state's lease "
            f"({state_dir / LEASE_DB}) is held by {current.holder} (pid {current.pid}, token "
            f"{current.token}, expires in {current.expires - at:.0f} s). Run it on "
            f"{current.holder}, or here once that agent has stopped and its lease expired. "
            "Nothing was written.")  # fmt: skip
