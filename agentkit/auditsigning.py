"""The agent's own signed checkpoints of its audit chain, made every so often and at stop.

Each checkpoint is stored in the log (``AuditLog.checkpoint``) and written as a log line: the
journal (usually shipped to a log server) then holds a copy that someone who can change the
database cannot reach. ``maildiode audit verify`` checks the log against them.
"""

from __future__ import annotations

import logging
import threading

from agentkit.audit import AuditLog
from agentkit.periodic import PeriodicPass
from protocol.keys import SigningKey

__all__ = ["AuditCheckpointer"]

log = logging.getLogger(__name__)


class AuditCheckpointer:
    """Signs the newest link of ``audit`` every ``every_s`` seconds (when events were added)."""

    def __init__(self, audit: AuditLog, key: SigningKey, every_s: float) -> None:
        self.audit, self.key = audit, key
        self._pass = PeriodicPass(
            "audit-checkpoint", self.sign_now, lambda: every_s,
            "signing an audit checkpoint failed", threading.Event(),
        )  # fmt: skip

    def sign_now(self) -> None:
        point = self.audit.checkpoint(self.key)
        if point is not None:
            log.info(
                "audit checkpoint: %s event %d link %s signature %s (key %s)", point.agent,
                point.event_id, point.link.hex(), point.signature.hex(), point.key_id.hex(),
            )  # fmt: skip

    def start(self) -> None:
        self._pass.start()

    def stop(self) -> None:
        """Stop, and sign what happened since the last checkpoint."""
        self._pass.stop()
        self.sign_now()
