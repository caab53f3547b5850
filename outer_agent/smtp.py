"""SMTP intake: cheap checks, then the spool, then 250 — and nothing else in the session.

The handler refuses what it can before DATA (foreign domains 550 5.7.1, too many recipients
452 4.5.3, a spool below its free-space floor 452 4.3.1), lets aiosmtpd enforce SIZE (552),
and answers 250 to DATA only after the message and its envelope are fsynced and renamed into
``incoming/`` and that folder is fsynced. Any error on the way answers 451/452, never 250.
Rendering happens later, in worker processes (see ``pipeline``).

Durable writes go through one committer thread that takes every mail waiting at that moment
and writes them as one segment file (temp, fsync, rename, folder fsync) before any of those
sessions gets its 250 ("group commit"): concurrent sessions share one file creation and two
fsyncs, and the event loop never blocks on the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import ssl
import threading
import time
import types
from collections.abc import Callable
from dataclasses import dataclass
from email._header_value_parser import get_addr_spec, get_angle_addr
from email.errors import HeaderParseError
from typing import Any

import aiosmtpd
import uvloop
from aiosmtpd.smtp import MISSING, SMTP, Session, syntax
from aiosmtpd.smtp import Envelope as SmtpEnvelope

from agentkit.routing import routing_in_local_part
from agentkit.settings import SMTP_IDLE_TIMEOUT_S
from outer_agent.dataread import read_data
from outer_agent.errors import SpoolFull
from outer_agent.sessions import IdleTimeouts, Refusal, SessionCounter
from outer_agent.spool import Envelope, Spool, new_bundle_id

__all__ = [
    "IntakeHandler",
    "IntakeLimits",
    "IntakeServer",
    "LimitedSMTP",
    "SpoolCommitter",
    "intake_event_loop",
    "server_tls_context",
]

log = logging.getLogger(__name__)

# Alarm lines about a full spool at most this often, so a flood does not flood the log too.
ALARM_INTERVAL_S = 60.0
# aiosmtpd versions whose SMTP.__init__ state LimitedSMTP.clone was checked against; with any
# other version every connection runs aiosmtpd's own __init__ (slower, always correct).
CLONE_CHECKED_VERSIONS = frozenset({"1.4.6"})


def intake_event_loop() -> asyncio.AbstractEventLoop:
    """The event loop the SMTP intake runs on: uvloop's (libuv, in C). Per mail the intake's
    loops in the main and acceptor processes cost about a third less CPU than on asyncio's
    own loop (docs/performance.md); aiosmtpd's STARTTLS works on it since aiosmtpd 1.4.3
    (``set_protocol``), and the DATA fast path reads asyncio's own StreamReader, which
    runs unchanged on any loop (D7)."""
    return uvloop.new_event_loop()


# How often each process looks for sessions idle past their limit: a timeout is honoured
# within this much of its value.
SWEEP_S = 1.0
# DATA cap when none is configured (aiosmtpd's own default).
DATA_LIMIT_FALLBACK = 2**25
# Most mails a committer batch takes at once: bounds the latency a session can wait for others.
MAX_BATCH = 256

REPLY_OK = "250 2.0.0 OK: queued as {mail_id}"
REPLY_RELAY_DENIED = "550 5.7.1 Relaying denied: we accept mail only for our own domains"
REPLY_ROUTING_DENIED = (
    "550 5.7.1 Relaying denied: sender-specified routing ('{char}' in the local part) is not"
    " accepted"
)
REPLY_TOO_MANY_RCPT = "452 4.5.3 Too many recipients"
REPLY_NO_SPACE = "452 4.3.1 Insufficient system storage, try again later"
REPLY_LOCAL_ERROR = "451 4.3.0 Local error in processing, try again later"
REPLY_IDLE_TIMEOUT = "421 4.4.2 {hostname} Error: timeout exceeded"  # Postfix's words
REPLY_TLS_FIRST = "530 5.7.0 Must issue a STARTTLS command first"
# Postfix's words when SASL is off: the intake has no accounts to authenticate.
REPLY_NO_AUTH = "503 5.5.1 Error: authentication not enabled"


@dataclass(frozen=True)
class IntakeLimits:
    domains: frozenset[str]
    max_message_bytes: int
    max_recipients: int
    max_sessions: int
    max_sessions_per_ip: int
    require_tls: bool = False
    idle_timeout_s: float = 30.0  # no mail transaction open (before MAIL, between mails)
    stress_timeout_s: float = 10.0  # every session waiting for a command, under stress
    stress_fraction: float = 0.75  # under stress from this share of max_sessions on


# ------------------------------------------------------------------------------------ committer


class SpoolCommitter:
    """One thread that makes mails durable in batches; sessions await their own result.

    A batch becomes one segment in ``incoming/`` (``on_segment`` is called after it, to wake
    the splitter). With ``on_received``, a batch of one mail, the usual case below a few hundred
    mails a second, is written straight into ``received/`` as the mail's own file instead, and
    ``on_received(envelope)`` queues it for rendering: no segment to split, no splitter pass.
    ``on_committed(envelope, size)`` is called for every mail once it is durable.
    """

    def __init__(
        self,
        spool: Spool,
        on_committed: Callable[[Envelope, int], None] | None = None,
        *,
        on_segment: Callable[[], None] | None = None,
        on_received: Callable[[Envelope], None] | None = None,
    ) -> None:
        self._spool = spool
        self._on_committed = on_committed or (lambda _envelope, _size: None)
        self._on_segment = on_segment
        self._on_received = on_received
        self._queue: queue.SimpleQueue[tuple[Envelope, bytes, asyncio.Future[None]] | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._run, name="spool-committer", daemon=True)
        self._thread.start()

    async def commit(self, envelope: Envelope, message: bytes) -> None:
        """Return once the mail is durable; raise SpoolFull or OSError otherwise."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put((envelope, message, future))
        await future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < MAX_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                batch.append(more)
            self._commit(batch)

    def _commit(self, batch: list[tuple[Envelope, bytes, asyncio.Future[None]]]) -> None:
        """One file for the whole batch: one create, one fsync, one folder fsync."""
        received = self._on_received is not None and len(batch) == 1
        try:
            self._spool.check_space(sum(len(message) for _, message, _ in batch))
            if received:
                self._spool.write_received(batch[0][0], batch[0][1])
            else:
                self._spool.write_segment([(envelope, message) for envelope, message, _ in batch])
        except Exception as exc:  # noqa: BLE001 - not durable: no 250 for any of them
            for _envelope, _message, future in batch:
                _resolve(future, exc)
            return
        for _envelope, _message, future in batch:
            _resolve(future, None)
        for envelope, message, _future in batch:
            self._after(self._on_committed, envelope, envelope, len(message))
        if received:
            self._after(self._on_received, batch[0][0], batch[0][0])
        elif self._on_segment is not None:
            self._after(self._on_segment, batch[0][0])

    @staticmethod
    def _after(hook: Callable[..., None] | None, envelope: Envelope, *args: Any) -> None:
        """A hook after the commit; the mail is durable, so a failing hook costs nothing (the
        splitter's rescan and recovery at start find the mail anyway)."""
        try:
            if hook is not None:
                hook(*args)
        except Exception:
            log.exception("after-commit hook failed for %s", envelope.mail_id)


