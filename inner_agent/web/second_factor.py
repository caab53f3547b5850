"""The second factor: a time-based one-time code (TOTP, RFC 6238: six digits, 30-second steps)
from the authenticator app the account enrolled (``maildiode directory totp USER``). Pure: the
secret, the code and the time in, the time step it matched out.

A code of the step before or after is accepted (a phone's clock a little off); the caller
refuses a step the account used already (``SignInStore.spend_step``), so a code works once.
"""

from __future__ import annotations

import hmac

import pyotp

__all__ = ["matching_step"]

# RFC 6238's codes as authenticator apps show them.
CODE_DIGITS = 6
# Steps either side of now that are accepted: one, i.e. a clock up to 30 s off.
DRIFT_STEPS = 1


def matching_step(secret: str, untrusted_code: str, now: float) -> int | None:
    """The time step whose code ``untrusted_code`` is, or None."""
    code = untrusted_code.strip().replace(" ", "")
    if not (code.isascii() and code.isdigit() and len(code) == CODE_DIGITS):
        return None
    totp = pyotp.TOTP(secret)
    here = totp.timecode(int(now))
    found = None
    for step in range(here - DRIFT_STEPS, here + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step  # no early exit: the same work for every code
    return found
