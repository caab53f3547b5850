"""Delivery of approved outbound mail: link → durable queue → smarthost or MX → delivered/bounced.

Each bundle read from the out link (stream ``outbound``) is decoded (``decode_outbound``) and
stored in ``spool/outbound/queue/<mail_id>`` before the link reader marks it done; a bundle seen
again (the reader re-calls after a crash) is recognised by its id in ``queue/`` or ``done/``.
The original bytes are handed to the next hop unchanged.

Every due mail gets one *pass*: up to ``attempts_per_pass`` quick tries (tenacity, exponential
wait) against temporary failures (4xx, connection refused, timeouts). Recipients refused with
5xx are bounced at once; the rest wait ``retry_initial_s`` doubling up to ``retry_max_s``, and
after ``expire_s`` are bounced too. A bounce is a short notice mail to the original sender,
stored in the inbound spool under a bundle id derived from the outbound bundle id, so it is
rendered and published inward like any mail and a crash never sends it twice.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import smtplib
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any, Protocol

import dns.exception
import dns.resolver
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from agentkit.periodic import PeriodicPass
from agentkit.settings import SMTP_CLIENT_TIMEOUT_S, parse_host_port
from agentkit.storeretention import move_into_quarantine
from mailsafe.mime import SUBJECT_SCAN_BYTES
from mailsafe.payload import OutboundMail
from outer_agent.config import DeliverySection
from outer_agent.errors import DeliveryDeferred, DeliveryRefused, SpoolCorrupt
from outer_agent.mtasts import StsResolver, dns_txt, mx_allowed
from outer_agent.spool import Envelope, SpoolRecord, peek_header
from protocol import Kind, ReceivedBundle
from protocol.atrest import CLEAR, AtRest
from protocol.durable import fsync_dir, write_durably
from protocol.limits import BUNDLE_ID_LEN

__all__ = [
    "DeliveryQueue",
    "DeliveryService",
    "LinkPoll",
    "OutboundItem",
    "SmtpHop",
    "bounce_notice",
    "delivery_summary",
]

log = logging.getLogger(__name__)

# "done" markers are kept this long so a bundle the link delivers again is recognised;
# the protocol refuses replays older than its resend window anyway.
DONE_MARKER_TTL_S = 8 * 86400.0
# Quick retries inside one pass wait 1 s, then 2 s, ...: enough for a relay that was busy.
QUICK_WAIT_S = 1.0
QUICK_WAIT_MAX_S = 8.0


@dataclass
class OutboundItem:
    """One outbound mail in the queue; ``pending`` are the recipients still to deliver."""

    mail_id: str
    bundle_id: bytes
    mail_from: str
    rcpt_to: tuple[str, ...]
    pending: list[str]
    data: bytes
    first_seen: float
    next_try: float = 0.0
    attempts: int = 0
    last_error: str = ""
    bounced: list[tuple[str, str]] = field(default_factory=list)  # (recipient, reason)

    def header(self) -> dict[str, Any]:
        return {
            "kind": "outbound",
            "mail_id": self.mail_id,
            "bundle_id": self.bundle_id.hex(),
            "mail_from": self.mail_from,
            "rcpt_to": list(self.rcpt_to),
            "pending": self.pending,
            "first_seen": self.first_seen,
            "next_try": self.next_try,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "bounced": self.bounced,
        }

    @classmethod
    def from_record(cls, record: SpoolRecord) -> OutboundItem:
        h = record.header
        return cls(
            mail_id=str(h["mail_id"]),
            bundle_id=bytes.fromhex(h["bundle_id"]),
            mail_from=str(h["mail_from"]),
            rcpt_to=tuple(h["rcpt_to"]),
            pending=list(h["pending"]),
            data=record.payload,
            first_seen=float(h["first_seen"]),
            next_try=float(h["next_try"]),
            attempts=int(h["attempts"]),
            last_error=str(h["last_error"]),
            bounced=[(str(r), str(why)) for r, why in h["bounced"]],
        )


class DeliveryQueue:
    """Folders ``queue/`` (waiting), ``done/`` (markers), ``quarantine/`` and ``tmp/``."""

    def __init__(
        self, root: Path, *, clock: Callable[[], float] = time.time, at_rest: AtRest = CLEAR
    ) -> None:
        self.root = root
        self.clock = clock
        self.at_rest = at_rest  # the mail's bytes sealed; the queue figures stay readable
        for name in ("queue", "done", "quarantine", "tmp"):
            (root / name).mkdir(parents=True, exist_ok=True)

    def known(self, bundle_id: bytes) -> bool:
        name = bundle_id.hex()
        return (self.root / "done" / name).exists() or any((self.root / "queue").glob(f"*.{name}"))

    def store(self, item: OutboundItem) -> None:
        record = SpoolRecord(item.header(), item.data)
        write_durably(self._path(item), record.encode(self.at_rest), staging=self.root / "tmp")

    def finish(self, item: OutboundItem) -> None:
        """Leave a done marker first, then drop the mail: a crash between leaves both, safely."""
        write_durably(self.root / "done" / item.bundle_id.hex(), b"", staging=self.root / "tmp")
        self._path(item).unlink(missing_ok=True)
        fsync_dir(self.root / "queue")

    def quarantine(self, name: str, data: bytes, reason: str) -> None:
        folder, staging = self.root / "quarantine", self.root / "tmp"
        write_durably(folder / name, self.at_rest.seal(data), staging=staging, sync_folder=False)
        write_durably(folder / f"{name}.reason", reason.encode(), staging=staging)

    def items(self) -> list[OutboundItem]:
        found = []
        for path in sorted((self.root / "queue").iterdir()):
            try:
                found.append(
                    OutboundItem.from_record(
                        SpoolRecord.decode(path.read_bytes(), str(path), self.at_rest)
                    )
                )
            except (SpoolCorrupt, KeyError, ValueError, TypeError) as exc:
                self._quarantine_unreadable(path, str(exc))
        return found

    def _quarantine_unreadable(self, path: Path, problem: str) -> None:
        """An unreadable queue file goes to quarantine/ with a reason file, written first so
        the retention prune ages it by its quarantine time (D87); a disk too full for the
        reason leaves it in queue/ until the next pass."""
        log.error("outbound queue file %s is unreadable (%s); quarantined", path, problem)
        folder = self.root / "quarantine"
        try:
            move_into_quarantine(path, folder / path.name, f"unreadable: {problem}\n".encode(),
                                 reason_path=folder / f"{path.name}.reason",
                                 staging=self.root / "tmp")  # fmt: skip
        except OSError as exc:
            log.error("cannot quarantine %s (%s); trying again at the next pass", path, exc)

    def prune_done(self) -> None:
        limit = self.clock() - DONE_MARKER_TTL_S
        for marker in (self.root / "done").iterdir():
            if marker.stat().st_mtime < limit:
                marker.unlink(missing_ok=True)

    def _path(self, item: OutboundItem) -> Path:
        return self.root / "queue" / f"{item.mail_id}.{item.bundle_id.hex()}"


def delivery_summary(root: Path, now: float) -> dict[str, Any]:
    """The delivery queue at ``root`` for a status report, read only: mails waiting, those
    tried at least once, quarantined files, and the age of the oldest waiting mail. Reads
    only each queued file's header, never the mail."""
    queued = _entries(root / "queue")
    retrying, oldest = 0, None
    for name in queued:
        header = peek_header(root / "queue" / name)
        if header is None:
            continue  # delivered meanwhile, or a file the queue will quarantine
        attempts = header.get("attempts")
        retrying += int(isinstance(attempts, int) and attempts > 0)
        first_seen = header.get("first_seen")
        if isinstance(first_seen, int | float):
            oldest = first_seen if oldest is None else min(oldest, first_seen)
    quarantined = [n for n in _entries(root / "quarantine") if not n.endswith(".reason")]
    return {
        "queued": len(queued),
        "retrying": retrying,
        "quarantine": len(quarantined),
        "oldest_waiting_s": None if oldest is None else round(max(0.0, now - oldest), 1),
    }


