"""Straight to the internal server: a fresh notification sent from the link thread (D16).

When nothing waits in the injection queue, the link thread sends a bundle's notification over
its own SMTP session before the reader lets the chunk files go. The chunk file in the work
folder is then the durable copy until the server's 250, and the notification is never written
to the queue: no 130 KB blob committed, read back and cleared per mail. Anything but a clean
250 for every recipient (a 4xx, a 5xx, a refused connection, a timeout) sends the rest through
the queue as before, where the injection workers retry, quarantine and report.

Exactly once, as far as a crash allows: the reader marks the bundle done only after the handler
returns. A crash (kill -9, power loss) after the server's 250 and before that commit makes the
reader deliver the bundle again at the next start, which sends it again: at most one duplicate
per crash from this path (the link thread sends one message at a time). Without a crash, the
recipients the server took are remembered per bundle id, so when a later step of the same
bundle fails (a full disk: the queue, the audit log or the receiver cannot write) and the
reader hands the bundle over again, it is not sent again.

The queue must be empty for this path, so a fresh notification never overtakes one that waits
for the server, and an outage costs at most one failed attempt here (the notification then
waits in the queue, and so does every later one until the workers have emptied it).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence

from inner_agent.inject import InjectionQueue
from inner_agent.smtpclient import Hop, Outcome, Session, TemporaryFailure

__all__ = ["DirectInjection"]

log = logging.getLogger(__name__)

# Bundles whose direct recipients are remembered. Only bundles whose handling failed after the
# 250 need it (until the reader has marked them done), so this is far more than enough.
REMEMBERED_BUNDLES = 10_000


class DirectInjection:
    """One SMTP session of the link thread's own; used from that thread only."""

    def __init__(self, queue: InjectionQueue, hop: Hop) -> None:
        self.queue = queue
        self._session = Session(hop)
        self._delivered: OrderedDict[bytes, tuple[str, ...]] = OrderedDict()

    def not_yet_delivered(self, bundle_id: bytes, rcpts: Sequence[str]) -> tuple[str, ...]:
        """``rcpts`` without those the server already took for this bundle in this run."""
        delivered = self._delivered.get(bundle_id, ())
        return tuple(rcpt for rcpt in rcpts if rcpt not in delivered)

    def send(
        self, bundle_id: bytes, mail_from: str, rcpts: Sequence[str], data: bytes
    ) -> Outcome | None:
        """The server's answer, or None when the message must go through the queue (something
        waits there already, or the server could not be reached or answered 4xx)."""
        if self.queue.has_waiting():
            return None
        try:
            outcome = self._session.send(mail_from, rcpts, data)
        except TemporaryFailure as exc:
            log.warning("internal server did not take a notification directly (%s); "
                        "it waits in the queue", exc)  # fmt: skip
            return None
        if outcome.accepted:
            self._remember(bundle_id, outcome.accepted)
        return outcome

    def _remember(self, bundle_id: bytes, accepted: tuple[str, ...]) -> None:
        self._delivered[bundle_id] = self._delivered.pop(bundle_id, ()) + accepted
        while len(self._delivered) > REMEMBERED_BUNDLES:
            self._delivered.popitem(last=False)

    def close(self) -> None:
        self._session.close()
