"""What a mail says about its sender's authentication, read as the hostile input it is.

Two steps, pure (no DNS, no files; the caller looks the key up between them):

1. :func:`read_facts` reads the header block: how many DKIM signatures there are and the key
   the first one names (or why it cannot be checked), the author domain DMARC aligns with, and
   the results a trusted MX wrote (its topmost ``Authentication-Results``).
2. :func:`check_dkim` verifies the first signature (dkimpy) against the key record the caller
   looked up for it.

The outer agent runs both in children with memory, CPU and wall-clock limits
(:mod:`mailsafe.senderauth.isolated`); :data:`IN_PROCESS` runs them here, for tests and tools.
Only small checked values come back: words, reason codes and DNS names.

Limits (each a refusal point, never a silent cut): the header block is read up to
``MAX_HEADER_BLOCK_BYTES`` (a longer one leaves DKIM unchecked, ``header_too_big``); a mail
over ``MAX_MAIL_BYTES`` is not hashed (``mail_too_big``); a key record over
``MAX_KEY_RECORD_BYTES``, an RSA key over ``MAX_RSA_KEY_BITS`` or an exponent over
``MAX_RSA_EXPONENT_BITS`` is refused (``key_too_big``); only the first signature is verified,
and an ``l=`` past the end of the body refuses it (``length_past_body``).
"""

from __future__ import annotations

import binascii
import email.parser
import email.policy
import re
from dataclasses import dataclass
from email.utils import getaddresses
from typing import Final, Literal, Protocol

import dkim
from dkim.util import InvalidTagValueList

from mailsafe.mime import MAX_HEADER_BLOCK_BYTES, ParseLimits

__all__ = [
    "DKIM_REASONS",
    "IN_PROCESS",
    "MAX_KEY_RECORD_BYTES",
    "MAX_MAIL_BYTES",
    "MAX_RSA_EXPONENT_BITS",
    "MAX_RSA_KEY_BITS",
    "DkimCheck",
    "DkimKey",
    "SenderAuthReader",
    "SenderFacts",
    "TrustedResults",
    "check_dkim",
    "dns_name",
    "read_facts",
    "result_word",
    "valid_word",
]

# The whole mail is hashed for DKIM: the parser's own bound on a mail (64 MiB, above any MX's
# SIZE) is the bound here too.
MAX_MAIL_BYTES: Final = ParseLimits().max_raw_bytes
# A DKIM key record is one key: RSA-4096 in base64 is ~740 bytes, RSA-8192 ~1.4 KiB.
MAX_KEY_RECORD_BYTES: Final = 4096
# RFC 8301 §3.2: verifiers must handle RSA keys of 1024 to 4096 bits; twice that is still a key.
MAX_RSA_KEY_BITS: Final = 8192
# Real keys use e = 65537 (17 bits). The exponent sets the cost of a verification: one of 11 000
# bits, in a 3.7 KiB record the signer controls, made each mail cost 2.2 s of CPU.
MAX_RSA_EXPONENT_BITS: Final = 64
# RFC 1035: a domain name is at most 253 characters, a label 63.
MAX_DNS_NAME: Final = 253
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
# An RFC 8601 result word (or one a trusted MX made up): short lowercase letters.
_WORD = re.compile(r"[a-z]{1,32}")
_RESULT = re.compile(r"\b(spf|dkim|dmarc)\s*=\s*([a-z]+)", re.IGNORECASE)
_COMMENT = re.compile(r"\([^()]*\)")
_RANK = {"pass": 0, "fail": 1, "softfail": 2, "neutral": 3, "policy": 4, "temperror": 5,
         "permerror": 6, "none": 7, "not_checked": 8}  # fmt: skip

