"""Sender authentication (SPF / DKIM / DMARC) as data for the notification, never a verdict.

Three modes (``[auth] mode``):

- ``off``: nothing is checked; every result reads ``not_checked``.
- ``trust_mx``: the organisation's MX in front of us already checked. We take the *topmost*
  ``Authentication-Results`` header whose authserv-id is the configured one (RFC 8601 §5: an MX
  removes or overrides headers carrying its own id, so lower ones may be forged by the sender).
- ``verify``: DKIM checked here with dkimpy, and DMARC alignment of a passing DKIM signature
  with the From domain against the domain's ``_dmarc`` record (dnspython). SPF is not checked
  in this mode (it needs the connecting MTA's address, which only the MX in front has): use
  ``trust_mx`` when SPF matters.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses

__all__ = ["AuthVerdict", "from_trusted_header", "make_authenticator", "verify_here"]

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


def _dns_txt(timeout_s: float) -> DnsTxt:
    import dns.exception
    import dns.resolver

    resolver = dns.resolver.Resolver()
    resolver.lifetime = timeout_s

    def lookup(name: str) -> list[str]:
        try:
            answer = resolver.resolve(name, "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException as exc:
            raise TimeoutError(f"DNS TXT {name}: {exc}") from exc
        return [b"".join(r.strings).decode("ascii", "replace") for r in answer]

    return lookup


def verify_here(raw: bytes, txt: DnsTxt) -> AuthVerdict:
    """DKIM (first signature) with dkimpy and DMARC alignment; SPF is not checked here."""
    import dkim

    def dnsfunc(name: bytes | str, timeout: int = 5) -> bytes:
        text = name.decode() if isinstance(name, bytes) else name
        records = txt(text.rstrip("."))
        return records[0].encode() if records else b""

    verifier = dkim.DKIM(raw)
    try:
        dkim_ok = bool(verifier.verify(dnsfunc=dnsfunc))
    except TimeoutError:
        return AuthVerdict.make("not_checked", "temperror", "temperror", "verified here")
    except Exception:  # noqa: BLE001 - dkimpy raises many kinds on hostile signatures
        dkim_ok = False
    has_signature = any(k.lower() == "dkim-signature" for k, _ in _headers(raw))
    dkim_word = "pass" if dkim_ok else ("fail" if has_signature else "none")
    signer = (verifier.domain or b"").decode("ascii", "replace").lower() if dkim_ok else ""
    return AuthVerdict.make("not_checked", dkim_word, _dmarc(raw, signer, txt), "verified here")


def _dmarc(raw: bytes, dkim_domain: str, txt: DnsTxt) -> str:
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
    aligned = bool(dkim_domain) and (
        dkim_domain == from_domain
        or from_domain.endswith("." + dkim_domain)
        or dkim_domain.endswith("." + from_domain)
    )
    return "pass" if aligned else "fail"


def make_authenticator(
    mode: str, *, trusted_authserv_id: str | None, dns_timeout_s: float
) -> Callable[[bytes, object], AuthVerdict]:
    """The function the pipeline calls per mail, chosen once from the [auth] section."""
    if mode == "trust_mx" and trusted_authserv_id:
        authserv_id = trusted_authserv_id
        return lambda raw, _envelope: from_trusted_header(raw, authserv_id)
    if mode == "verify":
        txt = _dns_txt(dns_timeout_s)
        return lambda raw, _envelope: verify_here(raw, txt)
    return lambda _raw, _envelope: AuthVerdict.not_checked()
