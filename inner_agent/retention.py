"""The inner agent's stores and their retention (agentkit.storeretention; docs/compliance.md).

Its quarantines: bundles that failed the inner checks and notifications the internal server
refused (``state/quarantine``), chunk files the link refused (``state/link-quarantine``, and
``state/link-quarantine-ID`` for each further outer agent's stream),
outbound mail whose spool record did not read (``<outbound spool>/quarantine``). With the
outbound path on, its senders' kept chunks (``<outbound spool>/link-state/sent-*``, past the
resend window) and its state database: finished outbound mail and decided approval requests
(``OutboundState.prune_finished``, ``prune_decided``); with the receive filters on, decided
inbound holds (``HoldBook.prune_decided``). Held mail that is not decided is never among them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from agentkit.storeretention import StorePrune, kept_chunks, prune_files_older
from inner_agent.config import InnerConfig
from inner_agent.inbound.holds import HoldBook
from inner_agent.outbound.state import OutboundState

__all__ = ["retention_stores"]


def retention_stores(config: InnerConfig) -> list[StorePrune]:
    """What the audit upkeep prunes besides the audit log, each to its ``[retention]`` days."""
    state, days = config.state.dir, config.retention
    folders = [
        ("inner_quarantine", state / "quarantine", days.quarantine_days),
        ("link_quarantine", state / "link-quarantine", days.link_quarantine_days),
        *(  # each further outer agent's stream has a link quarantine of its own (D74)
            (f"link_quarantine_{stream.id}", state / f"link-quarantine-{stream.id}",
             days.link_quarantine_days)
            for stream in (config.streams.outer if config.streams is not None else ())
        ),
    ]  # fmt: skip
    if config.outbound is None:
        return [_files(*folder) for folder in folders]
    spool = config.outbound.spool_dir
    folders.append(("outbound_quarantine", spool / "quarantine", days.quarantine_days))
    database = spool / "state.db"
    stores = [
        *(_files(*folder) for folder in folders),
        StorePrune("finished_outbound", days.finished_outbound_days,
                   _in_state(database, OutboundState.prune_finished)),
        StorePrune("approval", days.approval_days,
                   _in_state(database, OutboundState.prune_decided)),
        kept_chunks(spool / "link-state", config.link.resend_window_s),
    ]  # fmt: skip
    if config.inbound is not None:
        book = state / "inbound-holds.db"
        stores.append(StorePrune("inbound_holds", days.approval_days, _in_holds(book)))
    return stores


def _files(store: str, folder: Path, keep_days: int) -> StorePrune:
    return StorePrune(store, keep_days, functools.partial(prune_files_older, folder))


def _in_state(
    database: Path, prune: Callable[[OutboundState, float], int]
) -> Callable[[float], int]:
    """``prune`` on a connection of its own (the outbound service holds another; deleting
    reads no sealed blob, so no key is needed)."""

    def run(cutoff: float) -> int:
        state = OutboundState(database)
        try:
            return prune(state, cutoff)
        finally:
            state.close()

    return run


def _in_holds(database: Path) -> Callable[[float], int]:
    """Decided inbound holds pruned on a connection of their own."""

    def run(cutoff: float) -> int:
        book = HoldBook(database)
        try:
            return book.prune_decided(cutoff)
        finally:
            book.close()

    return run
