"""``OutboundService(config, audit)``: the outbound path as one start/stop unit.

It runs, inside the caller's event loop: the SMTP intake, the approval web server (uvicorn),
and one worker task that, every ``poll_s`` or when woken, scans accepted mail, publishes what
may leave (stream ``outbound``, the original bytes), runs reminders and expiries, and sends
notices through the internal server. Blocking work (scanning, fsync, SQLite, SMTP) runs in a
thread, never in the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

from agentkit.access import AccessLog
from agentkit.links import LinkPublisher, build_sender
from agentkit.settings import KeysSection, LinkSection, parse_host_port
from inner_agent.config import InnerConfig
from inner_agent.console.data import ConsoleData
from inner_agent.console.places import places_from
from inner_agent.outbound.config import OutboundSection, WebSection
from inner_agent.outbound.directory import Directory
from inner_agent.outbound.scanning import Scanner
from inner_agent.outbound.smtp import OutboundIntake, OutboundSmtpServer
from inner_agent.outbound.spool import Spool, SpooledMail
from inner_agent.outbound.state import OutboundState
from inner_agent.outbound.tokens import TokenSigner, load_or_create_secret
from inner_agent.outbound.web import create_app, templates
from inner_agent.outbound.workflow import Audit, Outlets, Publisher, Stores, Workflow
from inner_agent.web.api_tokens import TokenStore
from inner_agent.web.app import Listener
from inner_agent.web.config import ConsoleSection
from inner_agent.web.gate import Gate
from inner_agent.web.pages import SignInPages
from inner_agent.web.roles import Role
from inner_agent.web.sessions import Sessions
from inner_agent.web.signin import Accounts, SignIn
from inner_agent.web.store import SignInStore
from inner_agent.web.throttle import ClientBuckets
from mailsafe.extract import ExtractLimits
from mailsafe.extract.isolated import AttachmentReader
from mailsafe.extract.ocr import resolve_ocr
from mailsafe.policy import RuleSet, default_rules, load_rules

__all__ = ["OutboundService", "build_listener", "build_signin", "outbound_publisher"]

log = logging.getLogger(__name__)


def outbound_publisher(link: LinkSection, keys: KeysSection, state_dir: Path) -> LinkPublisher:
    """protocol.Sender on stream ``outbound`` from the inner agent's [link] and [keys]. A bundle
    id already published with other content (from a version before bundles were rebuilt
    identically) keeps its first version, as everywhere (LinkPublisher)."""
    return LinkPublisher(build_sender(link, keys, state_dir, "outbound"))


class OutboundService:
    def __init__(
        self,
        config: InnerConfig,
        audit: Audit,
        *,
        publisher: Publisher | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        section = getattr(config, "outbound", None)
        if not isinstance(section, OutboundSection):
            raise ValueError("the config has no [outbound] section")
        self.config, self.section, self.audit = config, section, audit
        self._publisher = publisher
        self.publisher: Publisher | None = None  # the one in use while running
        self.clock = clock
        self.workflow: Workflow | None = None
        self.smtp: OutboundSmtpServer | None = None
        self._web: uvicorn.Server | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()  # bound to the loop at first use (Python >= 3.10)
        self._closables: list[object] = []  # closed at stop where they have close()
        self.web_port = 0

    # ----------------------------------------------------------------------------- start

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        section = self.section
        spool = Spool(section.spool_dir)
        state = OutboundState(section.spool_dir / "state.db", clock=self.clock)
        directory = Directory(section.directory_db)
        secret = load_or_create_secret(section.web.secret_key_file)
        publisher = self._publisher or outbound_publisher(
            self.config.link, self.config.keys, section.spool_dir / "link-state"
        )
        reader = AttachmentReader(_extract_limits(section))
        self._closables = [publisher, state, directory, reader]
        self.publisher = publisher
        self.workflow = Workflow(
            section,
            Stores(spool, state, directory),
            Outlets(self.audit, publisher),
            scanner=Scanner(_rules(section), reader),
            signer=TokenSigner(secret),
            clock=self.clock,
        )
        recovered = await asyncio.to_thread(self.workflow.recover)
        if recovered:
            log.info("took in %d outbound mail(s) found in the spool after a restart", recovered)
        try:
            await self._start_smtp(spool)
            await self._start_web(directory, secret)
        except BaseException:
            await self.stop()  # nothing half-started stays behind
            raise
        self._tasks.append(asyncio.create_task(self._work(), name="outbound-worker"))

    async def _start_smtp(self, spool: Spool) -> None:
        assert self.workflow is not None
        host, port = parse_host_port(self.section.listen)
        networks = [ipaddress.ip_network(n, strict=False) for n in self.section.allowed_networks]
        intake = OutboundIntake(
            spool,
            networks,
            max_recipients=self.section.max_recipients,
            min_free_bytes=self.section.min_free_bytes,
            on_accepted=self._accepted,
            own_addresses=self._own_addresses(),
            clock=self.clock,
        )
        self.smtp = OutboundSmtpServer(
            intake,
            host=host,
            port=port,
            hostname=self.section.hostname,
            max_message_bytes=self.section.max_message_bytes,
        )
        await self.smtp.start()

    def _own_addresses(self) -> tuple[str, ...]:
        """The senders of the bridge's own mail, refused by the intake (``ownmail``): approval
        notices, and notifications and postmaster reports when the whole inner config is here."""
        notify = getattr(self.config, "notify", None)
        notifications = (notify.from_address,) if notify is not None else ()
        return (self.section.notice.from_address, *notifications)

    def _accepted(self, mail: SpooledMail) -> None:
        """Called from a worker thread once a mail is spooled."""
        assert self.workflow is not None
        self.workflow.accepted(mail)
        self.wake()

    async def _start_web(self, directory: Directory, secret: bytes) -> None:
        assert self.workflow is not None
        web = self.section.web
        host, port = parse_host_port(web.listen)
        console = getattr(self.config, "console", None) or ConsoleSection()
        # Access records go where every audit event goes, and are read back from that store.
        audit_path = getattr(getattr(self.config, "audit", None), "path", None)
        access = AccessLog(self.audit, audit_path, console.zone)
        data = ConsoleData(places_from(self.config), zone=console.zone, language=console.language)
        web_parts = build_listener(
            self.section, console, directory, self.audit, access,
            secret=secret, clock=self.clock, on_csrf_refusal=self.workflow.desk.note_csrf_refusal,
            data=data,
        )  # fmt: skip
        self._closables[:0] = [web_parts]  # before the directory its checks read
        app = create_app(self.workflow.desk, web_parts)
        await asyncio.to_thread(data.start)  # the mail index follows the audit store
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            server_header=False,
            proxy_headers=True,
            forwarded_allow_ips=list(web.trusted_proxies),
        )
        # Bind here, so a busy port is an OSError naming it (uvicorn would sys.exit instead).
        listener = _listening_socket(host, port)
        self.web_port = listener.getsockname()[1]
        self._web = uvicorn.Server(config)
        serving = asyncio.create_task(self._web.serve(sockets=[listener]), name="outbound-web")
        self._tasks.append(serving)
        while not self._web.started:
            if serving.done():
                self._tasks.remove(serving)
                raise OSError(f"approval web server on {host}:{port} did not start (see log)")
            await asyncio.sleep(0.01)
        log.info("approval web pages on %s:%d", host, self.web_port)

    # ----------------------------------------------------------------------------- work

    def wake(self) -> None:
        """Start a pass now; callable from any thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def _work(self) -> None:
        last_tick = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.section.poll_s)
            self._wake.clear()
            tick_due = time.monotonic() - last_tick >= self.section.approval.check_interval_s
            try:
                await asyncio.to_thread(self._pass, tick_due)
            except Exception:
                log.exception("outbound pass failed")
            if tick_due:
                last_tick = time.monotonic()

    def _pass(self, tick_due: bool) -> None:
        workflow = self.workflow
        if workflow is None:
            return
        steps: list[Callable[[], object]] = [workflow.process_received, workflow.publish_pending]
        if tick_due:
            steps.append(workflow.tick)
        steps.append(workflow.send_notices)
        heartbeat = getattr(self.publisher, "heartbeat_if_due", None)
        if heartbeat is not None:
            steps.append(heartbeat)
        for step in steps:  # one failing step (a full link folder) does not stop the others
            try:
                step()
            except Exception:
                log.exception("outbound step %s failed; retried next pass", step.__name__)

    async def run_once(self) -> None:
        """One full pass now (tests and ``maildiode`` tools)."""
        await asyncio.to_thread(self._pass, True)

    # ----------------------------------------------------------------------------- stop

    async def stop(self) -> None:
        if self.smtp is not None:
            await self.smtp.stop()
        if self._web is not None:
            self._web.should_exit = True
        for task in self._tasks:
            if task.get_name() == "outbound-worker":
                task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for item in self._closables:
            close = getattr(item, "close", None)
            if close is not None:
                close()
        self._closables = []


