"""Errors of the outbound path, one hierarchy.

OutboundError
├── SpoolCorrupt        a spool file is torn or not ours (quarantined with a reason)
├── DirectoryError      the HR export cannot be imported (names line and column)
│   └── DirectoryUnreachable  the LDAP server cannot answer now (down, slow, busy): says
│                             which server and why; never a wrong password
├── InvalidTransition   an approval event that the request's state does not allow
├── TokenRefused        an approval token is forged, expired, reused or someone else's
├── AbsenceRefused      an absence delegation that cannot be stored (says which field, why)
└── WithdrawRefused     a mail its sender cannot withdraw (not theirs, not held, decided)
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "AbsenceRefused",
    "DirectoryError",
    "DirectoryUnreachable",
    "InvalidTransition",
    "OutboundError",
    "SpoolCorrupt",
    "TokenRefused",
    "WithdrawRefused",
]

TokenReason = Literal["malformed", "forged", "expired", "reused", "wrong-approver", "wrong-request"]


class OutboundError(Exception):
    """Base of every refusal in the outbound path."""


class SpoolCorrupt(OutboundError):
    pass


class DirectoryError(OutboundError):
    pass


class DirectoryUnreachable(DirectoryError):
    """The LDAP server could not be asked: ``server`` (its URL) and ``reason`` (why, for the
    log and the audit). ``asked``: False when it was not even tried because it failed a
    moment ago (``ldap_bind``'s pause), so the caller can count such refusals instead of
    logging each."""

    def __init__(self, server: str, reason: str, *, asked: bool = True,
                 down: tuple[tuple[str, str], ...] = ()) -> None:  # fmt: skip
        """With several servers configured, ``server`` names them all and ``down`` has each
        one that could not answer with its own reason (server, reason)."""
        self.server, self.reason, self.asked = server, reason, asked
        self.down = down or ((server, reason),)
        super().__init__(f"LDAP {server}: {reason}")


class InvalidTransition(OutboundError):
    pass


class TokenRefused(OutboundError):
    """``reason`` is a short stable code for the audit log; the page says less."""

    def __init__(self, reason: TokenReason, detail: str = "") -> None:
        self.reason: TokenReason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)


class AbsenceRefused(OutboundError):
    """``field`` names the form field at fault; the message says why, in Korean."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


class WithdrawRefused(OutboundError):
    pass