def _resolve(future: asyncio.Future[None], error: BaseException | None) -> None:
    def settle() -> None:
        if future.done():
            return
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)

    # RuntimeError: the loop is gone (agent stopping), so nobody waits for the reply any more.
    with contextlib.suppress(RuntimeError):
        future.get_loop().call_soon_threadsafe(settle)


# ------------------------------------------------------------------------------------ handler


class IntakeHandler:
    """aiosmtpd handler: cheap checks, spool, 250. Holds no per-session state itself."""

    def __init__(
        self,
        limits: IntakeLimits,
        spool: Spool,
        committer: SpoolCommitter,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.limits = limits
        self.spool = spool
        self.committer = committer
        self._clock = clock
        self._last_alarm = 0.0

    async def handle_MAIL(  # noqa: N802 - aiosmtpd's hook name
        self,
        server: SMTP,
        session: Session,
        envelope: SmtpEnvelope,
        address: str,
        options: list[str],
    ) -> str:
        if self.limits.require_tls and session.ssl is None:
            return REPLY_TLS_FIRST
        try:
            self.spool.check_space()
        except SpoolFull as exc:
            self._alarm(exc)
            return REPLY_NO_SPACE
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self,
        server: SMTP,
        session: Session,
        envelope: SmtpEnvelope,
        address: str,
        options: list[str],
    ) -> str:
        domain = address.rpartition("@")[2].lower().rstrip(".")
        if not address.count("@") or domain not in self.limits.domains:
            return REPLY_RELAY_DENIED
        routing = routing_in_local_part(address)
        if routing is not None:  # the internal server would relay it back out (issue 15.1)
            return REPLY_ROUTING_DENIED.format(char=routing)
        if len(envelope.rcpt_tos) >= self.limits.max_recipients:
            return REPLY_TOO_MANY_RCPT
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    async def handle_EHLO(  # noqa: N802 - aiosmtpd's hook name
        self,
        server: SMTP,
        session: Session,
        envelope: SmtpEnvelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        """aiosmtpd's EHLO lines without AUTH: aiosmtpd lists it after STARTTLS, but the intake
        has no accounts (``LimitedSMTP.smtp_AUTH`` refuses the command)."""
        session.host_name = hostname  # what aiosmtpd does itself when there is no hook
        return [line for line in responses if not line[4:].upper().startswith("AUTH")]

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: SmtpEnvelope
    ) -> str:
        message = envelope.original_content or b""
        bundle_id = new_bundle_id()
        stored = Envelope(
            mail_id=bundle_id.hex(),
            bundle_id=bundle_id,
            mail_from=envelope.mail_from or "",
            rcpt_to=tuple(envelope.rcpt_tos),
            received_at=self._clock(),
            client_addr=_peer_text(session.peer),
            helo=session.host_name or "",
            tls=session.ssl is not None,
        )
        try:
            await self.committer.commit(stored, message)
        except SpoolFull as exc:
            self._alarm(exc)
            return REPLY_NO_SPACE
        except Exception:  # whatever went wrong, the client must not get 250
            log.exception("could not store mail from %s; answered 451", stored.client_addr)
            return REPLY_LOCAL_ERROR
        return REPLY_OK.format(mail_id=stored.mail_id)

    def _alarm(self, exc: SpoolFull) -> None:
        now = time.monotonic()
        if now - self._last_alarm >= ALARM_INTERVAL_S or self._last_alarm == 0.0:
            self._last_alarm = now
            log.error("ALARM %s", exc)