def build_signin(
    web: WebSection, accounts: Accounts, secret: bytes, audit: Audit, clock: Callable[[], float]
) -> SignIn:
    """The web listener's sign-in from ``[outbound.web]`` (its ``signin`` sub-section)."""
    store = SignInStore(web.signin.db)
    sessions = Sessions(store, idle_s=web.session_idle_s, absolute_s=web.session_ttl_s,
                        clock=clock)  # fmt: skip
    return SignIn(accounts, store, secret, web.signin, sessions=sessions, audit=audit,
                  clock=clock)  # fmt: skip


def build_listener(
    section: OutboundSection,
    console: ConsoleSection,
    directory: Directory,
    audit: Audit,
    access: AccessLog,
    *,
    secret: bytes,
    clock: Callable[[], float],
    on_csrf_refusal: Callable[[str, str], None],
    data: ConsoleData | None = None,
) -> Listener:
    """The web listener's parts from ``[outbound.web]`` and ``[console]``: sign-in (its
    spraying alerts to ``audit``), pages, the gate, tokens, ``access`` for the records, and
    ``data``, what the console reads."""
    web, accounts = section.web, directory.accounts
    signin = build_signin(web, accounts, secret, audit, clock)
    pages = SignInPages(
        signin, templates(), secret, secure_cookie=web.public_url.startswith("https://"),
        on_csrf_refusal=on_csrf_refusal, access=access,
        home=lambda user: "/requests" if Role.APPROVER in accounts.roles(user) else "/",
    )  # fmt: skip
    tokens = TokenStore(section.directory_db, clock=clock)
    failed_tokens = ClientBuckets(web.signin.per_client_per_minute, web.signin.per_client_burst)
    gate = Gate(pages, accounts, tokens, access, failed_tokens=failed_tokens, clock=clock)
    return Listener(signin, pages, gate, accounts, tokens, access, console.zone,
                    tuple(web.allowed_clients), data)  # fmt: skip


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        raise OSError(
            exc.errno, f"approval web pages cannot listen on {host}:{port}: {exc.strerror}"
        ) from None
    listener.listen(128)
    listener.set_inheritable(True)
    return listener


def _extract_limits(section: OutboundSection) -> ExtractLimits:
    """Reading limits with OCR as configured; OCR asked for but not installed stops the start
    (``OcrUnavailable`` names the packages)."""
    languages = resolve_ocr(section.ocr)
    if languages:
        log.info("text in pictures is read (OCR, Tesseract languages %s)", languages)
    elif section.ocr == "auto":
        log.warning("text in pictures is not read: Tesseract with Korean is not installed")
    else:
        log.info("text in pictures is not read (ocr = false)")
    return ExtractLimits(ocr_languages=languages)


def _rules(section: OutboundSection) -> RuleSet:
    return load_rules(section.rules_file) if section.rules_file else default_rules()
