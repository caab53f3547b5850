"""Sender authentication read as hostile input: the pure steps, the child's replies checked,
and the children's limits."""

from __future__ import annotations

import base64
import json

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailsafe.senderauth import (
    DKIM_REASONS,
    DkimCheck,
    DkimKey,
    SenderFacts,
    TrustedResults,
    check_dkim,
    dns_name,
    read_facts,
)
from mailsafe.senderauth.isolated import (
    IsolatedSenderAuth,
    decode_check,
    decode_facts,
    encode_check,
    encode_facts,
)
from tests.support.dkimkeys import dkim_key_pair

MAIL = b"From: Partner <p@ext.example>\r\nTo: u@corp.example\r\nSubject: hi\r\n\r\nbody\r\n"
KEY = DkimKey("sel", "ext.example")


@pytest.fixture(scope="module")
def signer() -> tuple[bytes, str]:
    return dkim_key_pair()


@pytest.fixture(scope="module")
def isolated():
    with IsolatedSenderAuth(processes=1) as reader:
        yield reader


def signed(private: bytes, mail: bytes = MAIL, **options) -> bytes:
    return dkim.sign(mail, b"sel", b"ext.example", private, include_headers=[b"from"],
                     **options) + mail  # fmt: skip


@pytest.mark.parametrize(
    ("untrusted", "expected"),
    [
        ("Ext.Example.", "ext.example"),
        ("s1._domainkey.ext.example", "s1._domainkey.ext.example"),
        ("예시.kr", "xn--vv4b11d.kr"),  # an IDN From domain is looked up as A-labels
        ("ext example", None),
        ("a..example", None),
        ("-bad.example", None),
        ("x" * 64 + ".example", None),
        (".".join(["a" * 60] * 5), None),  # over 253
        ("ext.example;evil", None),
        ("", None),
    ],
)
def test_only_dns_names_pass(untrusted, expected):
    assert dns_name(untrusted) == expected


def test_facts_name_the_first_key_and_the_author(signer):
    private, _ = signer
    facts = read_facts(signed(private))
    assert facts == SenderFacts(signatures=1, first_key=KEY, author_domain="ext.example")
    assert read_facts(MAIL) == SenderFacts(author_domain="ext.example")
    two_authors = MAIL.replace(b"From: Partner <p@ext.example>", b"From: a@x.example, b@y.example")
    assert read_facts(two_authors).author_domain is None


def test_facts_read_the_topmost_header_of_the_trusted_server_only():
    raw = (
        b"Authentication-Results: mx.corp.example; spf=pass; dkim=fail; dkim=pass\r\n"
        b"Authentication-Results: mx.corp.example; spf=fail; dkim=fail; dmarc=fail\r\n" + MAIL
    )
    assert read_facts(raw, "mx.corp.example").trusted == TrustedResults("pass", "pass", "none")
    assert read_facts(raw, "other.example").trusted is None
    assert read_facts(raw).trusted is None


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        (b"DKIM-Signature: v=1; a=rsa-sha256; d=ext.example; s=sel; h=from; bh=AAAA; b=A!!A=\r\n",
         "signature_malformed"),  # broken base64 in b=
        (b"DKIM-Signature: v=1; a=rsa-sha256; d=ext.example; s=sel; h=from\r\n",
         "signature_malformed"),  # required tags missing
        (b"DKIM-Signature: v=1; a=rsa-sha256; d=ext.example; d=x; s=sel; h=from; bh=AA==; b=AA==\r\n",
         "signature_malformed"),  # a tag twice
        (b"DKIM-Signature: v=1; a=rsa-sha256; d=ext example; s=sel; h=from; bh=AAAA; b=AAAA\r\n",
         "signature_names_invalid"),
    ],
)  # fmt: skip
def test_a_signature_that_cannot_be_checked_says_why(header, problem):
    facts = read_facts(header + MAIL)
    assert (facts.signatures, facts.first_key, facts.dkim_problem) == (1, None, problem)
    assert problem in DKIM_REASONS


def test_a_header_block_over_the_limit_leaves_dkim_unchecked(signer):
    private, _ = signer
    raw = signed(private, b"X-Long: a\r\n" + b" x\r\n" * 100_000 + MAIL)
    facts = read_facts(raw)
    assert (facts.first_key, facts.dkim_problem) == (None, "header_too_big")


def test_check_passes_a_good_signature_and_names_every_refusal(signer):
    private, record = signer
    good = signed(private)
    assert check_dkim(good, KEY, record) == DkimCheck("pass", domain="ext.example")
    assert check_dkim(good.replace(b"body", b"BODY"), KEY, record).reason == "body_changed"
    assert check_dkim(good, KEY, "") == DkimCheck("permerror", reason="key_missing")
    assert check_dkim(good, KEY, "v=DKIM1; p=garbage!").reason == "key_unusable"
    assert check_dkim(good, KEY, "v=DKIM1; p=" + "A" * 10_000).reason == "key_too_big"
    assert check_dkim(good, DkimKey("other", "ext.example"), record).reason == (
        "signature_names_invalid"
    )
    past = signed(private, length=True).replace(b"l=6;", b"l=999999;")
    assert check_dkim(past, KEY, record) == DkimCheck("permerror", reason="length_past_body")


