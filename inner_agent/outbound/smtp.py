"""Outbound SMTP intake: the internal mail server relays mail for external recipients here.

Cheap checks only: a client outside ``allowed_networks`` is greeted with 554 and dropped (and
refused 550 at MAIL should it talk anyway); too many recipients get 452; SIZE is enforced by
aiosmtpd (552). Mail of the bridge's own (``inner_agent.ownmail``: sent from one of its own
addresses, or carrying its marker header or an author address of its own) is refused with 550,
at MAIL or at DATA, so a notification routed back here cannot loop out to the internet. DATA
is answered 250 only after the spool file is fsynced, renamed and its folder fsynced; any
failure on the way answers 451. Scanning happens later, off the session. An agent that no
longer holds its state's fencing lease answers 451 at MAIL and again just before spooling at
DATA (the internal server retries, and reaches the standby that took over).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from agentkit.settings import SMTP_IDLE_TIMEOUT_S
from inner_agent.outbound.spool import Spool, SpooledMail, new_mail_id
from inner_agent.ownmail import is_own_sender, own_mail_finding

__all__ = ["OutboundIntake", "OutboundSmtpServer"]

log = logging.getLogger(__name__)

REPLY_NO_SERVICE = "554 5.7.1 This relay serves the internal mail servers only"
REPLY_NOT_ALLOWED = "550 5.7.1 Relaying denied: your address is not an internal mail server"
REPLY_TOO_MANY_RCPT = "452 4.5.3 Too many recipients"
REPLY_NO_SPACE = "452 4.3.1 Insufficient system storage, try again later"
REPLY_LOCAL_ERROR = "451 4.3.0 Local error in processing, try again later"
REPLY_OK = "250 2.0.0 OK: queued as {mail_id}"
REPLY_OWN_SENDER = (
    "550 5.7.1 Refused: {address} is the bridge's own address; its mail never goes out"
    " (a notification routed back here would loop)"
)
REPLY_OWN_MAIL = "550 5.7.1 Refused: {finding}; the bridge's own mail never goes out"
REPLY_NOT_HOLDER = (
    "451 4.3.0 This agent no longer holds its state's lease (a standby takes over); try again"
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def peer_ip(peer: Any) -> str:
    return str(peer[0]) if isinstance(peer, tuple) and peer else str(peer or "")


def is_allowed(ip: str, networks: Sequence[Network]) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


class OutboundIntake:
    """aiosmtpd handler: network check, own-mail check, recipient count, durable spool, 250.

    ``own_addresses``: the senders of the bridge's own mail (``[notify] from_address``,
    ``[outbound.notice] from_address``).
    """

    def __init__(
        self,
        spool: Spool,
        networks: Sequence[Network],
        *,
        max_recipients: int,
        on_accepted: Callable[[SpooledMail], None],
        min_free_bytes: int = 0,
        own_addresses: Sequence[str] = (),
        clock: Callable[[], float] = time.time,
        holds_lease: Callable[[str], bool] = lambda _what: True,
    ) -> None:
        """``holds_lease(what)``: whether this agent still holds its state's fencing lease
        (False: ``what`` is not done; the service logs it)."""
        self.holds_lease = holds_lease
        self.spool = spool
        self.own_addresses = frozenset(a.lower() for a in own_addresses)
        self.networks = tuple(networks)
        self.max_recipients = max_recipients
        self.min_free_bytes = min_free_bytes
        self.on_accepted = on_accepted
        self.clock = clock

    async def handle_MAIL(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if not is_allowed(peer_ip(session.peer), self.networks):
            return REPLY_NOT_ALLOWED
        if not self.holds_lease("accepting mail"):
            return REPLY_NOT_HOLDER
        if is_own_sender(address, self.own_addresses):
            log.error("ALARM outbound intake refused mail from %s, the bridge's own address: the "
                      "internal server routes its notifications out (see operations.md)",
                      address.lower())  # fmt: skip
            return REPLY_OWN_SENDER.format(address=address.lower())
        if not self._space_for(0):
            return REPLY_NO_SPACE
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return REPLY_TOO_MANY_RCPT
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        data = envelope.original_content or b""
        finding = own_mail_finding(data, self.own_addresses)
        if finding is not None:
            log.error("ALARM outbound intake refused mail from %s (envelope sender %r): %s",
                      peer_ip(session.peer), envelope.mail_from, finding)  # fmt: skip
            return REPLY_OWN_MAIL.format(finding=finding)
        if not self._space_for(len(data)):
            return REPLY_NO_SPACE
        if not self.holds_lease("spooling mail"):  # lost while the client sent its data
            return REPLY_NOT_HOLDER
        mail = SpooledMail(
            mail_id=new_mail_id(),
            mail_from=envelope.mail_from or "",
            rcpt_to=tuple(envelope.rcpt_tos),
            received_at=self.clock(),
            client_addr=peer_ip(session.peer),
            helo=session.host_name or "",
        )
        try:
            await asyncio.to_thread(self.spool.store, mail, data)
        except Exception:
            log.exception("could not spool outbound mail from %s; answered 451", mail.client_addr)
            return REPLY_LOCAL_ERROR
        try:
            await asyncio.to_thread(self.on_accepted, mail)  # SQLite commit: off the loop
        except Exception:
            log.exception("after-spool hook failed for %s", mail.mail_id)
        return REPLY_OK.format(mail_id=mail.mail_id)

    def _space_for(self, size: int) -> bool:
        free = shutil.disk_usage(self.spool.root).free
        if free - size >= self.min_free_bytes:
            return True
        log.error("ALARM outbound spool %s: %d bytes free, floor %d; answering 452",
                  self.spool.root, free, self.min_free_bytes)  # fmt: skip
        return False


class _GatedSMTP(SMTP):
    """Greets clients outside the allowed networks with 554 and hangs up (RFC 5321 §3.1)."""

    def __init__(self, handler: OutboundIntake, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._gate = handler

    async def _handle_client(self) -> None:
        ip = peer_ip(self.session.peer) if self.session else ""
        if not is_allowed(ip, self._gate.networks):
            log.warning("outbound intake refused %s: not in allowed_networks", ip)
            await self.push(REPLY_NO_SERVICE)
            if self.transport is not None:
                self.transport.close()
            return
        await super()._handle_client()


class OutboundSmtpServer:
    """The listening socket, inside the caller's running event loop."""

    def __init__(
        self,
        handler: OutboundIntake,
        *,
        host: str,
        port: int,
        hostname: str,
        max_message_bytes: int,
        timeout_s: float = SMTP_IDLE_TIMEOUT_S,
    ) -> None:
        self.handler = handler
        self.host, self.port, self.hostname = host, port, hostname
        self.max_message_bytes = max_message_bytes
        self.timeout_s = timeout_s
        self._server: asyncio.base_events.Server | None = None

    def _factory(self) -> _GatedSMTP:
        return _GatedSMTP(
            self.handler,
            data_size_limit=self.max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=self.hostname,
            ident="maildiode outbound",
            timeout=self.timeout_s,
            loop=asyncio.get_running_loop(),
        )

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._factory, host=self.host, port=self.port)
        sockets = self._server.sockets or ()
        if sockets and self.port == 0:
            self.port = sockets[0].getsockname()[1]
        log.info("outbound SMTP intake listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
