"""Sender authentication results: trusted MX header, and DKIM/DMARC verified here."""

from __future__ import annotations

import base64

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from outer_agent.authres import AuthVerdict, from_trusted_header, make_authenticator, verify_here

MAIL = b"From: Partner <p@ext.example>\r\nTo: u@corp.example\r\nSubject: hi\r\n\r\nbody\r\n"


def test_topmost_header_of_the_trusted_mx_counts_and_forged_ones_below_do_not():
    raw = (
        b"Authentication-Results: mx.corp.example; spf=softfail smtp.mailfrom=ext.example;\r\n"
        b" dkim=fail (bad sig) header.d=ext.example; dkim=pass header.d=ext.example;\r\n"
        b" dmarc=pass (p=reject) header.from=ext.example\r\n"
        b"Authentication-Results: mx.corp.example; spf=pass; dkim=pass; dmarc=pass\r\n" + MAIL
    )
    verdict = from_trusted_header(raw, "MX.corp.example")
    assert (verdict.spf, verdict.dkim, verdict.dmarc) == ("softfail", "pass", "pass")


def test_headers_of_other_servers_are_ignored():
    raw = b"Authentication-Results: evil.example; spf=pass; dkim=pass; dmarc=pass\r\n" + MAIL
    verdict = from_trusted_header(raw, "mx.corp.example")
    assert (verdict.spf, verdict.dkim, verdict.dmarc) == ("none", "none", "none")
    assert "no header" in verdict.summary


@pytest.fixture(scope="module")
def signer():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = "v=DKIM1; k=rsa; p=" + base64.b64encode(public).decode()
    return private, record


def dns(records):
    return lambda name: records.get(name, [])


def signed(private, domain=b"ext.example"):
    return dkim.sign(MAIL, b"sel", domain, private, include_headers=[b"from", b"subject"]) + MAIL


def test_valid_dkim_aligned_with_dmarc_passes(signer):
    private, record = signer
    txt = dns(
        {"sel._domainkey.ext.example": [record], "_dmarc.ext.example": ["v=DMARC1; p=reject"]}
    )
    verdict = verify_here(signed(private), txt)
    assert (verdict.spf, verdict.dkim, verdict.dmarc) == ("not_checked", "pass", "pass")


def test_tampered_body_fails_dkim_and_dmarc(signer):
    private, record = signer
    txt = dns(
        {"sel._domainkey.ext.example": [record], "_dmarc.ext.example": ["v=DMARC1; p=reject"]}
    )
    verdict = verify_here(signed(private).replace(b"body", b"BODY"), txt)
    assert (verdict.dkim, verdict.dmarc) == ("fail", "fail")


def test_unaligned_signer_fails_dmarc(signer):
    private, record = signer
    txt = dns(
        {"sel._domainkey.other.example": [record], "_dmarc.ext.example": ["v=DMARC1; p=none"]}
    )
    verdict = verify_here(signed(private, b"other.example"), txt)
    assert (verdict.dkim, verdict.dmarc) == ("pass", "fail")


def test_unsigned_mail_without_dmarc_record():
    verdict = verify_here(MAIL, dns({}))
    assert (verdict.dkim, verdict.dmarc) == ("none", "none")


def test_dns_timeouts_are_temperror():
    def slow(name):
        raise TimeoutError(name)

    verdict = verify_here(MAIL, slow)
    assert verdict.dmarc == "temperror"


def test_modes():
    assert (
        make_authenticator("off", trusted_authserv_id=None, dns_timeout_s=1)(MAIL, None)
        == AuthVerdict.not_checked()
    )
    trust = make_authenticator("trust_mx", trusted_authserv_id="mx.corp.example", dns_timeout_s=1)
    raw = b"Authentication-Results: mx.corp.example; spf=pass; dkim=none; dmarc=none\r\n" + MAIL
    assert trust(raw, None).spf == "pass"
