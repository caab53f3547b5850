"""Approval tokens: signed, expiring, single-use, bound to one approver and one request.

Format: ``base64url(payload) "." base64url(HMAC-SHA256(key, DOMAIN || payload))`` where the
payload is compact JSON ``{"v":1,"r":request_id,"a":approver,"n":nonce,"e":expires_at}``.

Verify steps (nothing in the payload is looked at before the MAC matches):
1. length and shape (two base64url parts) — else ``malformed``;
2. the MAC, compared in constant time — else ``forged``;
3. JSON, version 1, field types — else ``malformed`` (a signed but unknown token: our bug);
4. ``e`` not in the past — else ``expired``;
5. ``a`` equals the signed-in approver — else ``wrong-approver``;
6. ``r`` equals the request acted on — else ``wrong-request``.
Single use is enforced by the caller: the nonce is recorded atomically when the token is spent
(``State.spend_nonce``); a second spend is ``reused``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from inner_agent.outbound.errors import TokenRefused
from protocol.durable import write_durably

__all__ = ["TokenClaims", "TokenSigner", "load_or_create_secret"]

# Separates these MACs from every other use of the key (CSRF, sessions).
DOMAIN = b"maildiode approval token v1\0"
# Longer than any token we make (request id, address of up to 254 bytes, nonce, time).
MAX_TOKEN_CHARS = 1024
# 32 bytes: the HMAC-SHA256 key length.
SECRET_BYTES = 32


@dataclass(frozen=True)
class TokenClaims:
    request_id: str
    approver: str
    nonce: str
    expires_at: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    return base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True)


class TokenSigner:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < SECRET_BYTES:
            raise ValueError(f"the web secret must be at least {SECRET_BYTES} bytes")
        self._key = hashlib.sha256(b"approval-tokens\0" + secret).digest()

    def issue(self, request_id: str, approver: str, *, now: float, ttl_s: float) -> str:
        payload = json.dumps(
            {
                "v": 1,
                "r": request_id,
                "a": approver,
                "n": secrets.token_hex(16),
                "e": int(now + ttl_s),
            },
            separators=(",", ":"),
            sort_keys=True,
        ).encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def verify(
        self, untrusted_token: str, *, now: float, approver: str, request_id: str
    ) -> TokenClaims:
        claims = self.open(untrusted_token, now=now)
        if claims.approver != approver:
            raise TokenRefused("wrong-approver", f"token is for {claims.approver}")
        if claims.request_id != request_id:
            raise TokenRefused("wrong-request", f"token is for request {claims.request_id}")
        return claims

    def open(self, untrusted_token: str, *, now: float) -> TokenClaims:
        """Steps 1-4: a genuine, unexpired token's claims (not yet bound to anyone)."""
        if len(untrusted_token) > MAX_TOKEN_CHARS or untrusted_token.count(".") != 1:
            raise TokenRefused("malformed", "not a token")
        payload_text, mac_text = untrusted_token.split(".")
        try:
            untrusted_payload, mac = _unb64(payload_text), _unb64(mac_text)
        except (binascii.Error, ValueError):
            raise TokenRefused("malformed", "not base64url") from None
        if not hmac.compare_digest(mac, self._mac(untrusted_payload)):
            raise TokenRefused("forged", "signature does not verify")
        claims = _claims(untrusted_payload)
        if claims.expires_at <= now:
            raise TokenRefused("expired", f"expired at {claims.expires_at}")
        return claims

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, DOMAIN + payload, hashlib.sha256).digest()


def _claims(payload: bytes) -> TokenClaims:
    try:
        data = json.loads(payload)
        if data.get("v") != 1:
            raise ValueError("version")
        claims = TokenClaims(str(data["r"]), str(data["a"]), str(data["n"]), int(data["e"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise TokenRefused("malformed", "signed payload unreadable") from None
    return claims


def load_or_create_secret(path: Path) -> bytes:
    """The web secret: read it (owner-only file), or make one (0600) at first start."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Durable and whole: links already mailed stop working if the secret is lost or torn.
        # Two processes starting at once: the first one's secret stays, both read it.
        with contextlib.suppress(FileExistsError):
            write_durably(path, secrets.token_bytes(SECRET_BYTES), overwrite=False)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise PermissionError(f"{path} is readable by others (mode {mode:04o}); chmod 600 {path}")
    secret = path.read_bytes()
    if len(secret) < SECRET_BYTES:
        raise ValueError(f"{path} holds {len(secret)} bytes; at least {SECRET_BYTES} are needed")
    return secret