# Why DKIM gave no pass, as codes (they cross the child's pipe; words for people below).
DKIM_REASONS: Final = {
    "header_too_big": f"the header block is over {MAX_HEADER_BLOCK_BYTES >> 10} KiB",
    "header_malformed": "the header block cannot be read",
    "signature_malformed": "the signature's tags are malformed, missing or expired",
    "signature_names_invalid": "d= or s= is not a domain name",
    "length_past_body": "l= counts past the end of the body",
    "mail_too_big": f"the mail is over {MAX_MAIL_BYTES >> 20} MiB",
    "key_missing": "no key record is published for the signature",
    "key_too_big": f"the key record is over {MAX_KEY_RECORD_BYTES} bytes, or its RSA key over "
    f"{MAX_RSA_KEY_BITS} bits or its exponent over {MAX_RSA_EXPONENT_BITS} bits",
    "key_unusable": "the key record is not a usable key",
    "body_changed": "the body is not what was signed",
    "bad_signature": "the signature does not verify",
    "verifier_error": "the verifier failed on this mail",
    # The child itself (mailsafe.limited): the mail cost more than its limits allow.
    "timeout": "checking took longer than its time limit",
    "cpu_limit": "checking used more CPU time than allowed",
    "memory_limit": "checking needed more memory than allowed",
    "worker_crash": "the checking process died",
    "unexpected": "the checking process answered something unexpected",
}
# The first signature cannot be processed (RFC 8601 §2.7.1 "permerror") for these; the other
# no-pass reasons are a processed signature that does not verify ("fail").
_FAILS: Final = frozenset({"body_changed", "bad_signature"})


def result_word(reason: str) -> Literal["fail", "permerror"]:
    """The RFC 8601 DKIM result a no-pass reason code stands for."""
    return "fail" if reason in _FAILS else "permerror"


@dataclass(frozen=True)
class DkimKey:
    """The key a signature names: its TXT record is ``<selector>._domainkey.<domain>``."""

    selector: str
    domain: str

    @property
    def record_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"


@dataclass(frozen=True)
class TrustedResults:
    """The words of the topmost ``Authentication-Results`` field of one authserv-id."""

    spf: str
    dkim: str
    dmarc: str


@dataclass(frozen=True)
class SenderFacts:
    """What the header block says; ``failure`` is a reason code when it could not be read."""

    signatures: int = 0  # DKIM-Signature fields
    first_key: DkimKey | None = None  # the first signature's key, when it can be checked
    # A reason code: why the first signature (or any beyond the header limit) cannot be checked.
    dkim_problem: str = ""
    author_domain: str | None = None  # the one From address's domain; None: not exactly one
    trusted: TrustedResults | None = None  # None: no field of the authserv-id asked for
    failure: str = ""


@dataclass(frozen=True)
class DkimCheck:
    """The first signature, verified: ``domain`` is its d= on a pass; ``reason`` a code."""

    result: Literal["pass", "fail", "permerror"]
    domain: str = ""
    reason: str = ""

    @classmethod
    def refused(cls, reason: str) -> DkimCheck:
        return cls(result_word(reason), reason=reason)


class SenderAuthReader(Protocol):
    """Where the hostile reading runs: here (:data:`IN_PROCESS`) or in limited children
    (:class:`mailsafe.senderauth.isolated.IsolatedSenderAuth`). Never raises on input."""

    def read_facts(self, raw: bytes, authserv_id: str | None) -> SenderFacts: ...

    def check_dkim(self, raw: bytes, key: DkimKey, key_record: str) -> DkimCheck: ...


# --------------------------------------------------------------------------- reading


def dns_name(untrusted: str) -> str | None:
    """``untrusted`` as a DNS name (lower case, A-labels, no final dot), or None if it is not
    one: it is looked up, so nothing else may pass."""
    text = untrusted.strip().rstrip(".").lower()
    if not text.isascii():
        try:
            text = text.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    labels = text.split(".")
    if len(text) > MAX_DNS_NAME or not all(_LABEL.fullmatch(label) for label in labels):
        return None
    return text