def test_a_key_that_would_make_verifying_costly_is_refused(signer):
    """An RSA exponent of 11 000 bits in a 3.7 KiB record: 2.2 s of CPU per mail, unbounded."""
    private, _ = signer
    modulus = (1 << 10999) | 1
    exponent = (1 << 10990) | 1
    costly = rsa.RSAPublicNumbers(exponent, modulus).public_key()
    der = costly.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
    assert len(record) < 4096
    assert check_dkim(signed(private), KEY, record) == DkimCheck("permerror", reason="key_too_big")


def test_the_child_reads_as_this_process_does(signer, isolated):
    private, record = signer
    samples = [
        MAIL,
        signed(private),
        b"Authentication-Results: mx.corp.example; spf=pass\r\n" + MAIL,
        b"DKIM-Signature: v=1; a=rsa-sha256; d=e.example; s=s; h=from; bh=AAAA; b=A!!A\r\n" + MAIL,
    ]
    for raw in samples:
        assert isolated.read_facts(raw, "mx.corp.example") == read_facts(raw, "mx.corp.example")
    good = signed(private)
    assert isolated.check_dkim(good, KEY, record) == DkimCheck("pass", domain="ext.example")
    tampered = good.replace(b"body", b"BODY")
    assert isolated.check_dkim(tampered, KEY, record) == check_dkim(tampered, KEY, record)


FACTS = SenderFacts(2, KEY, "", "ext.example", TrustedResults("pass", "none", "fail"))


@pytest.mark.parametrize(
    "change",
    [
        {"extra": 1},
        {"signatures": -1},
        {"signatures": True},
        {"key": ["sel", "ext example"]},
        {"key": ["Sel", "ext.example"]},  # not as the child normalises names: not its answer
        {"key": ["sel"]},
        {"problem": "made_up"},
        {"author": "evil.example;x"},
        {"trusted": ["pass", "pass"]},
        {"trusted": ["pass", "PASS", "none"]},
        {"trusted": ["pass", "x" * 33, "none"]},
    ],
)
def test_a_facts_reply_is_checked_before_use(change):
    fields = json.loads(encode_facts(FACTS))
    assert decode_facts(json.dumps(fields).encode()) == FACTS
    with pytest.raises((ValueError, TypeError, KeyError)):
        decode_facts(json.dumps({**fields, **change}).encode())


@pytest.mark.parametrize(
    "reply",
    [
        {"result": "pass", "domain": "other.example", "reason": ""},  # a pass for another key
        {"result": "pass", "domain": "ext.example", "reason": "bad_signature"},
        {"result": "fail", "domain": "", "reason": "made_up"},
        {"result": "none", "domain": "", "reason": ""},
        {"result": "pass", "domain": "ext.example"},
    ],
)
def test_a_check_reply_is_checked_before_use(reply):
    assert decode_check(encode_check(DkimCheck("pass", "ext.example")), KEY).result == "pass"
    with pytest.raises((ValueError, TypeError, KeyError)):
        decode_check(json.dumps(reply).encode(), KEY)


def short_lines(private: bytes, mib: int) -> bytes:
    """A signed mail whose body is ``mib`` MiB of short lines: dkimpy's costliest body."""
    return signed(private, MAIL.replace(b"body\r\n", b"a b  c\r\n" * (mib * (1 << 20) // 8)))


@pytest.mark.parametrize(
    ("failure", "reason"),
    [("cpu_limit", "cpu_limit"), ("timeout", "timeout"), ("worker_crash", "worker_crash"),
     ("too_big", "worker_crash")],
)  # fmt: skip
def test_a_child_that_fails_gives_a_reason_never_an_exception(monkeypatch, failure, reason):
    """The CPU limit itself is mailsafe.limited's (tested with the render pool); here: what a
    failed child becomes."""
    from mailsafe.limited import ChildFailed

    class FailingPool:
        def run(self, job, wall_seconds, max_reply_bytes):
            raise ChildFailed(failure)

        def close(self):
            pass

    reader = IsolatedSenderAuth.__new__(IsolatedSenderAuth)
    reader.wall_seconds, reader._pool = 1.0, FailingPool()
    assert reader.check_dkim(MAIL, KEY, "") == DkimCheck("permerror", reason=reason)
    assert reader.read_facts(MAIL, None) == SenderFacts(failure=reason)


def test_a_check_over_its_memory_limit_is_refused(signer):
    private, record = signer
    with IsolatedSenderAuth(processes=1, memory_bytes=300 << 20) as reader:
        check = reader.check_dkim(short_lines(private, 25), KEY, record)
        assert check == DkimCheck("permerror", reason="memory_limit")
        assert reader.check_dkim(signed(private), KEY, record).result == "pass"


def test_a_check_over_its_time_limit_is_stopped(signer):
    private, record = signer
    with IsolatedSenderAuth(processes=1, wall_seconds=0.3) as reader:
        check = reader.check_dkim(short_lines(private, 25), KEY, record)
        assert check == DkimCheck("permerror", reason="timeout")
        facts = reader.read_facts(MAIL, None)  # a new child; it may still be starting
        assert facts in (SenderFacts(author_domain="ext.example"), SenderFacts(failure="timeout"))
