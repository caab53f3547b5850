"""Errors of the wire, as values with names.

    ProtocolError
    ├── RemoteError      the peer (or the link) sent something we refuse; carries a Reason code
    │   └── DoesNotVerify    signature or key failure: one opaque message, details in the log
    └── LocalError       our bug or our environment (disk, permissions, key files, state)
        ├── KeyFileError     a key file is missing, malformed or readable by others
        ├── AtRestError      a stored blob sealed at rest does not open (or its key file is bad)
        └── NewerStateError  a state database written by a newer release (refused, not read)

Quarantine reasons are short stable codes (``Reason``); they name what was wrong with the input,
never anything about our internals.
"""

from __future__ import annotations

import enum

__all__ = [
    "AtRestError",
    "BundleIdConflict",
    "DoesNotVerify",
    "KeyFileError",
    "LocalError",
    "NewerStateError",
    "ProtocolError",
    "Reason",
    "RemoteError",
]


class Reason(enum.StrEnum):
    """Why a chunk, a file or a bundle was refused. Stable codes: they appear in reason files."""

    BAD_MAGIC = "bad-magic"  # the file does not start with b"MDLK"
    BAD_VERSION = "bad-version"  # a format version we do not speak
    BAD_FLAGS = "bad-flags"  # reserved flag bits set
    TOO_LARGE = "too-large"  # a length field or the file is over its limit
    TRUNCATED = "truncated"  # the file is shorter or longer than its prefix says
    UNKNOWN_KEY = "unknown-key"  # no configured key has this key id
    BAD_SIGNATURE = "bad-signature"  # the Ed25519 signature does not verify
    BAD_HEADER = "bad-header"  # signed header is not the exact msgpack map we define
    LIMITS = "limits"  # a signed header value is out of its allowed range
    UNKNOWN_KIND = "unknown-kind"  # a kind we do not know: refused, never treated as data
    BAD_ARMOR = "bad-armor"  # an ASCII-armoured file that is not valid armour
    CANNOT_DECRYPT = "cannot-decrypt"  # encrypted payload and no key, or the AEAD tag fails
    WRONG_STREAM = "wrong-stream"  # a chunk of another stream (e.g. a reflected file)
    EXPIRED = "expired"  # created outside the accepted time window (replay protection)
    INCONSISTENT = "inconsistent"  # chunks of one bundle disagree about the bundle
    BAD_HASH = "bad-hash"  # reassembled bundle does not match its signed SHA-256
    INCOMPLETE = "incomplete"  # partial bundle held longer than its time-to-live
    CAPACITY = "capacity"  # receiver holds too many partial bundles or bytes


class ProtocolError(Exception):
    """Base of every error raised by ``protocol``."""


class RemoteError(ProtocolError):
    """The input from the other side is refused. ``reason`` is the stable code."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class DoesNotVerify(RemoteError):
    """Signature or key failure. ``str()`` is deliberately opaque; ``detail`` is for the log."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(reason, detail)
        self.args = ("does not verify",)

    def __str__(self) -> str:
        return "does not verify"


class LocalError(ProtocolError):
    """Our side failed: environment, state or a bug. Not the peer's fault."""


class BundleIdConflict(LocalError):
    """A bundle id was published before with other content; ids must name one content only.

    The first content stays on the link (it is sent again); ``seq`` is its sequence number."""

    def __init__(self, message: str, *, seq: int) -> None:
        super().__init__(message)
        self.seq = seq


class KeyFileError(LocalError):
    """A key file cannot be used; the message names the file and the problem."""


class AtRestError(LocalError):
    """Our own stored data does not open: not sealed, an unknown key id, a changed or torn
    blob, or an unusable key file. The message names the file and why, never the key."""


class NewerStateError(LocalError):
    """A state database carries a schema version newer than this release's: a newer release
    wrote it, and this one would half-understand it. The message names the file and both
    versions; the agent refuses to start (exit 2) rather than touch it."""
