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

Where the mail's bytes are read: by a :class:`mailsafe.senderauth.SenderAuthReader`. The agent
(:class:`SenderAuthentication`) gives it :class:`~mailsafe.senderauth.isolated.IsolatedSenderAuth`,
children with memory, CPU and wall-clock limits (trust boundary 1 of docs/architecture.md);
the functions below default to reading in this process, for tests and tools. What is done
here: DNS (the DKIM key, the ``_dmarc`` record, SPF) for names the reader returned and this
side checked, and the verdict. No DNS at all in ``off`` and ``trust_mx``.
"""

from __future__ import annotations

import contextvars
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.resolver
import spf

from mailsafe.senderauth import (
    DKIM_REASONS,
    IN_PROCESS,
    DkimCheck,
    SenderAuthReader,
    SenderFacts,
)
from mailsafe.senderauth.isolated import IsolatedSenderAuth
from outer_agent.config import AuthSection
from outer_agent.spool import Envelope

__all__ = [
    "AuthVerdict",
    "SenderAuthentication",
    "SmtpIdentity",
    "check_spf",
    "from_trusted_header",
    "make_authenticator",
    "verify_here",
]

log = logging.getLogger(__name__)


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


def _unread(facts: SenderFacts) -> str:
    """Why the reader could not read the mail at all, in words."""
    return f"mail not read: {DKIM_REASONS.get(facts.failure, facts.failure)}"


def from_trusted_header(
    raw: bytes, authserv_id: str, *, reader: SenderAuthReader = IN_PROCESS
) -> AuthVerdict:
    """Results from the topmost Authentication-Results header of the trusted MX."""
    wanted = authserv_id.strip().lower()
    facts = reader.read_facts(raw, wanted)
    if facts.failure:
        return AuthVerdict.make("permerror", "permerror", "permerror",
                                f"from {wanted}; {_unread(facts)}")  # fmt: skip
    found = facts.trusted
    if found is None:
        return AuthVerdict.make("none", "none", "none", f"no header from {wanted}")
    return AuthVerdict.make(found.spf, found.dkim, found.dmarc, f"from {wanted}")


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
    reader: SenderAuthReader = IN_PROCESS,
) -> AuthVerdict:
    """DKIM (the first signature) and DMARC alignment of DKIM or of ``spf_result``
    ((result, domain) from :func:`check_spf`; None when SPF is not checked here). ``reader``
    reads the mail; DNS (``txt``) is asked here, for the names it returned only."""
    spf_word, spf_domain = spf_result or ("not_checked", "")
    facts = reader.read_facts(raw, None)
    if facts.failure:
        return AuthVerdict.make(spf_word, "permerror", "permerror",
                                f"verified here; {_unread(facts)}")  # fmt: skip
    try:
        checked = _dkim(raw, facts, txt, reader)
    except TimeoutError:  # the key could not be looked up
        return AuthVerdict.make(spf_word, "temperror", "temperror", "verified here")
    spf_passed = spf_domain if spf_word == "pass" else ""
    signer = checked.domain if checked is not None else ""
    dmarc = _dmarc(facts.author_domain, signer, spf_passed, txt, spf_checked=spf_result is not None)
    if checked is None:
        return AuthVerdict.make(spf_word, "none", dmarc, "verified here")
    why = f"; dkim: {DKIM_REASONS[checked.reason]}" if checked.reason else ""
    return AuthVerdict.make(spf_word, checked.result, dmarc, f"verified here{why}")


def _dkim(
    raw: bytes, facts: SenderFacts, txt: DnsTxt, reader: SenderAuthReader
) -> DkimCheck | None:
    """The first signature checked (None: the mail has none); TimeoutError from the lookup of
    its key. Only a key name the reader returned as a DNS name is looked up."""
    if facts.dkim_problem:
        return DkimCheck.refused(facts.dkim_problem)
    if facts.first_key is None:
        return None
    records = txt(facts.first_key.record_name)
    return reader.check_dkim(raw, facts.first_key, records[0] if records else "")


def _aligned(domain: str, from_domain: str) -> bool:
    """Relaxed alignment (RFC 7489 §3.1), approximated without the public-suffix list."""
    return bool(domain) and (
        domain == from_domain
        or from_domain.endswith("." + domain)
        or domain.endswith("." + from_domain)
    )


def _dmarc(
    from_domain: str | None, dkim_domain: str, spf_domain: str, txt: DnsTxt, *, spf_checked: bool
) -> str:
    if from_domain is None:
        return "permerror"  # RFC 7489 §6.6.1: exactly one author address (with a domain)
    try:
        records = [r for r in txt(f"_dmarc.{from_domain}") if r.lower().startswith("v=dmarc1")]
    except TimeoutError:
        return "temperror"
    if not records:
        return "none"
    if _aligned(dkim_domain, from_domain) or _aligned(spf_domain, from_domain):
        return "pass"
    return "fail" if spf_checked else "not_checked"


Authenticate = Callable[[bytes, Envelope], AuthVerdict]


def make_authenticator(
    mode: str,
    *,
    trusted_authserv_id: str | None,
    dns_timeout_s: float,
    spf_here: bool = True,
    query: DnsQuery | None = None,
    reader: SenderAuthReader = IN_PROCESS,
) -> Authenticate:
    """The function the pipeline calls per mail (raw mail, spool envelope), chosen once from the
    [auth] section; ``query`` replaces the system resolver (tests), ``reader`` says where the
    mail is read (the agent: :class:`SenderAuthentication`, in limited children)."""
    if mode == "trust_mx" and trusted_authserv_id:
        authserv_id = trusted_authserv_id
        return lambda raw, _envelope: from_trusted_header(raw, authserv_id, reader=reader)
    if mode != "verify":
        return lambda _raw, _envelope: AuthVerdict.not_checked()
    dns = query or _dns_query(dns_timeout_s)
    txt = _dns_txt(dns)

    def verify(raw: bytes, envelope: Envelope) -> AuthVerdict:
        spf_result = None
        if spf_here:
            identity = SmtpIdentity(envelope.client_addr, envelope.helo, envelope.mail_from)
            spf_result = check_spf(identity, dns, timeout_s=dns_timeout_s)
        return verify_here(raw, txt, spf_result=spf_result, reader=reader)

    return verify


class SenderAuthentication:
    """``[auth]`` as the agent runs it: ``authenticate(raw, envelope)`` is the pipeline's step.
    The mail is read in ``processes`` children with limits (none in mode ``off``, which reads
    nothing); DNS is asked here. ``close()`` stops the children."""

    def __init__(
        self, section: AuthSection, *, processes: int, query: DnsQuery | None = None
    ) -> None:
        self.reader: IsolatedSenderAuth | None = None
        reader: SenderAuthReader = IN_PROCESS  # not used: mode "off" reads nothing
        if section.mode != "off":
            reader = self.reader = IsolatedSenderAuth(processes)
        self.authenticate = make_authenticator(
            section.mode,
            trusted_authserv_id=section.trusted_authserv_id,
            dns_timeout_s=section.dns_timeout_s,
            spf_here=section.check_spf,
            query=query,
            reader=reader,
        )

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
