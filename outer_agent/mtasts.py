"""MTA-STS (RFC 8461): a recipient domain's published demand for verified TLS, honoured when
the outer agent delivers to MX hosts itself (no smarthost).

A domain that publishes ``_mta-sts.DOMAIN TXT "v=STSv1; id=..."`` and a policy at
``https://mta-sts.DOMAIN/.well-known/mta-sts.txt`` with ``mode: enforce`` gets mail only over
TLS with a certificate valid for the MX host, and only at MX hosts its ``mx:`` lines name;
anything else is a temporary failure (the mail waits, as RFC 8461 §5 says). ``testing`` and
``none`` change nothing but are logged.

The parsing and matching are plain functions; :class:`StsResolver` does the lookups through
injected callables (DNS TXT, HTTPS fetch) and caches each policy for its ``max_age``.
"""

from __future__ import annotations

import logging
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

import dns.exception
import dns.resolver

__all__ = [
    "MAX_POLICY_BYTES",
    "StsPolicy",
    "StsPolicyError",
    "StsResolver",
    "dns_txt",
    "fetch_policy_text",
    "mx_allowed",
    "parse_policy",
    "parse_txt",
]

log = logging.getLogger(__name__)

MAX_POLICY_BYTES = 64 * 1024  # RFC 8461 §3.2: policies are small; larger is refused
MAX_AGE_S = 31_557_600  # §3.2: at most one year
FETCH_TIMEOUT_S = 10.0
MODES = ("enforce", "testing", "none")


class StsPolicyError(ValueError):
    """A policy or TXT record that does not parse; the message says what."""


@dataclass(frozen=True)
class StsPolicy:
    mode: str  # enforce | testing | none
    mx: tuple[str, ...]  # host names, or "*.example.net" (one label)
    max_age: int
    policy_id: str = ""  # the TXT record's id when fetched


def parse_txt(records: list[str]) -> str | None:
    """The policy id of the one ``v=STSv1`` record among ``records``; None when there is
    none, or more than one (§3.1: then the domain has no usable policy)."""
    found = []
    for record in records:
        fields = dict(_field(part) for part in record.split(";") if part.strip())
        if fields.get("v") == "STSv1" and fields.get("id"):
            found.append(fields["id"])
    return found[0] if len(found) == 1 else None


def _field(part: str) -> tuple[str, str]:
    key, _, value = part.strip().partition("=")
    return key.strip(), value.strip()


def parse_policy(text: str) -> StsPolicy:
    """The policy in ``text`` (``key: value`` lines, LF or CRLF)."""
    if len(text.encode()) > MAX_POLICY_BYTES:
        raise StsPolicyError(f"policy larger than {MAX_POLICY_BYTES} bytes")
    values: dict[str, str] = {}
    mx: list[str] = []
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "mx":
            mx.append(value.lower().rstrip("."))
        else:
            values.setdefault(key, value)
    if values.get("version") != "STSv1":
        raise StsPolicyError("version is not STSv1")
    mode = values.get("mode", "")
    if mode not in MODES:
        raise StsPolicyError(f"mode {mode!r} is none of {', '.join(MODES)}")
    try:
        max_age = int(values.get("max_age", ""))
    except ValueError:
        raise StsPolicyError("max_age is not a number") from None
    if not 0 <= max_age <= MAX_AGE_S:
        raise StsPolicyError(f"max_age {max_age} outside 0..{MAX_AGE_S}")
    if mode != "none" and not mx:
        raise StsPolicyError("no mx lines")
    return StsPolicy(mode, tuple(mx), max_age)


def mx_allowed(policy: StsPolicy, host: str) -> bool:
    """Whether MX ``host`` matches one of the policy's ``mx`` patterns (§4.1: a leading
    ``*.`` stands for exactly one label)."""
    host = host.lower().rstrip(".")
    for pattern in policy.mx:
        if pattern.startswith("*."):
            label, _, rest = host.partition(".")
            if label and rest == pattern[2:]:
                return True
        elif host == pattern:
            return True
    return False


def fetch_policy_text(domain: str, *, timeout_s: float = FETCH_TIMEOUT_S) -> str:
    """GET the policy over HTTPS with a verified certificate for ``mta-sts.DOMAIN``; no
    redirects (§3.3), at most MAX_POLICY_BYTES read. Raises OSError or StsPolicyError."""
    url = f"https://mta-sts.{domain}/.well-known/mta-sts.txt"
    opener = urllib.request.build_opener(
        _NoRedirect, urllib.request.HTTPSHandler(context=ssl.create_default_context())
    )
    with opener.open(url, timeout=timeout_s) as response:
        kind = response.headers.get_content_type()
        if kind != "text/plain":
            raise StsPolicyError(f"{url} answered {kind}, not text/plain")
        body: bytes = response.read(MAX_POLICY_BYTES + 1)
    return body.decode("utf-8", "replace")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("the MTA-STS policy URL redirects (RFC 8461 §3.3 forbids)")


class StsResolver:
    """Policies per domain, cached for their max_age; refreshed when the TXT id changes."""

    def __init__(
        self,
        txt_lookup: Callable[[str], list[str]],
        fetch: Callable[[str], str] = fetch_policy_text,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.txt_lookup, self.fetch, self.clock = txt_lookup, fetch, clock
        self._cache: dict[str, tuple[StsPolicy, float]] = {}

    def policy_for(self, domain: str) -> StsPolicy | None:
        domain = domain.lower().rstrip(".")
        cached = self._cache.get(domain)
        try:
            policy_id = parse_txt(self.txt_lookup(f"_mta-sts.{domain}"))
        except OSError as exc:  # DNS trouble: a cached policy still holds (§5.1)
            log.info("MTA-STS TXT lookup for %s failed: %s", domain, exc)
            policy_id = cached[0].policy_id if cached else None
        if cached and cached[1] > self.clock() and (policy_id in (None, cached[0].policy_id)):
            return cached[0]
        if policy_id is None:
            return cached[0] if cached and cached[1] > self.clock() else None
        try:
            fetched = parse_policy(self.fetch(domain))
        except (OSError, StsPolicyError) as exc:
            log.warning("MTA-STS policy of %s not usable: %s", domain, exc)
            return cached[0] if cached and cached[1] > self.clock() else None
        policy = StsPolicy(fetched.mode, fetched.mx, fetched.max_age, policy_id)
        self._cache[domain] = (policy, self.clock() + policy.max_age)
        return policy


def dns_txt(name: str) -> list[str]:
    """TXT strings of ``name`` (dnspython); none when the name has none. Raises OSError on
    a lookup that failed (timeout, SERVFAIL)."""
    try:
        answer = dns.resolver.resolve(name, "TXT", lifetime=FETCH_TIMEOUT_S)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.exception.DNSException as exc:
        raise OSError(f"TXT lookup of {name}: {exc}") from exc
    return [b"".join(record.strings).decode("ascii", "replace") for record in answer]
