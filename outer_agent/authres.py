"""Sender authentication (SPF / DKIM / DMARC) as data for the notification, never a verdict.

Three modes (``[auth] mode``):

- ``off``: nothing is checked; every result reads ``not_checked``.
- ``trust_mx``: the organisation's MX in front of us already checked. We take the *topmost*
  ``Authentication-Results`` header whose authserv-id is the configured one (RFC 8601 §5: an MX
  removes or overrides headers carrying its own id, so lower ones may be forged by the sender).
- ``verify``: checked here. DKIM with dkimpy; SPF (RFC 7208) with pyspf for the connecting
  address, HELO and envelope sender the SMTP session recorded, when ``check_spf`` is on (the
  default: in this mode the outer agent is the MX; behind another MX the connecting address is
  that MX's, so turn it off or use ``trust_mx``); DMARC passes when a passing DKIM signature or
  a passing SPF identity aligns with the From domain and the domain publishes a ``_dmarc``
  record (dnspython). Without SPF, a mail whose DKIM does not align has DMARC ``not_checked``,
  never a false ``fail``.
"""

from __future__ import annotations

import contextvars
import ipaddress
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses
from typing import Any

__all__ = [
    "AuthVerdict",
    "SmtpIdentity",
    "check_spf",
    "from_trusted_header",
    "make_authenticator",
    "verify_here",
]

log = logging.getLogger(__name__)

# Only this much of a message is given to header parsing here: headers live at the top.
MAX_HEADER_SCAN_BYTES = 256 << 10
_RESULT = re.compile(r"\b(spf|dkim|dmarc)\s*=\s*([a-z]+)", re.IGNORECASE)
_COMMENT = re.compile(r"\([^()]*\)")
_RANK = {
    "pass": 0,
    "fail": 1,
    "softfail": 2,
    "neutral": 3,
    "policy": 4,
    "temperror": 5,
    "permerror": 6,
    "none": 7,
    "not_checked": 8,
}


@dataclass(frozen=True)
class AuthVerdict:
    """One word per mechanism (RFC 8601 result names, or ``not_checked``) and a one-line summary."""

    spf: str
    dkim: str
    dmarc: str
    summary: str

    @classmethod
    def make(cls, spf: str, dkim: str, dmarc: str, source: str) -> AuthVerdict:
        return cls(spf, dkim, dmarc, f"spf={spf} dkim={dkim} dmarc={dmarc} ({source})")

    @classmethod
    def not_checked(cls) -> AuthVerdict:
        return cls.make("not_checked", "not_checked", "not_checked", "not checked")

    @classmethod
    def error(cls) -> AuthVerdict:
        return cls.make("temperror", "temperror", "temperror", "check failed")


def _headers(raw: bytes) -> list[tuple[str, str]]:
    message = BytesHeaderParser(policy=compat32).parsebytes(raw[:MAX_HEADER_SCAN_BYTES])
    return [(k, str(v)) for k, v in message.items()]


def from_trusted_header(raw: bytes, authserv_id: str) -> AuthVerdict:
    """Results from the topmost Authentication-Results header of the trusted MX."""
    wanted = authserv_id.strip().lower()
    for name, value in _headers(raw):
        if name.lower() != "authentication-results":
            continue
        text = _COMMENT.sub(" ", " ".join(value.split()))
        server = text.split(";", 1)[0].strip().split()[0].lower() if text.strip() else ""
        if server != wanted:
            continue
        found: dict[str, str] = {}
        for mechanism, result in _RESULT.findall(text.split(";", 1)[1] if ";" in text else ""):
            key, word = mechanism.lower(), result.lower()
            if key not in found or _RANK.get(word, 9) < _RANK.get(found[key], 9):
                found[key] = word  # several DKIM signatures: the best result counts
        return AuthVerdict.make(
            found.get("spf", "none"),
            found.get("dkim", "none"),
            found.get("dmarc", "none"),
            f"from {wanted}",
        )
    return AuthVerdict.make("none", "none", "none", f"no header from {wanted}")


