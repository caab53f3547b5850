"""Errors of the receive filters' inner half, one hierarchy.

InboundError
├── HoldRefused         a decision on a held mail that is unknown or decided already
└── PolicyStateError    the record of published policy versions cannot be read
"""

from __future__ import annotations

__all__ = ["HoldRefused", "InboundError", "PolicyStateError"]


class InboundError(Exception):
    """Base of every refusal of the receive filters inside."""


class HoldRefused(InboundError):
    """``code``: ``unknown_mail`` (no such held mail) or ``decided`` (decided already)."""

    def __init__(self, code: str, detail: str) -> None:
        self.code = code
        super().__init__(f"{code}: {detail}")


class PolicyStateError(InboundError):
    pass
