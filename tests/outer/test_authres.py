"""Sender authentication results: trusted MX header, and SPF/DKIM/DMARC verified here."""

from __future__ import annotations

from types import SimpleNamespace

import dkim
import pytest

from outer_agent.authres import (
    AuthVerdict,
    SmtpIdentity,
    check_spf,
    from_trusted_header,
    make_authenticator,
    verify_here,
)
from tests.support.dkimkeys import dkim_key_pair

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
    return dkim_key_pair()


NO_SPF = ("none", "")  # SPF checked, no policy published


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
    verdict = verify_here(signed(private).replace(b"body", b"BODY"), txt, spf_result=NO_SPF)
    assert (verdict.dkim, verdict.dmarc) == ("fail", "fail")


def test_unaligned_signer_fails_dmarc(signer):
    private, record = signer
    txt = dns(
        {"sel._domainkey.other.example": [record], "_dmarc.ext.example": ["v=DMARC1; p=none"]}
    )
    verdict = verify_here(signed(private, b"other.example"), txt, spf_result=NO_SPF)
    assert (verdict.dkim, verdict.dmarc) == ("pass", "fail")
    # without an SPF check DMARC cannot fail: SPF might have aligned
    verdict = verify_here(signed(private, b"other.example"), txt)
    assert (verdict.spf, verdict.dmarc) == ("not_checked", "not_checked")


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


# --------------------------------------------------------------------------- SPF (pyspf)

ZONE = {
    ("ext.example", "TXT"): [[b"v=spf1 ip4:192.0.2.0/24 include:_spf.mailer.example -all"]],
    ("_spf.mailer.example", "TXT"): [[b"v=spf1 a:out.mailer.example mx ~all"]],
    ("out.mailer.example", "A"): ["198.51.100.25"],
    ("_spf.mailer.example", "MX"): [(10, "mx.mailer.example")],
    ("mx.mailer.example", "A"): ["203.0.113.9"],
    ("soft.example", "TXT"): [[b"v=spf1 ", b"~all"]],  # a record split in two strings
    ("loop.example", "TXT"): [[b"v=spf1 include:loop.example -all"]],
    ("helo.ext.example", "TXT"): [[b"v=spf1 ip4:192.0.2.7 -all"]],
    ("_dmarc.ext.example", "TXT"): [[b"v=DMARC1; p=reject"]],
    ("bounce.other.example", "TXT"): [[b"v=spf1 ip4:192.0.2.0/24 -all"]],
}


def zone(name: str, rdtype: str) -> list:
    return ZONE.get((name.lower().rstrip("."), rdtype), [])


def spf(address: str, mail_from: str = "news@ext.example", helo: str = "mx.ext.example"):
    return check_spf(SmtpIdentity(address, helo, mail_from), zone, timeout_s=5)


@pytest.mark.parametrize(
    ("address", "mail_from", "result"),
    [
        ("192.0.2.10", "news@ext.example", "pass"),  # ip4
        ("192.0.2.10:50123", "news@ext.example", "pass"),  # as the session records its peer
        ("2001:db8::1:50123", "news@ext.example", "fail"),
        ("198.51.100.25", "news@ext.example", "pass"),  # include -> a
        ("203.0.113.9", "news@ext.example", "pass"),  # include -> mx
        ("198.51.100.99", "news@ext.example", "fail"),  # include's ~all is no match: -all
        ("2001:db8::1", "news@ext.example", "fail"),
        ("192.0.2.10", "x@soft.example", "softfail"),
        ("192.0.2.10", "x@nothing.example", "none"),
        ("192.0.2.10", "x@loop.example", "permerror"),  # include loop
    ],
)
def test_spf_results(address, mail_from, result):
    assert spf(address, mail_from) == (result, mail_from.rpartition("@")[2])


def test_null_sender_is_checked_by_helo_name():
    assert spf("192.0.2.7", "", "helo.ext.example") == ("pass", "helo.ext.example")
    assert spf("192.0.2.8", "", "helo.ext.example")[0] == "fail"


def test_spf_dns_failure_is_temperror_and_a_local_client_is_none():
    def broken(name, rdtype):
        raise TimeoutError(name)

    assert check_spf(SmtpIdentity("192.0.2.1", "h", "a@ext.example"), broken, timeout_s=1) == (
        "temperror",
        "ext.example",
    )
    assert spf("not-an-address")[0] == "none"


def txt_of(name: str) -> list[str]:
    return [b"".join(parts).decode() for parts in zone(name, "TXT")]


def test_dmarc_passes_on_aligned_spf_alone_and_fails_unaligned():
    verdict = verify_here(MAIL, txt_of, spf_result=spf("192.0.2.10"))  # From: ext.example
    assert (verdict.spf, verdict.dkim, verdict.dmarc) == ("pass", "none", "pass")
    verdict = verify_here(MAIL, txt_of, spf_result=spf("192.0.2.10", "b@bounce.other.example"))
    assert (verdict.spf, verdict.dmarc) == ("pass", "fail")  # SPF passed for another domain


def test_verify_mode_checks_spf_from_the_envelope_unless_told_not_to():
    envelope = SimpleNamespace(client_addr="198.51.100.99", helo="h", mail_from="n@ext.example")
    verify = make_authenticator("verify", trusted_authserv_id=None, dns_timeout_s=1, query=zone)
    assert (verify(MAIL, envelope).spf, verify(MAIL, envelope).dmarc) == ("fail", "fail")
    quiet = make_authenticator(
        "verify", trusted_authserv_id=None, dns_timeout_s=1, spf_here=False, query=zone
    )
    assert (quiet(MAIL, envelope).spf, quiet(MAIL, envelope).dmarc) == ("not_checked",) * 2