DnsTxt = Callable[[str], list[str]]
# (name, record type) -> answers in pyspf's shapes: A/AAAA address text, MX (preference, host),
# TXT/SPF a list of byte strings, PTR a host name. [] for no answer; TimeoutError on failure.
DnsQuery = Callable[[str, str], list[Any]]
# SPF results (RFC 7208 §2.6): pyspf's names are the RFC 8601 words we show.
_SPF_RESULTS = frozenset({"pass", "fail", "softfail", "neutral", "none", "temperror", "permerror"})


@dataclass(frozen=True)
class SmtpIdentity:
    """What the SMTP session saw of the sending MTA (the spool envelope has the same fields)."""

    client_addr: str
    helo: str
    mail_from: str


def _dns_query(timeout_s: float) -> DnsQuery:
    import dns.exception
    import dns.resolver

    resolver = dns.resolver.Resolver()
    resolver.lifetime = timeout_s

    def query(name: str, rdtype: str) -> list[Any]:
        try:
            answer = resolver.resolve(name, rdtype)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException as exc:
            raise TimeoutError(f"DNS {rdtype} {name}: {exc}") from exc
        return [_rdata_value(rdtype, r) for r in answer]

    return query


def _rdata_value(rdtype: str, rdata: Any) -> Any:
    if rdtype in ("A", "AAAA"):
        return rdata.address
    if rdtype == "MX":
        return (rdata.preference, rdata.exchange.to_text(True))
    if rdtype == "PTR":
        return rdata.target.to_text(True)
    return list(rdata.strings)  # TXT, SPF


def _dns_txt(query: DnsQuery) -> DnsTxt:
    return lambda name: [
        b"".join(strings).decode("ascii", "replace") for strings in query(name, "TXT")
    ]


# pyspf looks names up through its module-level DNSLookup; ours answers through the resolver
# of the check running in this thread (a context variable, so concurrent checks never mix).
_SPF_DNS: contextvars.ContextVar[DnsQuery] = contextvars.ContextVar("maildiode_spf_dns")


def _spf_lookup(name: str, qtype: str, *_args: Any, **_kwargs: Any) -> list[Any]:
    import spf

    try:
        values = _SPF_DNS.get()(name, qtype)
    except TimeoutError as exc:
        raise spf.TempError(f"DNS {exc}") from exc
    return [((name, qtype), value) for value in values]


def _client_ip(text: str) -> str | None:
    """The address of "ADDR:PORT" (how the SMTP session records its peer), or of "ADDR"."""
    for candidate in (text.rpartition(":")[0], text):
        try:
            return str(ipaddress.ip_address(candidate.strip("[]")))
        except ValueError:
            continue
    return None


def check_spf(identity: SmtpIdentity, query: DnsQuery, *, timeout_s: float) -> tuple[str, str]:
    """(SPF result, the domain it is for) for the sending MTA (RFC 7208), with pyspf.

    The identity checked is MAIL FROM, or for a null sender the HELO name (§2.4).
    """
    import spf

    address = _client_ip(identity.client_addr)
    if address is None:
        return "none", ""  # not an IP address: nothing to check
    sender = identity.mail_from or f"postmaster@{identity.helo}"
    domain = sender.rpartition("@")[2].lower().rstrip(".")
    spf.DNSLookup = _spf_lookup
    token = _SPF_DNS.set(query)
    try:
        result, _code, _explanation = spf.query(
            i=address, s=sender, h=identity.helo or domain, querytime=timeout_s
        ).check()
    except Exception:
        log.exception("SPF check of %s for %s failed", sender, address)
        result = "permerror"
    finally:
        _SPF_DNS.reset(token)
    word = str(result).lower()
    return (word if word in _SPF_RESULTS else "permerror"), domain


