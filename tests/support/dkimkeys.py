"""A DKIM key pair for tests: the private key (PEM) and its DNS TXT record."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def dkim_key_pair(bits: int = 2048) -> tuple[bytes, str]:
    """(private key as PEM, ``v=DKIM1; k=rsa; p=...`` record)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, "v=DKIM1; k=rsa; p=" + base64.b64encode(public).decode()
