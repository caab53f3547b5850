"""The outer agent's stores and their retention (agentkit.storeretention; docs/compliance.md).

Its quarantines: mail that could not be rendered or was found torn (``spool/inbound/
quarantine``), refused outbound files (bundles that were no outbound mail, control records
that did not decode, queue files that did not read: ``spool/outbound/quarantine``) and
chunk files the outbound link refused (``spool/link-out/quarantine``); the inbound sender's
kept chunks (``spool/sender/sent-*``, past the resend window). It keeps no finished
outbound mail: a delivered mail's queue file is deleted at delivery, and only a marker naming
its bundle id stays (``DONE_MARKER_TTL_S``, to recognise a replay).
"""

from __future__ import annotations

import functools

from agentkit.storeretention import StorePrune, kept_chunks, prune_files_older
from outer_agent.config import OuterConfig

__all__ = ["retention_stores"]


def retention_stores(config: OuterConfig) -> list[StorePrune]:
    """What the audit upkeep prunes besides the audit log, each to its ``[retention]`` days."""
    spool, days = config.spool.dir, config.retention
    folders = (
        ("outer_quarantine", spool / "inbound" / "quarantine", days.quarantine_days),
        ("delivery_quarantine", spool / "outbound" / "quarantine", days.quarantine_days),
        ("link_quarantine", spool / "link-out" / "quarantine", days.link_quarantine_days),
    )
    stores = [StorePrune(name, keep, functools.partial(prune_files_older, folder))
              for name, folder, keep in folders]  # fmt: skip
    return [*stores, kept_chunks(spool / "sender", config.link.resend_window_s)]
