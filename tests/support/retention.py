"""A day of retention in a test: an audit log with its checkpoint, a clock to move, the upkeep
pass that prunes it and every store (agentkit.auditsigning), and files aged at will."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentkit.audit import AuditEvent, AuditLog
from agentkit.auditsigning import AuditCheckpointer
from agentkit.retention import DAY_S, Retention
from agentkit.storeretention import StorePrune
from protocol.keys import SigningKey

START = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@dataclass
class Upkeep:
    """The agent's audit upkeep over ``stores``, with a clock the test moves."""

    audit: AuditLog
    key: SigningKey
    clock: Clock
    stores: Sequence[StorePrune]

    @classmethod
    def open(cls, audit_path: Path, agent: str, stores: Sequence[StorePrune]) -> Upkeep:
        clock = Clock()
        audit = AuditLog(audit_path, agent=agent, clock=clock)
        audit.record("m1", "received")
        return cls(audit, SigningKey.generate(), clock, stores)

    def days_later(self, days: float) -> None:
        """Move the clock on and run the upkeep's pass (a checkpoint, the check, the prunes)."""
        self.clock.now += days * DAY_S
        upkeep = AuditCheckpointer(self.audit, self.key, 3600, retention=Retention(),
                                   prune_every_s=DAY_S, stores=self.stores,
                                   clock=self.clock)  # fmt: skip
        upkeep._one_pass()

    def pruned(self) -> list[dict[str, Any]]:
        return [e.details for e in self.audit.query() if e.step == "retention_pruned"]

    def chain_holds(self) -> bool:
        report = self.audit.verify([self.key.verify_key])
        return report.ok and report.checkpoints > 0

    def events(self, step: str) -> list[AuditEvent]:
        return [e for e in self.audit.query() if e.step == step]


def written(path: Path, at: float, data: bytes = b"x") -> Path:
    """``path`` with ``data``, last written at ``at``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (at, at))
    return path
