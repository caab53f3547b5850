"""The inner agent's side of the fencing lease: take it before the state is opened (or, as a
standby, wait for it), say and audit a takeover, and fence the writes that matter.

What is fenced: every message's bytes to the internal server (the check sits in
:class:`inner_agent.smtpclient.Session`, just before DATA's content), every bundle the link
reader hands over (checked before the handler writes to the queue), and the outbound side
(:class:`inner_agent.outbound.service.OutboundService`: its intake answers 451, its passes,
its publishing on the out link and its settling of decisions stop). An agent that loses the
lease, or cannot renew it in time, stops: what it had not finished stays in the state for the
new holder (docs/operations.md, "Standby inner agent").

A standby listens on nothing until it has taken over: on one host its holder listens on the
same addresses, so the standby's start-up checks let an address in use pass, and once it has
the lease it waits until the old holder's process has let go of them (:func:`free_addresses`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

from agentkit.audit import AuditLog
from agentkit.lease import Claimant, Taken
from agentkit.leasekeeper import LeaseKeeper, LeaseStore, acquire
from agentkit.preflight import listen_problems
from agentkit.startup import open_state
from inner_agent.config import InnerConfig, LeaseSection
from inner_agent.preflight import listen_addresses
from protocol import ReceivedBundle

__all__ = [
    "HeldLease",
    "claimant_of",
    "fenced",
    "free_addresses",
    "holder_name",
    "take_lease",
]

log = logging.getLogger(__name__)

# How often a standby that took over looks again at an address the old holder still listens on.
ADDRESS_POLL_S = 0.2


@dataclass
class HeldLease:
    """A taken lease and its keeper (started by the caller once the state is open)."""

    store: LeaseStore
    keeper: LeaseKeeper
    taken: Taken

    def record_takeover(self, audit: AuditLog) -> None:
        """Audit ``took_over`` when the lease came from another host (a failover)."""
        previous = self.taken.previous
        mine = self.keeper.claimant
        if previous is None or previous.holder == mine.holder:
            return
        audit.record("-", "took_over", holder=mine.holder, token=self.taken.lease.token,
                     previous_holder=previous.holder, previous_token=previous.token)  # fmt: skip

    def stop(self) -> None:
        self.keeper.stop()
        self.store.close()


def holder_name(config: InnerConfig) -> str:
    """The name this host's agent holds the lease under: ``[lease] holder``, or the host's."""
    return holder_of(config.lease)


def holder_of(lease: LeaseSection) -> str:
    """:func:`holder_name` from the ``[lease]`` section alone (a command reading part of
    inner.toml)."""
    return lease.holder or socket.gethostname()


def claimant_of(config: InnerConfig) -> Claimant:
    return Claimant(holder_name(config), os.getpid(), config.lease.ttl_s)


def take_lease(
    config: InnerConfig,
    *,
    standby: bool,
    stop: threading.Event,
    on_lost: Callable[[str], None],
) -> HeldLease | None:
    """The state's lease, or None when asked to stop first. Raises
    :class:`agentkit.leasekeeper.LeaseRefused` when another agent holds it and this one is
    not a standby."""
    state_dir = config.state.dir
    store = open_state(lambda: LeaseStore(state_dir), state_dir, stop=stop)
    if store is None:
        return None
    claimant = claimant_of(config)
    try:
        taken = acquire(store, claimant, standby=standby, stop=stop)
    except BaseException:
        store.close()
        raise
    if taken is None:
        store.close()
        return None
    _say_taken(taken, claimant)
    return HeldLease(store, LeaseKeeper(store, claimant, taken, on_lost), taken)


def _say_taken(taken: Taken, claimant: Claimant) -> None:
    previous = taken.previous
    if previous is not None and previous.holder != claimant.holder:
        log.warning("took_over: the state's lease from %s (pid %d, token %d) is now %s's "
                    "(token %d)", previous.holder, previous.pid, previous.token,
                    claimant.holder, taken.lease.token)  # fmt: skip
    else:
        log.info("holding the state's lease as %s (token %d, ttl %.0f s)", claimant.holder,
                 taken.lease.token, claimant.ttl_s)  # fmt: skip


def fenced(
    handler: Callable[[ReceivedBundle], None], fence: Callable[[], None]
) -> Callable[[ReceivedBundle], None]:
    """``handler`` behind the fence: a bundle reaches the queue only while the lease holds
    (otherwise the reader keeps it for the next holder)."""

    def handle(bundle: ReceivedBundle) -> None:
        fence()
        handler(bundle)

    return handle


def free_addresses(config: InnerConfig, stop: threading.Event) -> bool:
    """Wait until every address this agent listens on is free (True), or ``stop`` is set
    (False). After a takeover on one host the old holder may still listen there: killed, its
    sockets close at once; frozen, it lets go when it wakes, finds its fence closed and stops."""
    said = False
    while not stop.is_set():
        busy = [finding.line() for key, address in listen_addresses(config)
                for finding in listen_problems("inner.toml", key, address)
                if finding.address_in_use]  # fmt: skip
        if not busy:
            return True
        if not said:
            log.warning("took the lease; waiting for the old holder to let go of: %s",
                        "; ".join(busy))  # fmt: skip
            said = True
        stop.wait(ADDRESS_POLL_S)
    return False
