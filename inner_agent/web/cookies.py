"""Signed values the sign-in hands to browsers, none of them stored on the server:

- the **sign-in form's CSRF token**, bound to a pre-session cookie: the cookie ``md_pre`` is a
  random value (not stored anywhere), the form carries ``issued || HMAC(k, pre || issued)``
  in hex (``issued``: ten hex digits of the time it was made); a POST is accepted when its
  token was made for the cookie the browser sent, within ``FORM_TTL_S``. Another site can
  neither read the cookie nor make the token for it (the signed double-submit pattern), and
  an anonymous visit writes nothing (issue 15.8);
- the **known-device cookie** ``md_device``, set at a successful sign-in and kept for
  ``DEVICE_TTL_S``: ``device "." issued "." HMAC(k, account || device || issued)``. It names
  the browser, not a person: it lets the lockout tell the account's own browser from an
  attacker's behind the same address (issue 15.4), and is worth nothing for another account.

Every MAC has its own key, derived from the web secret with a purpose label, and is checked in
constant time before any part of the value is used.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["DEVICE_TTL_S", "FORM_TTL_S", "Cookies"]

# Long enough to read the page and look up a password; short enough to be useless when stolen.
FORM_TTL_S = 2 * 3600
# Half a year: a browser an approver signed in from stays known across holidays.
DEVICE_TTL_S = 180 * 86400
# The form token's issue time: ten hex digits (seconds since 1970, good past the year 2100).
ISSUED_HEX = 10
# Longer than any value we make; a longer one is refused before anything is computed.
MAX_VALUE_CHARS = 200


class Cookies:
    def __init__(self, secret: bytes) -> None:
        self._form_key = _derive(secret, b"signin form")
        self._device_key = _derive(secret, b"known device")

    @staticmethod
    def new_pre_session() -> str:
        return secrets.token_urlsafe(16)

    def form_token(self, pre_session: str, now: float) -> str:
        issued = f"{int(now):0{ISSUED_HEX}x}"
        return issued + _mac(self._form_key, pre_session, issued)

    def form_token_ok(self, untrusted_token: str, pre_session: str, now: float) -> bool:
        issued, mac = untrusted_token[:ISSUED_HEX], untrusted_token[ISSUED_HEX:MAX_VALUE_CHARS]
        if not (pre_session and _is_hex(issued) and mac):
            return False
        good = hmac.compare_digest(_mac(self._form_key, pre_session, issued), mac)
        return good and 0 <= now - int(issued, 16) <= FORM_TTL_S

    def device(self, account: str, device_id: str, now: float) -> str:
        issued = str(int(now))
        return f"{device_id}.{issued}.{_mac(self._device_key, account, device_id, issued)}"

    def device_of(self, untrusted_cookie: str, account: str, now: float) -> str | None:
        """The device id in a known-device cookie made for ``account`` and not too old."""
        device_id, _, rest = untrusted_cookie[:MAX_VALUE_CHARS].partition(".")
        issued, _, mac = rest.partition(".")
        if not (device_id and issued.isdigit() and mac):
            return None
        if not hmac.compare_digest(_mac(self._device_key, account, device_id, issued), mac):
            return None
        return device_id if 0 <= now - int(issued) <= DEVICE_TTL_S else None

    @staticmethod
    def new_device_id() -> str:
        return secrets.token_urlsafe(16)


def _is_hex(text: str) -> bool:
    return len(text) == ISSUED_HEX and all(c in "0123456789abcdef" for c in text)


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return hashlib.sha256(b"maildiode web\0" + purpose + b"\0" + secret).digest()


def _mac(key: bytes, *parts: str) -> str:
    message = b"\0".join(p.encode("utf-8", "surrogatepass") for p in parts)
    return hmac.new(key, message, hashlib.sha256).hexdigest()
