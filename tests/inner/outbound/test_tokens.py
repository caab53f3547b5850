"""Approval tokens: genuine ones open; forged, tampered, expired, someone else's, another
request's and malformed ones are refused with their reason code."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from inner_agent.outbound.errors import TokenRefused
from inner_agent.outbound.tokens import TokenSigner, load_or_create_secret

SECRET = b"k" * 32
NOW = 1_800_000_000.0


def signer() -> TokenSigner:
    return TokenSigner(SECRET)


def test_genuine_token_verifies():
    token = signer().issue("req1", "lee@corp.example", now=NOW, ttl_s=60)
    claims = signer().verify(token, now=NOW + 59, approver="lee@corp.example", request_id="req1")
    assert (claims.request_id, claims.approver, claims.expires_at) == (
        "req1",
        "lee@corp.example",
        NOW + 60,
    )
    other = signer().issue("req1", "lee@corp.example", now=NOW, ttl_s=60)
    assert signer().open(other, now=NOW).nonce != claims.nonce  # every token is distinct


def refusal(
    token: str, *, now=NOW, approver="lee@corp.example", request_id="req1", key=SECRET
) -> str:
    with pytest.raises(TokenRefused) as caught:
        TokenSigner(key).verify(token, now=now, approver=approver, request_id=request_id)
    return caught.value.reason


def test_refusals_name_their_reason():
    token = signer().issue("req1", "lee@corp.example", now=NOW, ttl_s=60)
    assert refusal(token, now=NOW + 60) == "expired"
    assert refusal(token, approver="park@corp.example") == "wrong-approver"
    assert refusal(token, request_id="req2") == "wrong-request"
    assert refusal(token, key=b"x" * 32) == "forged"
    assert refusal("") == "malformed"
    assert refusal("a.b.c") == "malformed"
    assert refusal("!!!.???") == "malformed"
    assert refusal("x" * 5000) == "malformed"


def test_tampered_payload_is_forged_even_when_well_formed():
    token = signer().issue("req1", "park@corp.example", now=NOW, ttl_s=60)
    payload, mac = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["a"] = "lee@corp.example"  # try to take over someone else's token
    claims["e"] = int(NOW + 10**6)
    changed = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert refusal(f"{changed}.{mac}") == "forged"


def test_secret_file_is_made_private_and_refused_when_readable(tmp_path):
    path = tmp_path / "keys" / "web.secret"
    first = load_or_create_secret(path)
    assert len(first) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(path) == first
    os.chmod(path, 0o644)
    with pytest.raises(PermissionError, match="chmod 600"):
        load_or_create_secret(path)


def test_short_secret_is_refused():
    with pytest.raises(ValueError, match="at least 32"):
        TokenSigner(b"short")
