"""What can go wrong when mailsafe handles a mail.

    MailsafeError
    ├── HostileInput        the mail (or a part of it) is refused: it came from outside
    │   └── LimitExceeded   a named limit was hit (size, depth, parts, pixels, pages, time)
    └── InternalError       our bug or our environment (no font, worker died for no input reason)

Every error carries a short, stable ``code`` (used as the quarantine / not-displayable reason
code in manifests, logs and audit events) and a sentence an administrator understands.
"""

from __future__ import annotations


class MailsafeError(Exception):
    """Base of every error raised by mailsafe."""

    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class HostileInput(MailsafeError):
    """The input was refused; it is the sender's fault, not ours."""

    code = "hostile-input"


class LimitExceeded(HostileInput):
    """A named limit was exceeded while decoding or rendering."""

    code = "limit-exceeded"


class InternalError(MailsafeError):
    """Our bug or environment; never the input's fault."""

    code = "internal-error"