def read_facts(untrusted: bytes, authserv_id: str | None = None) -> SenderFacts:
    """What the header block of ``untrusted`` says (only its first MAX_HEADER_BLOCK_BYTES + 1
    bytes are looked at; a header block longer than that leaves DKIM unchecked)."""
    top = untrusted[: MAX_HEADER_BLOCK_BYTES + 1]
    fields = _header_fields(top)
    signatures = sum(1 for name, _ in fields if name.lower() == "dkim-signature")
    block = _header_block(top)
    first_key, problem = None, ""
    if block is None:  # signatures may lie beyond what is read: none can be checked
        problem = "header_too_big"
    elif signatures:
        first_key, problem = _first_key(block)
    return SenderFacts(
        signatures=signatures,
        first_key=first_key,
        dkim_problem=problem,
        author_domain=_author_domain(fields),
        trusted=_trusted_results(fields, authserv_id) if authserv_id else None,
    )


def _header_fields(top: bytes) -> list[tuple[str, str]]:
    parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)
    message = parser.parsebytes(top[:MAX_HEADER_BLOCK_BYTES])
    return [(name, str(value)) for name, value in message.items()]


def _header_block(untrusted: bytes) -> bytes | None:
    """The header block up to and with its empty line; None when it is over the limit."""
    end = re.search(rb"\r?\n\r?\n", untrusted[: MAX_HEADER_BLOCK_BYTES + 4])
    if end is None:
        return untrusted if len(untrusted) <= MAX_HEADER_BLOCK_BYTES else None
    return untrusted[: end.end()] if end.start() <= MAX_HEADER_BLOCK_BYTES else None


def _first_key(block: bytes) -> tuple[DkimKey | None, str]:
    """The key of the first signature as dkimpy sees it, or why it cannot be checked."""
    parsed = _first_signature(block)
    if isinstance(parsed, str):
        return None, parsed
    key = _key_of(parsed[1])
    return (key, "") if key is not None else (None, "signature_names_invalid")


def _first_signature(untrusted: bytes) -> tuple[dkim.DKIM, dict[bytes, bytes]] | str:
    """dkimpy's verifier for ``untrusted`` and the tags of its first signature (checked for
    form, not yet verified), or the reason code why there is none to check."""
    try:
        verifier = dkim.DKIM(untrusted)
        prepared = verifier.verify_headerprep(0)
    except dkim.MessageFormatError as exc:
        return "signature_malformed" if _is_tag_error(exc) else "header_malformed"
    except (dkim.DKIMException, InvalidTagValueList, ValueError):
        return "signature_malformed"
    if not prepared:
        return "header_malformed"  # a field the mail parser saw and dkimpy did not
    return verifier, prepared[0]


def _is_tag_error(exc: Exception) -> bool:
    """dkimpy wraps a malformed tag list of the signature in MessageFormatError."""
    return isinstance(exc.args[0] if exc.args else None, InvalidTagValueList)


def _author_domain(fields: list[tuple[str, str]]) -> str | None:
    """RFC 7489 §6.6.1: exactly one author address, or no domain to align with."""
    addresses = getaddresses([value for name, value in fields if name.lower() == "from"])
    if len(addresses) != 1 or "@" not in addresses[0][1]:
        return None
    return dns_name(addresses[0][1].rpartition("@")[2])


def _trusted_results(fields: list[tuple[str, str]], authserv_id: str) -> TrustedResults | None:
    """The topmost Authentication-Results field of ``authserv_id`` (RFC 8601 §5: an MX removes
    or overrides fields carrying its own id, so lower ones may be forged by the sender)."""
    wanted = authserv_id.strip().lower()
    for name, value in fields:
        if name.lower() != "authentication-results":
            continue
        text = _COMMENT.sub(" ", " ".join(value.split()))
        server = text.split(";", 1)[0].strip().split()[0].lower() if text.strip() else ""
        if server != wanted:
            continue
        found: dict[str, str] = {}
        for mechanism, result in _RESULT.findall(text.split(";", 1)[1] if ";" in text else ""):
            key, word = mechanism.lower(), result.lower()[:32]
            if key not in found or _RANK.get(word, 9) < _RANK.get(found[key], 9):
                found[key] = word  # several DKIM signatures: the best result counts
        return TrustedResults(
            found.get("spf", "none"), found.get("dkim", "none"), found.get("dmarc", "none")
        )
    return None


