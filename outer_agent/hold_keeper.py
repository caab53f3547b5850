"""The held mail's clock: every ``[inbound] check_s`` a held part past its ``hold_expiry_s`` is
dropped (marked expired first, ``outer_agent.holds``), and its recipients' notice goes inward
(published until the link has it: a crash in between sends it at the next pass)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from agentkit.periodic import PeriodicPass
from outer_agent.filtering import Filtering
from outer_agent.holds import HoldStore

__all__ = ["HoldKeeper"]


# Markers of decided parts are pruned this often.
PRUNE_EVERY_S = 3600.0


class Publisher(Protocol):
    def publish(self, bundle: bytes, bundle_id: bytes) -> int: ...


class Audit(Protocol):
    def record(self, mail_id: str, step: str, **fields: Any) -> None: ...


class HoldKeeper:
    def __init__(
        self,
        holds: HoldStore,
        filtering: Filtering,
        publisher: Publisher,
        audit: Audit,
        *,
        check_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.holds, self.filtering, self.publisher, self.audit = holds, filtering, publisher, audit
        self.check_s, self.clock = check_s, clock
        self._runner = PeriodicPass(
            "hold-keeper", self.run_once, lambda: self.check_s, "checking held mail failed",
            threading.Event(),
        )  # fmt: skip
        self._pruned_at = float("-inf")

    def run_once(self) -> int:
        """Expire what is due and send the notices still owed; returns how many expired."""
        expired = self.holds.expire_due()
        for marker in expired:
            self.audit.record(
                marker.part,
                "inbound_expired",
                rule=marker.hold.rule,
                rcpts=list(marker.envelope.rcpt_to),
                held_at=marker.hold.held_at,
                policy_version=marker.hold.policy_version,
            )
        for marker in self.holds.pending_notices():
            notice = self.filtering.expiry_notice(marker)
            seq = self.publisher.publish(notice.package, notice.bundle_id)
            self.holds.notice_sent(marker)
            self.audit.record(
                marker.part,
                "published",
                bundle_id=notice.bundle_id.hex(),
                seq=seq,
                bytes=len(notice.package),
                notice="expired",
            )
        if self.clock() - self._pruned_at > PRUNE_EVERY_S:
            self.holds.prune()
            self._pruned_at = self.clock()
        return len(expired)

    def start(self) -> None:
        self._runner.start()

    def stop(self) -> None:
        self._runner.stop()