def _peer_text(peer: Any) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer or "")


# ------------------------------------------------------------------------------------ sessions


class LimitedSMTP(SMTP):
    """aiosmtpd's SMTP with session limits: over a limit, greet with 421 and hang up; idle
    past its limit (``close_if_idle``, called by the server's sweep), 421 and hang up."""

    @classmethod
    def clone(cls, template: LimitedSMTP, state: dict[str, Any]) -> LimitedSMTP:
        """A fresh protocol object with ``template``'s settings, without aiosmtpd's __init__.

        aiosmtpd's __init__ introspects the handler and itself (``inspect.getmembers``, ``dir``)
        for every connection: about 0.6 ms, a third of the intake's CPU per mail. The result
        only depends on the settings, so it is computed once (``state``, taken right after the
        template's own __init__) and methods bound to the template are bound to the clone.
        """
        clone = cls.__new__(cls)
        reader = asyncio.StreamReader(loop=template.loop, limit=cls.line_length_limit)
        asyncio.StreamReaderProtocol.__init__(
            clone, reader, client_connected_cb=clone._cb_client_connected, loop=template.loop
        )
        fresh = set(vars(clone))  # per-connection state of the stream protocol itself
        for name, value in state.items():
            if name not in fresh:
                setattr(clone, name, _rebind(value, template, clone))
        return clone

    def __init__(
        self,
        handler: IntakeHandler,
        counter: SessionCounter,
        *,
        live: set[LimitedSMTP] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, **kwargs)
        self._counter = counter
        self._live = live if live is not None else set()  # the server's sessions, for its sweep
        # Per connection (a clone copies these initial values from the template):
        self._counted_ip: str | None = None
        self._refusal: Refusal | None = None
        self._last_active = 0.0  # loop time of the last command (or the connection)
        self._in_data = False  # reading or storing DATA: aiosmtpd's own timer covers that

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None  # connection_made runs again after STARTTLS
        if first:
            peer = transport.get_extra_info("peername")
            ip = str(peer[0]) if isinstance(peer, tuple) else str(peer)
            self._refusal = self._counter.enter(ip)
            if self._refusal is None:
                self._counted_ip = ip
                self._live.add(self)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self._release()
        self._live.discard(self)
        super().connection_lost(error)

    def _release(self) -> None:
        """Give the session's count back, once (at QUIT, an idle close or the hang-up)."""
        if self._counted_ip is not None:
            self._counter.leave(self._counted_ip)
            self._counted_ip = None

    def _reset_timeout(self, duration: float | None = None) -> None:
        """aiosmtpd calls this for the connection and before every valid command."""
        super()._reset_timeout(duration)
        self._last_active = self.loop.time()

    def close_if_idle(self, now: float, timeouts: IdleTimeouts, *, stressed: bool) -> bool:
        """421 and hang up when the session waited for a command longer than it may now."""
        if self._in_data or self.transport is None or self.transport.is_closing():
            return False
        in_transaction = self.envelope is not None and self.envelope.mail_from is not None
        if now - self._last_active < timeouts.limit_s(
            in_transaction=in_transaction, stressed=stressed
        ):
            return False
        self._release()  # before the 421: the client may reconnect as soon as it reads it
        reply = REPLY_IDLE_TIMEOUT.format(hostname=self.hostname)
        self.transport.write(reply.encode() + b"\r\n")  # type: ignore[attr-defined]
        self.transport.close()
        return True

    @syntax("QUIT")
    async def smtp_QUIT(self, arg: str) -> None:  # noqa: N802 - aiosmtpd's command method name
        """aiosmtpd's QUIT, with the count given back before the 221: a client at its limit
        that connects again the moment it reads 221 (perhaps to another acceptor process) must
        not find its closing session still counted (issue 22)."""
        if not arg:
            self._release()
        await super().smtp_QUIT(arg)

    @syntax("AUTH <mechanism>")
    async def smtp_AUTH(self, arg: str) -> None:  # noqa: N802 - aiosmtpd's command method name
        """No accounts here: AUTH is refused, never tried (nothing to guess passwords at)."""
        await self.push(REPLY_NO_AUTH)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:  # noqa: N802 - aiosmtpd's command method name
        """aiosmtpd's DATA with the data read in one piece (see ``dataread``)."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        if self.envelope is None or not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        self._in_data = True
        try:
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            await self._receive_data(self.envelope)
        finally:
            self._in_data = False
            self._last_active = self.loop.time()  # idle from the reply on

    async def _receive_data(self, envelope: SmtpEnvelope) -> None:
        result = await read_data(self._reader, self.data_size_limit or DATA_LIMIT_FALLBACK)
        if result.content is None:
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            await self.push(result.refusal or "451 4.3.0 Local error")
            return
        envelope.content = result.content
        envelope.original_content = result.content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push("250 OK" if status is MISSING else status)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd 1.4.6's address parser for MAIL and RCPT, minus the ``typing.Protocol``
        class it defines on every call (for its type checker only): creating that class cost
        about 45 µs, four fifths of the parse, twice per mail."""
        if not arg:
            return "", ""
        address: Any
        try:
            if arg.lstrip().startswith("<"):
                address, rest = get_angle_addr(arg)
            else:
                address, rest = get_addr_spec(arg)
        except HeaderParseError:
            return None, None
        addr = str(address.addr_spec)
        localpart = addr.rpartition("@")[0]
        if self.local_part_limit and len(localpart) > self.local_part_limit:
            return None, None
        return addr, str(rest)

    async def _handle_client(self) -> None:
        if self._refusal is not None:
            log.warning(
                "refused session from %s: %s",
                self.session.peer if self.session else "?",
                self._refusal,
            )
            await self.push(self._refusal.value)
            if self.transport is not None:
                self.transport.close()
            return
        await super()._handle_client()