def valid_word(untrusted: str) -> bool:
    return _WORD.fullmatch(untrusted) is not None


# --------------------------------------------------------------------------- verifying


def check_dkim(untrusted: bytes, key: DkimKey, key_record: str) -> DkimCheck:
    """Verify the first signature of ``untrusted`` with ``key_record`` (the TXT record the
    caller found at ``key.record_name``; "" for none)."""
    if len(untrusted) > MAX_MAIL_BYTES:
        return DkimCheck.refused("mail_too_big")
    if len(key_record) > MAX_KEY_RECORD_BYTES:
        return DkimCheck.refused("key_too_big")
    if _header_block(untrusted) is None:
        return DkimCheck.refused("header_too_big")
    try:
        return _verify(untrusted, key, key_record.encode("ascii", "replace"))
    except MemoryError:
        raise  # the child answers memory_limit
    except Exception:  # noqa: BLE001 - dkimpy raises many kinds on hostile input
        return DkimCheck.refused("verifier_error")


def _verify(untrusted: bytes, key: DkimKey, record: bytes) -> DkimCheck:
    parsed = _first_signature(untrusted)
    if isinstance(parsed, str):
        return DkimCheck.refused(parsed)
    verifier, signature = parsed
    if _key_of(signature) != key:
        return DkimCheck.refused("signature_names_invalid")  # not the key that was looked up
    if b"l" in signature and int(signature[b"l"] or b"0") > len(verifier.body) + 2:
        return DkimCheck.refused("length_past_body")  # +2: canonical forms may add a CRLF
    problem = _key_problem(key, record)
    if problem:
        return DkimCheck.refused(problem)
    return _run_verifier(verifier, key, record)


def _run_verifier(verifier: dkim.DKIM, key: DkimKey, record: bytes) -> DkimCheck:
    """dkimpy's verify of the first signature, its key record given (no DNS)."""
    try:
        verified = verifier.verify(0, dnsfunc=lambda _name, timeout=5: record)
    except dkim.ValidationError as exc:  # after prep: the body hash, or the key's service type
        return DkimCheck.refused("body_changed" if "body hash" in str(exc) else "key_unusable")
    except dkim.KeyFormatError:  # e.g. a key too small to trust
        return DkimCheck.refused("key_unusable")
    except (dkim.DKIMException, binascii.Error, ValueError):
        return DkimCheck.refused("signature_malformed")
    if not verified:
        return DkimCheck.refused("bad_signature")
    return DkimCheck("pass", domain=key.domain)


def _key_of(signature: dict[bytes, bytes]) -> DkimKey | None:
    selector = dns_name(signature[b"s"].decode("utf-8", "replace"))
    domain = dns_name(signature[b"d"].decode("utf-8", "replace"))
    return None if selector is None or domain is None else DkimKey(selector, domain)


def _key_problem(key: DkimKey, record: bytes) -> str:
    if not record.strip():
        return "key_missing"
    try:
        public, _bits, kind, _tlsrpt = dkim.evaluate_pk(key.record_name.encode("ascii"), record)
    except (dkim.DKIMException, binascii.Error, ValueError, KeyError, TypeError):
        return "key_unusable"
    if kind == b"rsa" and (
        int(public["modulus"]).bit_length() > MAX_RSA_KEY_BITS
        or int(public["publicExponent"]).bit_length() > MAX_RSA_EXPONENT_BITS
    ):
        return "key_too_big"
    return ""


class _InProcess:
    """Both steps in this process: for tests and tools, never for the agent's hostile mail."""

    def read_facts(self, raw: bytes, authserv_id: str | None) -> SenderFacts:
        return read_facts(raw, authserv_id)

    def check_dkim(self, raw: bytes, key: DkimKey, key_record: str) -> DkimCheck:
        return check_dkim(raw, key, key_record)


IN_PROCESS: Final[SenderAuthReader] = _InProcess()
