"""The inner agent's side of the fencing lease: take it before the state is opened (or, as a
standby, wait for it), say and audit a takeover, and fence the writes that matter.

What is fenced: every message's bytes to the internal server (the check sits in
:class:`inner_agent.smtpclient.Session`, just before DATA's content) and every bundle the link
reader hands over (checked before the handler writes to the queue). An agent that loses the
lease, or cannot renew it in time, stops: what it had not finished stays in the state for the
new holder (docs/operations.md, "Standby inner agent").
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
from agentkit.startup import open_state
from inner_agent.config import InnerConfig
from protocol import ReceivedBundle

__all__ = ["HeldLease", "claimant_of", "fenced", "take_lease"]

log = logging.getLogger(__name__)


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


def claimant_of(config: InnerConfig) -> Claimant:
    return Claimant(config.lease.holder or socket.gethostname(), os.getpid(), config.lease.ttl_s)


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