# ------------------------------------------------------------------------------------ server


class IntakeServer:
    """Starts and stops the listening socket inside the caller's running event loop, and the
    sweep that closes sessions idle past their limit (``sessions.IdleTimeouts``)."""

    def __init__(
        self,
        handler: IntakeHandler,
        *,
        host: str,
        port: int,
        hostname: str,
        timeout_s: float = SMTP_IDLE_TIMEOUT_S,
        tls_context: ssl.SSLContext | None = None,
        reuse_port: bool = False,
        counter: SessionCounter | None = None,
    ) -> None:
        self.handler = handler
        self.host, self.port = host, port
        self.hostname = hostname
        self.timeout_s = timeout_s
        self.tls_context = tls_context
        self.reuse_port = reuse_port
        self.counter = counter or SessionCounter(handler.limits)
        self.timeouts = IdleTimeouts(
            transaction_s=timeout_s,
            no_transaction_s=handler.limits.idle_timeout_s,
            stress_s=handler.limits.stress_timeout_s,
        )
        self._server: asyncio.base_events.Server | None = None
        self._template: tuple[LimitedSMTP, dict[str, Any]] | None = None
        self._live: set[LimitedSMTP] = set()
        self._sweep: asyncio.Task[None] | None = None

    def _factory(self) -> LimitedSMTP:
        if self._template is not None:
            return LimitedSMTP.clone(*self._template)
        smtp = self._new_smtp()
        if aiosmtpd.__version__ in CLONE_CHECKED_VERSIONS:
            self._template = (smtp, dict(vars(smtp)))
        return smtp

    def _new_smtp(self) -> LimitedSMTP:
        return LimitedSMTP(
            self.handler,
            self.counter,
            data_size_limit=self.handler.limits.max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=self.hostname,
            ident="maildiode",
            tls_context=self.tls_context,
            require_starttls=self.handler.limits.require_tls,
            timeout=self.timeout_s,
            loop=asyncio.get_running_loop(),
            live=self._live,
        )

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._factory, host=self.host, port=self.port, reuse_port=self.reuse_port or None
        )
        sockets = self._server.sockets or ()
        if sockets and self.port == 0:
            self.port = sockets[0].getsockname()[1]
        self._sweep = loop.create_task(self._sweep_idle(), name="smtp-idle-sweep")
        log.info("SMTP intake listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweep
            self._sweep = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _sweep_idle(self) -> None:
        """Every SWEEP_S, close this process's sessions idle past the limit that holds now
        (the stress state is read from the counter the acceptor processes share)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(SWEEP_S)
            stressed = self.counter.stressed
            now = loop.time()
            closed = sum(
                session.close_if_idle(now, self.timeouts, stressed=stressed)
                for session in list(self._live)
            )
            if closed:
                log.info("closed %d idle session(s)%s", closed, " (stress)" if stressed else "")


def _rebind(value: Any, old: object, new: object) -> Any:
    """``value`` with every method bound to ``old`` bound to ``new`` (dicts and tuples too)."""
    if isinstance(value, types.MethodType) and value.__self__ is old:
        return types.MethodType(value.__func__, new)
    if isinstance(value, dict):
        return {key: _rebind(item, old, new) for key, item in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # aiosmtpd's _AuthMechAttr
        return type(value)(*(_rebind(item, old, new) for item in value))
    return value


def server_tls_context(cert: str, key: str) -> ssl.SSLContext:
    """TLS for STARTTLS: TLS 1.2 or newer, the server's certificate chain and key."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context
