"""What the log and the audit log may say about what someone typed into the address field.

A failed sign-in's address field can hold anything: a password typed into the wrong box, a
resident registration number (issue 15.8 found both in inner.log). An address of someone in
the directory is written as it is (the administrator needs it, and it is no secret); anything
else is written as a keyed hash, ``?`` and 12 hex digits of HMAC-SHA256 with a key derived
from the web secret, and its length: the same typed value gives the same mark, so repeated
tries can be followed, and the value cannot be read back or guessed offline without the key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

__all__ = ["AddressRedactor"]

# 48 bits: enough to tell typed values apart in a log, too few to be an oracle of anything.
MARK_HEX = 12


class AddressRedactor:
    def __init__(self, secret: bytes, known: Callable[[str], bool]) -> None:
        self._key = hashlib.sha256(b"maildiode web\0log mark\0" + secret).digest()
        self._known = known

    def __call__(self, untrusted: str) -> str:
        if untrusted and "@" in untrusted and self._known(untrusted):
            return untrusted
        digest = hmac.new(self._key, untrusted.encode("utf-8", "surrogatepass"), hashlib.sha256)
        return f"?{digest.hexdigest()[:MARK_HEX]} ({len(untrusted)} chars)"
