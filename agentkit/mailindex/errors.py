"""What the mail index refuses, as named errors (one hierarchy for the package).

::

    MailIndexError                 anything the mail index refuses
    ├── QueryRefused               a filter, page or statistics parameter is not acceptable
    └── AmbiguousMail              a mail id names a mail in both directions; give the direction
"""

from __future__ import annotations

__all__ = ["AmbiguousMail", "MailIndexError", "QueryRefused"]


class MailIndexError(Exception):
    """Base of every refusal of the mail index."""


class QueryRefused(MailIndexError):
    """A query parameter is not acceptable: says which parameter, the value, and why."""

    def __init__(self, parameter: str, value: object, why: str) -> None:
        shown = str(value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        super().__init__(f"{parameter}={shown!r}: {why}")
        self.parameter, self.why = parameter, why


class AmbiguousMail(MailIndexError):
    """Mail ids are random and never repeat across directions, but a compromised outer agent
    could report events under an intranet mail's id: then the direction must be named."""

    def __init__(self, mail_id: str) -> None:
        super().__init__(f"mail {mail_id!r} exists in both directions; name the direction")
        self.mail_id = mail_id
