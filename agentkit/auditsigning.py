"""The audit log's upkeep in each agent: signed checkpoints of its chain, made every so often
and at stop, and the daily prune of events past their retention (agentkit.retention) and of
every other store past its own (agentkit.storeretention): one place prunes everything.

Each checkpoint is stored in the log (``AuditLog.checkpoint``) and written as a log line: the
journal (usually shipped to a log server) then holds a copy that someone who can change the
database cannot reach. ``maildiode audit verify`` checks the log against them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from agentkit.audit import AuditLog
from agentkit.periodic import PeriodicPass
from agentkit.retention import Retention
from agentkit.storeretention import StorePrune, prune_stores
from protocol.keys import SigningKey

__all__ = ["AuditCheckpointer"]

log = logging.getLogger(__name__)


class AuditCheckpointer:
    """Signs the newest link of ``audit`` every ``every_s`` seconds (when events were added)."""

    def __init__(
        self,
        audit: AuditLog,
        key: SigningKey,
        every_s: float,
        *,
        retention: Retention | None = None,
        prune_every_s: float = 86400.0,
        stores: Sequence[StorePrune] = (),
        announce: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.audit, self.key, self.retention, self.stores = audit, key, retention, stores
        self.announce = announce  # each checkpoint also an event (the outer's: carried inward)
        self.prune_every_s, self.clock = prune_every_s, clock
        self._pruned_at = -prune_every_s
        self._pass = PeriodicPass(
            "audit-upkeep", self._one_pass, lambda: every_s,
            "signing an audit checkpoint or pruning the log failed", threading.Event(),
        )  # fmt: skip

    @classmethod
    def from_config(
        cls,
        audit: AuditLog,
        config: Any,
        stores: Sequence[StorePrune] = (),
        *,
        announce: bool = False,
    ) -> AuditCheckpointer:
        """The upkeep either agent runs: its own key, its ``[audit]`` settings, its stores;
        ``announce``: the outer agent's, whose checkpoints travel inward as events."""
        return cls(audit, SigningKey.load(config.keys.signing_key),
                   config.audit.checkpoint_every_s, retention=config.audit.retention(),
                   prune_every_s=config.audit.prune_every_s, stores=stores,
                   announce=announce)  # fmt: skip

    def _one_pass(self) -> None:
        self.sign_now()
        if self.clock() - self._pruned_at >= self.prune_every_s:  # daily: check, then prune
            self._pruned_at = self.clock()
            # A broken chain is evidence of tampering: nothing is destroyed while it stands.
            if self.verify_now():
                if self.retention is not None:
                    self.prune_now()
                self.prune_stores_now()

    def prune_stores_now(self) -> dict[str, int]:
        """Prune every store to its own retention; each prune that deleted is an event."""
        return prune_stores(self.stores, self.audit, self.clock())

    def verify_now(self) -> bool:
        """Check the whole chain and its checkpoints, and record what was found."""
        # Its own connection: the whole read must not hold the lock the mail path records under.
        reader = AuditLog(self.audit.path, agent=self.audit.agent)
        try:
            report = reader.verify([self.key.verify_key])
        finally:
            reader.close()
        self.audit.record_verification(report)
        if not report.ok:
            log.error("audit log: %s", report.describe())
        return report.ok

    def prune_now(self) -> int:
        """Delete what every retention has passed (by whole checkpoint intervals)."""
        assert self.retention is not None
        self._pruned_at = self.clock()
        deleted = self.audit.prune(self.retention, self._pruned_at)
        if deleted:
            log.info("audit log: %d event(s) past their retention deleted", deleted)
        return deleted

    def sign_now(self) -> None:
        point = self.audit.checkpoint(self.key, announce=self.announce)
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
