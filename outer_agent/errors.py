"""The outer agent's errors, one hierarchy::

OuterAgentError
├── SpoolError            the spool cannot take or give a mail
│   ├── SpoolFull         free space below the configured floor (intake answers 452 4.3.1)
│   └── SpoolCorrupt      a spool file is not a record we wrote (moved to quarantine)
└── DeliveryError         an outbound mail could not be handed to the next hop
    ├── DeliveryDeferred  temporary (4xx, connection refused, timeout): try again later
    └── DeliveryRefused   permanent (5xx): bounce notice to the sender
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "DeliveryDeferred",
    "DeliveryError",
    "DeliveryRefused",
    "OuterAgentError",
    "SpoolCorrupt",
    "SpoolError",
    "SpoolFull",
]


class OuterAgentError(Exception):
    """Base of every error the outer agent raises on purpose."""


class SpoolError(OuterAgentError):
    pass


class SpoolFull(SpoolError):
    def __init__(self, root: Path, free: int, floor: int) -> None:
        self.root, self.free, self.floor = root, free, floor
        super().__init__(
            f"spool {root}: only {free // (1 << 20)} MiB free, below the floor of "
            f"{floor // (1 << 20)} MiB (spool.min_free_bytes); "
            "intake answers 452 until space is freed"
        )


class SpoolCorrupt(SpoolError):
    def __init__(self, where: str, problem: str) -> None:
        self.where, self.problem = where, problem
        super().__init__(f"spool file {where}: {problem}")


class DeliveryError(OuterAgentError):
    def __init__(self, message: str, *, code: int | None = None, reply: str = "") -> None:
        self.code, self.reply = code, reply
        super().__init__(message)


class DeliveryDeferred(DeliveryError):
    pass


class DeliveryRefused(DeliveryError):
    pass
