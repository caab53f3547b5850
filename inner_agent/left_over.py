"""Raw bundles an earlier version stored in the injection queue's ``arrived`` table and had not
built when it stopped: built at start, before the link thread runs."""

from __future__ import annotations

import logging

from inner_agent.bundle_handler import BundleHandler

__all__ = ["build_left_over"]

log = logging.getLogger(__name__)


def build_left_over(handler: BundleHandler) -> int:
    """Build the raw bundles an earlier version stored (table ``arrived``) and had not built
    when it stopped; returns how many. A bundle that keeps failing stays for the next start."""
    done: set[bytes] = set()
    while (bundle := handler.queue.next_arrived(done)) is not None:
        done.add(bundle.bundle_id)
        try:
            handler(bundle, queue_only=True)
        except Exception:  # a bug of ours: the raw row stays, nothing is lost
            log.exception("building stored bundle %s failed", bundle.bundle_id.hex())
    return len(done)