def verify_here(
    raw: bytes,
    txt: DnsTxt,
    *,
    spf_result: tuple[str, str] | None = None,
) -> AuthVerdict:
    """DKIM (first signature) with dkimpy and DMARC alignment of DKIM or of ``spf_result``
    ((result, domain) from :func:`check_spf`; None when SPF is not checked here)."""
    import dkim

    def dnsfunc(name: bytes | str, timeout: int = 5) -> bytes:
        text = name.decode() if isinstance(name, bytes) else name
        records = txt(text.rstrip("."))
        return records[0].encode() if records else b""

    verifier = dkim.DKIM(raw)
    spf_word, spf_domain = spf_result or ("not_checked", "")
    try:
        dkim_ok = bool(verifier.verify(dnsfunc=dnsfunc))
    except TimeoutError:
        return AuthVerdict.make(spf_word, "temperror", "temperror", "verified here")
    except Exception:  # noqa: BLE001 - dkimpy raises many kinds on hostile signatures
        dkim_ok = False
    has_signature = any(k.lower() == "dkim-signature" for k, _ in _headers(raw))
    dkim_word = "pass" if dkim_ok else ("fail" if has_signature else "none")
    signer = (verifier.domain or b"").decode("ascii", "replace").lower() if dkim_ok else ""
    spf_passed = spf_domain if spf_word == "pass" else ""
    dmarc = _dmarc(raw, signer, spf_passed, txt, spf_checked=spf_result is not None)
    return AuthVerdict.make(spf_word, dkim_word, dmarc, "verified here")


def _aligned(domain: str, from_domain: str) -> bool:
    """Relaxed alignment (RFC 7489 §3.1), approximated without the public-suffix list."""
    return bool(domain) and (
        domain == from_domain
        or from_domain.endswith("." + domain)
        or domain.endswith("." + from_domain)
    )


def _dmarc(raw: bytes, dkim_domain: str, spf_domain: str, txt: DnsTxt, *, spf_checked: bool) -> str:
    from_values = [v for k, v in _headers(raw) if k.lower() == "from"]
    addresses = getaddresses(from_values)
    if len(addresses) != 1 or "@" not in addresses[0][1]:
        return "permerror"  # RFC 7489 §6.6.1: exactly one author address
    from_domain = addresses[0][1].rpartition("@")[2].lower().rstrip(".")
    try:
        records = [r for r in txt(f"_dmarc.{from_domain}") if r.lower().startswith("v=dmarc1")]
    except TimeoutError:
        return "temperror"
    if not records:
        return "none"
    if _aligned(dkim_domain, from_domain) or _aligned(spf_domain, from_domain):
        return "pass"
    return "fail" if spf_checked else "not_checked"


def make_authenticator(
    mode: str,
    *,
    trusted_authserv_id: str | None,
    dns_timeout_s: float,
    spf_here: bool = True,
    query: DnsQuery | None = None,
) -> Callable[[bytes, Any], AuthVerdict]:
    """The function the pipeline calls per mail (raw mail, spool envelope), chosen once from the
    [auth] section; ``query`` replaces the system resolver (tests)."""
    if mode == "trust_mx" and trusted_authserv_id:
        authserv_id = trusted_authserv_id
        return lambda raw, _envelope: from_trusted_header(raw, authserv_id)
    if mode != "verify":
        return lambda _raw, _envelope: AuthVerdict.not_checked()
    dns = query or _dns_query(dns_timeout_s)
    txt = _dns_txt(dns)

    def verify(raw: bytes, envelope: Any) -> AuthVerdict:
        spf_result = None
        if spf_here:
            identity = SmtpIdentity(envelope.client_addr, envelope.helo, envelope.mail_from)
            spf_result = check_spf(identity, dns, timeout_s=dns_timeout_s)
        return verify_here(raw, txt, spf_result=spf_result)

    return verify
