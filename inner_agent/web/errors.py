"""Errors of the web listener's accounts and tokens, one hierarchy.

WebError
├── AccountRefused   an account change that cannot be made (names the account and why)
└── TokenRefused     a token change that cannot be made (names the token or account and why)

A request that fails to authenticate is not an exception: the gate answers it (401, 403, 429)
and records it. These are for the command line and the pages that change accounts.
"""

from __future__ import annotations

__all__ = ["AccountRefused", "TokenRefused", "WebError"]


class WebError(Exception):
    """Base of every refusal of the web listener's account layer."""


class AccountRefused(WebError):
    def __init__(self, account: str, why: str) -> None:
        self.account, self.why = account, why
        super().__init__(f"{account}: {why}")


class TokenRefused(WebError):
    def __init__(self, subject: str, why: str) -> None:
        self.subject, self.why = subject, why
        super().__init__(f"{subject}: {why}")