def oldest_waiting(root: Path, now: float) -> dict[str, Any] | None:
    """The mail that has waited longest in the delivery queue at ``root``: its id, age,
    attempts and the reason of its last failure (``maildiode status``); None when nothing
    waits. Read only, headers only."""
    oldest: dict[str, Any] | None = None
    for name in _entries(root / "queue"):
        header = peek_header(root / "queue" / name)
        first_seen = None if header is None else header.get("first_seen")
        if not isinstance(first_seen, int | float):
            continue
        if oldest is None or first_seen < oldest["first_seen"]:
            oldest = {**(header or {}), "first_seen": first_seen}
    if oldest is None:
        return None
    return {
        "mail_id": str(oldest.get("mail_id", "?")),
        "waited_s": round(max(0.0, now - oldest["first_seen"]), 1),
        "attempts": int(oldest.get("attempts") or 0),
        "last_error": str(oldest.get("last_error") or ""),
        "recipients": len(oldest.get("pending") or ()),
    }


def _entries(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except FileNotFoundError:
        return []


# ------------------------------------------------------------------------------------ next hop


class Hop(Protocol):
    def send(self, mail_from: str, rcpts: list[str], data: bytes) -> dict[str, tuple[int, str]]:
        """Hand over; return the recipients refused (code, text). Raise DeliveryDeferred or
        DeliveryRefused when the whole message failed."""
        ...


@dataclass(frozen=True)
class SmtpHop:
    """Delivery over SMTP to a smarthost, or to each recipient domain's MX hosts."""

    smarthost: tuple[str, int] | None
    helo: str
    starttls: str = "required"  # off | opportunistic | required
    tls_context: ssl.SSLContext | None = None
    # Recipient domains (or the smarthost's name) where "required" is relaxed to
    # "opportunistic": a partner whose server has no certificate, decided and written down.
    tls_exceptions: frozenset[str] = frozenset()
    # Where a session went on without TLS since the caller last emptied this: the delivery
    # service audits it with the mail (one delivery thread; the list is its own).
    sent_in_clear: list[str] = field(default_factory=list, compare=False)
    # MX delivery honours the recipient domain's MTA-STS policy (RFC 8461); None: not asked.
    mta_sts: StsResolver | None = None
    username: str | None = None
    password: str | None = None
    timeout_s: float = SMTP_CLIENT_TIMEOUT_S
    resolve_mx: Callable[[str], list[tuple[str, int]]] | None = None

    def send(self, mail_from: str, rcpts: list[str], data: bytes) -> dict[str, tuple[int, str]]:
        if self.smarthost is not None:
            mode = self._tls_mode(self.smarthost[0])
            return self._send_to(self.smarthost, mail_from, rcpts, data, mode)
        refused: dict[str, tuple[int, str]] = {}
        for domain, group in _by_domain(rcpts).items():
            refused.update(self._send_by_mx(domain, mail_from, group, data))
        return refused

    def _under_mta_sts(
        self, domain: str, hosts: list[tuple[str, int]], mode: str
    ) -> tuple[list[tuple[str, int]], str]:
        """With an ``enforce`` policy: only the MX hosts it names, and verified TLS (no
        exception of ours overrides the domain's own demand)."""
        policy = self.mta_sts.policy_for(domain) if self.mta_sts is not None else None
        if policy is None or policy.mode != "enforce":
            if policy is not None and policy.mode == "testing":
                log.info("%s publishes an MTA-STS policy in testing mode", domain)
            return hosts, mode
        allowed = [host for host in hosts if mx_allowed(policy, host[0])]
        if not allowed:
            raise DeliveryDeferred(
                f"no MX of {domain} ({', '.join(h for h, _ in hosts)}) matches its MTA-STS "
                f"policy (mx: {', '.join(policy.mx)}); the mail waits (RFC 8461 §5)"
            )
        return allowed, "required"

    def _tls_mode(self, name: str) -> str:
        """The STARTTLS rule for a smarthost name or a recipient domain."""
        if self.starttls == "required" and name.lower().rstrip(".") in self.tls_exceptions:
            return "opportunistic"
        return self.starttls

    def _send_by_mx(
        self, domain: str, mail_from: str, rcpts: list[str], data: bytes
    ) -> dict[str, tuple[int, str]]:
        resolve = self.resolve_mx or mx_hosts
        hosts = resolve(domain)
        if not hosts:
            return dict.fromkeys(rcpts, (550, f"5.1.2 no mail exchanger for {domain}"))
        last: DeliveryDeferred | None = None
        hosts, mode = self._under_mta_sts(domain, hosts, self._tls_mode(domain))
        for host in hosts:
            try:
                return self._send_to(host, mail_from, rcpts, data, mode)
            except DeliveryDeferred as exc:
                last = exc  # try the next MX
        raise last or DeliveryDeferred(f"no MX of {domain} answered")

    def _send_to(
        self, host: tuple[str, int], mail_from: str, rcpts: list[str], data: bytes, mode: str
    ) -> dict[str, tuple[int, str]]:
        where = f"{host[0]}:{host[1]}"
        try:
            with smtplib.SMTP(
                host[0], host[1], local_hostname=self.helo, timeout=self.timeout_s
            ) as client:
                self._secure(client, where, mode)
                wire = crlf_only(data)
                options = _mail_options(client, mail_from, rcpts, wire)
                refused = client.sendmail(mail_from, rcpts, wire, mail_options=options)
                return {r: (code, _text(msg)) for r, (code, msg) in refused.items()}
        except smtplib.SMTPRecipientsRefused as exc:
            return {r: (code, _text(msg)) for r, (code, msg) in exc.recipients.items()}
        except (
            smtplib.SMTPSenderRefused,
            smtplib.SMTPDataError,
            smtplib.SMTPResponseException,
        ) as exc:
            raise _classify(exc.smtp_code, _text(exc.smtp_error), where) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryDeferred(f"{where}: {exc}") from exc

    def _secure(self, client: smtplib.SMTP, where: str, mode: str) -> None:
        """STARTTLS with a verified certificate (the default context checks the chain and the
        host name), or, where ``mode`` allows, on in clear — noted in ``sent_in_clear``."""
        client.ehlo()
        if mode != "off" and client.has_extn("starttls"):
            client.starttls(context=self.tls_context or ssl.create_default_context())
            client.ehlo()
        elif mode == "required":
            raise DeliveryDeferred(
                f"{where} does not offer STARTTLS, and delivery.starttls = required refuses to "
                "send in clear: give the server a certificate, or name it in "
                "delivery.tls_exceptions"
            )
        else:
            self.sent_in_clear.append(where)
        if self.username is not None:
            if client.sock is None or not isinstance(client.sock, ssl.SSLSocket):
                raise DeliveryDeferred(f"{where}: refusing AUTH without TLS")
            client.login(self.username, self.password or "")


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _classify(code: int, text: str, where: str) -> DeliveryDeferred | DeliveryRefused:
    message = f"{where} answered {code} {text}"
    if 500 <= code < 600:
        return DeliveryRefused(message, code=code, reply=text)
    return DeliveryDeferred(message, code=code, reply=text)


def crlf_only(data: bytes) -> bytes:
    """``data`` with every bare CR and bare LF made a CRLF (RFC 5321 §2.3.8: they only travel
    together). smtplib dot-stuffs only after LF, so a mail holding "<CR>.<CR>" or "<LF>.<LF>"
    would end DATA early at an MTA that accepts those (SMTP smuggling, 2023) and what follows
    would be read there as a second mail with an envelope nobody approved."""
    alone = data.replace(b"\r\n", b"")
    if b"\r" not in alone and b"\n" not in alone:
        return data
    return _LINE_END.sub(b"\r\n", data)


# Any line end: CRLF, or a CR or an LF alone.
_LINE_END = re.compile(rb"\r\n|\r|\n")


def _mail_options(client: smtplib.SMTP, mail_from: str, rcpts: list[str], data: bytes) -> list[str]:
    options = []
    if not data.isascii() and client.has_extn("8bitmime"):
        options.append("BODY=8BITMIME")
    if not (mail_from.isascii() and all(r.isascii() for r in rcpts)):
        options.append("SMTPUTF8")
    return options


def _by_domain(rcpts: Iterable[str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for rcpt in rcpts:
        groups.setdefault(rcpt.rpartition("@")[2].lower(), []).append(rcpt)
    return groups


def mx_hosts(domain: str) -> list[tuple[str, int]]:
    """MX hosts by preference; the domain itself when it has no MX (RFC 5321 §5.1)."""
    try:
        answer = dns.resolver.resolve(domain, "MX")
    except dns.resolver.NXDOMAIN:
        return []
    except dns.resolver.NoAnswer:
        return [(domain, 25)]
    except dns.exception.DNSException as exc:
        raise DeliveryDeferred(f"MX lookup for {domain} failed: {exc}") from exc
    records = sorted(answer, key=lambda r: r.preference)
    hosts = [(str(r.exchange).rstrip("."), 25) for r in records]
    if hosts == [("", 25)]:
        return []  # RFC 7505 null MX: the domain accepts no mail
    return hosts


# ------------------------------------------------------------------------------------ bounces


def bounce_notice(
    item: OutboundItem, failures: list[tuple[str, str]], hostname: str, now: float
) -> bytes:
    """A short notice mail (Korean first, English after) telling the sender what failed."""
    original = BytesHeaderParser(policy=default_policy).parsebytes(item.data[:SUBJECT_SCAN_BYTES])
    try:
        subject = " ".join(str(original.get("Subject", "")).split())[:200]
    except (ValueError, TypeError, IndexError):  # a hostile or broken Subject header
        subject = ""
    lines = ["다음 수신자에게 메일을 전달하지 못했습니다.", ""]
    lines += [f"  - {rcpt}: {reason}" for rcpt, reason in failures]
    lines += [
        "",
        f"원래 메일 제목: {subject}",
        f"메일 ID: {item.mail_id}",
        "",
        "The mail could not be delivered to the recipients above.",
        "각 수신자 옆의 사유를 확인하신 뒤 필요하면 다시 보내 주십시오.",
    ]
    message = EmailMessage()
    message["From"] = f"Mail Delivery System <MAILER-DAEMON@{hostname}>"
    message["To"] = item.mail_from
    message["Subject"] = (
        f"[전송 실패] {subject}" if subject else "[전송 실패] 메일을 전달하지 못했습니다"
    )
    message["Date"] = formatdate(now, usegmt=True)
    message["Message-ID"] = make_msgid(domain=hostname)
    message["Auto-Submitted"] = "auto-replied"
    message.set_content("\n".join(lines), charset="utf-8")
    return message.as_bytes()


def bounce_bundle_id(item: OutboundItem, failures: list[tuple[str, str]]) -> bytes:
    """Deterministic: the same failure of the same mail always gives the same bundle id."""
    key = item.bundle_id + "\n".join(sorted(r for r, _ in failures)).encode()
    return hashlib.sha256(b"maildiode-bounce\0" + key).digest()[:BUNDLE_ID_LEN]


# ------------------------------------------------------------------------------------ service


class Audit(Protocol):
    def record(self, mail_id: str, step: str, **fields: Any) -> None: ...


# One look at the out link (protocol.LinkReader.poll): the handler is called per complete
# bundle; returns how many were handled.
LinkPoll = Callable[[Callable[[ReceivedBundle], None]], int]


@dataclass(frozen=True)
class RetryPolicy:
    attempts_per_pass: int = 3
    retry_initial_s: float = 60.0
    retry_max_s: float = 3600.0
    expire_s: float = 5 * 86400.0
    quick_wait_s: float = QUICK_WAIT_S


class DeliveryService:
    """Reads the out link, queues durably, delivers due mail, bounces what fails for good."""

    def __init__(
        self,
        queue: DeliveryQueue,
        hop: Hop,
        audit: Audit,
        *,
        decode: Callable[[bytes], OutboundMail],
        inject_inbound: Callable[[Envelope, bytes], None],
        policy: RetryPolicy,
        hostname: str,
        poll_link: LinkPoll | None = None,
        poll_s: float = 1.0,
        control: Callable[[ReceivedBundle], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.queue, self.hop, self.audit = queue, hop, audit
        self.control = control  # CONTROL bundles: a policy or a decision (outer_agent.control)
        self.decode = decode
        self.inject_inbound = inject_inbound
        self.policy = policy
        self.hostname = hostname
        self.poll_link = poll_link
        self.poll_s = poll_s
        self.clock = clock
        self._stopping = threading.Event()
        self._runner = PeriodicPass(
            "delivery", self._one_pass, lambda: self.poll_s, "delivery pass failed", self._stopping
        )
        self._pruned_at = 0.0

    # ----------------------------------------------------------------------------- link side

    def accept_bundle(self, bundle: ReceivedBundle) -> None:
        """LinkReader handler: store durably before returning; idempotent per bundle id."""
        bundle_id = bundle.bundle_id
        if bundle.kind == Kind.CONTROL and self.control is not None:
            self.control(bundle)  # a policy or a decision from inside; idempotent itself
            return
        if self.queue.known(bundle_id):
            return
        if bundle.kind != Kind.DATA:  # no mail, and no one here takes control records
            self._refuse(bundle, "outbound_not_mail", f"bundle kind {int(bundle.kind)}")
            return
        try:
            mail = self.decode(bundle.data)
        except Exception as exc:  # noqa: BLE001 - a signed but undecodable bundle: keep, report
            self._refuse(bundle, "outbound_undecodable", str(exc))
            return
        now = self.clock()
        item = OutboundItem(
            mail_id=str(mail.mail_id),
            bundle_id=bundle_id,
            mail_from=str(mail.mail_from),
            rcpt_to=tuple(mail.rcpt_to),
            pending=list(mail.rcpt_to),
            data=bytes(mail.data),
            first_seen=now,
            next_try=now,
        )
        self.queue.store(item)
        self.audit.record(
            item.mail_id,
            "received_outbound",
            bundle_id=bundle_id.hex(),
            seq=bundle.seq,
            rcpt_count=len(item.rcpt_to),
            bytes=len(item.data),
            decided_by=str(getattr(mail, "decided_by", "")),
        )

    def _refuse(self, bundle: ReceivedBundle, reason: str, detail: str) -> None:
        """A signed bundle that is no outbound mail: kept in quarantine, reported."""
        name = bundle.bundle_id.hex()
        self.queue.quarantine(name, bundle.data, f"{reason}: {detail}")
        self.audit.record(name, "quarantined", reason=reason, detail=detail)

    # ----------------------------------------------------------------------------- delivery

    def run_due(self) -> int:
        """One pass over the queue; returns how many mails were finished (delivered/bounced)."""
        finished = 0
        for item in self.queue.items():
            if self._stopping.is_set():
                break
            if item.next_try <= self.clock():
                finished += self._attempt(item)
        return finished

    def _attempt(self, item: OutboundItem) -> int:
        started = time.monotonic()
        refused: dict[str, tuple[int, str]] = {}
        in_clear: list[str] | None = getattr(self.hop, "sent_in_clear", None)
        if in_clear is not None:
            in_clear.clear()
        try:
            refused = self._send_with_quick_retries(item)
        except DeliveryRefused as exc:
            refused = {r: (exc.code or 550, str(exc)) for r in item.pending}
        except DeliveryDeferred as exc:
            refused = {r: (exc.code or 451, str(exc)) for r in item.pending}
        item.attempts += 1
        delivered = [r for r in item.pending if r not in refused]
        permanent = [(r, f"{c} {t}") for r, (c, t) in refused.items() if c >= 500]
        temporary = {r: f"{c} {t}" for r, (c, t) in refused.items() if c < 500}
        if delivered:
            clear = sorted(set(in_clear or ()))
            self.audit.record(
                item.mail_id,
                "delivered",
                rcpt=delivered,
                attempts=item.attempts,
                ms=round((time.monotonic() - started) * 1000, 1),
                tls="none" if clear else "verified",
                **({"in_clear_to": clear} if clear else {}),
            )
            if clear:  # allowed by an exception or by starttls = opportunistic/off: said aloud
                log.warning(
                    "outbound mail %s went to %s without TLS", item.mail_id, ", ".join(clear)
                )
        if self.clock() - item.first_seen >= self.policy.expire_s:
            permanent += [
                (r, f"expired after {item.attempts} attempts: {t}") for r, t in temporary.items()
            ]
            temporary = {}
        item.pending = list(temporary)
        if permanent:
            self._bounce(item, permanent)
        if not item.pending:
            self.queue.finish(item)
            return 1
        item.last_error = next(iter(temporary.values()))
        item.next_try = self.clock() + self._backoff(item.attempts)
        self.queue.store(item)
        # Every retry is said, with its reason: mail waiting on a dead relay must not be silent.
        log.warning(
            "outbound mail %s waits for delivery to %d recipient(s): %s (attempt %d, waiting "
            "%.0f s; next try in %.0f s)", item.mail_id, len(item.pending), item.last_error,
            item.attempts, self.clock() - item.first_seen, item.next_try - self.clock(),
        )  # fmt: skip
        self.audit.record(
            item.mail_id,
            "delivery_deferred",
            rcpt=item.pending,
            error=item.last_error,
            next_try=item.next_try,
            attempts=item.attempts,
        )
        return 0

    def _send_with_quick_retries(self, item: OutboundItem) -> dict[str, tuple[int, str]]:
        """Quick tries within one pass; only recipients still temporarily refused are retried."""
        pending = list(item.pending)
        final: dict[str, tuple[int, str]] = {}
        retrying = Retrying(
            stop=stop_after_attempt(self.policy.attempts_per_pass),
            wait=wait_exponential(multiplier=self.policy.quick_wait_s, max=QUICK_WAIT_MAX_S),
            retry=retry_if_exception_type(DeliveryDeferred),
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                refused = self.hop.send(item.mail_from, pending, item.data)
                final.update({r: v for r, v in refused.items() if v[0] >= 500})
                pending = [r for r, v in refused.items() if v[0] < 500]
                if pending:
                    code, text = refused[pending[0]]
                    raise DeliveryDeferred(f"{code} {text}", code=code, reply=text)
        return final

    def _backoff(self, attempts: int) -> float:
        return float(
            min(self.policy.retry_initial_s * 2 ** max(attempts - 1, 0), self.policy.retry_max_s)
        )

    def _bounce(self, item: OutboundItem, failures: list[tuple[str, str]]) -> None:
        item.bounced.extend(failures)
        notice_sent = bool(item.mail_from)  # RFC 5321 §4.5.5: never bounce a bounce
        if notice_sent:
            bundle_id = bounce_bundle_id(item, failures)
            now = self.clock()
            envelope = Envelope(
                mail_id=bundle_id.hex(),
                bundle_id=bundle_id,
                mail_from="",
                rcpt_to=(item.mail_from,),
                received_at=now,
                client_addr="local",
                helo=self.hostname,
                tls=False,
            )
            self.inject_inbound(envelope, bounce_notice(item, failures, self.hostname, now))
        self.audit.record(
            item.mail_id,
            "bounced",
            rcpt=[r for r, _ in failures],
            reasons=[why for _, why in failures],
            notice=notice_sent,
        )
        log.warning("outbound mail %s bounced for %d recipient(s)", item.mail_id, len(failures))

    # ----------------------------------------------------------------------------- thread

    def start(self) -> None:
        self._runner.start()

    def stop(self) -> None:
        self._runner.stop()

    def _one_pass(self) -> None:
        if self.poll_link is not None:
            self.poll_link(self.accept_bundle)
        self.run_due()
        if self.clock() - self._pruned_at > 3600:
            self.queue.prune_done()
            self._pruned_at = self.clock()


def hop_from_config(section: DeliverySection) -> SmtpHop:
    """Build the next hop from the [delivery] section."""
    context = None
    if section.tls_ca_file is not None:
        context = ssl.create_default_context(cafile=str(section.tls_ca_file))
    password = section.password_file.read_text().strip() if section.password_file else None
    return SmtpHop(
        smarthost=parse_host_port(section.smarthost) if section.smarthost else None,
        helo=section.helo,
        starttls=section.starttls,
        tls_context=context,
        username=section.username,
        password=password,
        timeout_s=section.connect_timeout_s,
        tls_exceptions=frozenset(name.lower().rstrip(".") for name in section.tls_exceptions),
        mta_sts=StsResolver(dns_txt) if section.mta_sts and not section.smarthost else None,
    )
