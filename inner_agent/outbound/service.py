"""``OutboundService(config, audit)``: the outbound path as one start/stop unit.

It runs, inside the caller's event loop: the SMTP intake and one worker task that, every
``poll_s`` or when woken, scans accepted mail, publishes what may leave (stream
``outbound``, the original bytes), runs reminders and expiries, and sends notices through
the internal server. Blocking work (scanning, fsync, SQLite, SMTP) runs in a thread, never
in the event loop.

The web listener (sign-in, approval pages, console, API) runs in a child process of its own
at a lower CPU priority (``inner_agent.webproc``): the service binds its socket, starts the
child last, wakes the worker when the child says a decision was stored, and stops it first.
Only when the audit log has no file to share (a test's in-memory double) or the clock is not
the system's does the listener run in this event loop instead, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import queue
import socket
import time
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentkit.access import AccessLog
from agentkit.atrest import at_rest_of
from agentkit.lease import Terms
from agentkit.leasekeeper import FenceClosed
from agentkit.links import LinkPublisher, build_sender
from agentkit.periodic import PeriodicPass
from agentkit.settings import KeysSection, LinkSection, LogSection, parse_host_port
from agentkit.streams import PAIR_INBOUND, outbound_stream
from inner_agent.config import InnerConfig
from inner_agent.console.places import places_from
from inner_agent.inbound.config import InboundSection
from inner_agent.inbound.holds import HoldBook
from inner_agent.inbound.outward import InboundOutward
from inner_agent.inbound.policy import PolicyPublisher
from inner_agent.outbound.approvers import Approvers
from inner_agent.outbound.config import OutboundSection
from inner_agent.outbound.directory import Directory
from inner_agent.outbound.directory_health import health_recorder
from inner_agent.outbound.directory_sync import DirectorySync, access_recorder, sync_duty
from inner_agent.outbound.ldap_bind import directory_passwords
from inner_agent.outbound.ldap_config import LdapSection
from inner_agent.outbound.preview import Previewer, preview_pool
from inner_agent.outbound.rerouting import Moved
from inner_agent.outbound.rulesource import RulesSource, fingerprint
from inner_agent.outbound.scanning import Scanner
from inner_agent.outbound.shares import (
    ReportLiveness,
    SharedPublisher,
    arrival_stream,
    reported_outside,
)
from inner_agent.outbound.smtp import OutboundIntake, OutboundSmtpServer
from inner_agent.outbound.spool import Spool, SpooledMail
from inner_agent.outbound.state import OutboundState
from inner_agent.outbound.tokens import TokenSigner, load_or_create_secret
from inner_agent.outbound.workflow import Audit, Outlets, Publisher, Stores, Workflow
from inner_agent.policyedit.files import policy_files
from inner_agent.preflight import directory_warnings
from inner_agent.web.config import ConsoleSection
from inner_agent.webproc.errors import WebProcessFailed
from inner_agent.webproc.spec import WebSpec
from inner_agent.webproc.supervisor import WebProcess
from mailsafe.extract import ExtractLimits
from mailsafe.extract.isolated import AttachmentReader
from mailsafe.extract.ocr import resolve_ocr
from protocol.atrest import CLEAR, AtRest

if TYPE_CHECKING:  # the web stack is imported where the listener is built (the web process)
    import uvicorn

__all__ = ["OutboundService", "outbound_publisher"]

log = logging.getLogger(__name__)

# Raises agentkit.leasekeeper.FenceClosed when the agent no longer holds its state's lease.
Fence = Callable[[], None]

# Who the access records of the scheduled LDAP sync name as the actor.
SYNC_ACCOUNT = "ldap-sync"


def outbound_publisher(
    link: LinkSection, keys: KeysSection, state_dir: Path, *, fence: Fence | None = None
) -> LinkPublisher:
    """protocol.Sender on stream ``outbound`` from the inner agent's [link] and [keys]. A bundle
    id already published with other content (from a version before bundles were rebuilt
    identically) keeps its first version, as everywhere (LinkPublisher). ``fence``: the
    state's lease (nothing is published once it is lost)."""
    return LinkPublisher(build_sender(link, keys, state_dir, "outbound"), fence=fence)


def shared_publisher(
    config: Any, audit: Audit, state_dir: Path, at_rest: AtRest, *, fence: Fence | None = None
) -> SharedPublisher | None:
    """With ``[[streams.outer]]`` (D75): one sender per outer agent, keyed by its stream id
    (the pair's ``inbound`` first), each mail on one of them; None with one outer agent."""
    streams = getattr(config, "streams", None)
    if streams is None or not streams.outer:
        return None
    link, keys = config.link, config.keys
    publishers = {PAIR_INBOUND: outbound_publisher(link, keys, state_dir, fence=fence)}
    for stream in streams.outer:
        stream_keys = keys.model_copy(update={"encrypt_to": stream.encrypt_to or keys.encrypt_to})
        sender = build_sender(stream.send_link(link), stream_keys, state_dir,
                              outbound_stream(stream.id))  # fmt: skip
        publishers[stream.id] = LinkPublisher(sender, fence=fence)
    return SharedPublisher(
        publishers, state_dir.parent / "shares.db",
        ReportLiveness(config.state.dir / "reports.db"),
        takeover_after_s=streams.takeover_after_s,
        reported=functools.partial(reported_outside, audit), audit=audit, at_rest=at_rest,
        arrived_on=functools.partial(arrival_stream, audit),
    )  # fmt: skip


class OutboundService:
    def __init__(
        self,
        config: InnerConfig,
        audit: Audit,
        *,
        publisher: Publisher | None = None,
        holds: HoldBook | None = None,
        clock: Callable[[], float] = time.time,
        fence: Fence | None = None,
        lease: Terms | None = None,
    ) -> None:
        """``holds``: the receive filters' hold book, when ``[inbound]`` is configured (the
        link thread records held mail in it; this service publishes the decisions).
        ``fence``: raises :class:`agentkit.leasekeeper.FenceClosed` once the agent no longer
        holds its state's lease: from then on the intake refuses mail (451), no pass runs,
        nothing is published and no decision is settled (inner_agent.standby). ``lease``:
        the lease's terms, for the web process's own fence on decisions (LeaseWatch)."""
        section = getattr(config, "outbound", None)
        if not isinstance(section, OutboundSection):
            raise ValueError("the config has no [outbound] section")
        self.config, self.section, self.audit = config, section, audit
        self._publisher = publisher
        self.publisher: Publisher | None = None  # the one in use while running
        self.clock = clock
        self.workflow: Workflow | None = None
        self.smtp: OutboundSmtpServer | None = None
        self._web: uvicorn.Server | None = None  # only when the listener runs here
        self.web_process: WebProcess | None = None
        self._listener: socket.socket | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        # approval requests a directory sync moved, for the worker to ask their new approvers
        self._moved: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()  # bound to the loop at first use (Python >= 3.10)
        self._closables: list[object] = []  # closed at stop where they have close()
        self.web_port = 0
        self.holds = holds
        self.inbound: InboundOutward | None = None
        self.rules: RulesSource | None = None  # the outbound rules in force (start reads them)
        inbound_section = getattr(config, "inbound", None)
        self._inbound_file = getattr(inbound_section, "rules_file", None)
        self._inbound_seen = fingerprint(self._inbound_file)
        self._sync: PeriodicPass | None = None  # the LDAP sync, when configured
        self.fence, self.lease = fence, lease

    # ----------------------------------------------------------------------------- start

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        section = self.section
        at_rest = _at_rest(self.config)
        spool = Spool(section.spool_dir, at_rest=at_rest)
        state = OutboundState(section.spool_dir / "state.db", clock=self.clock, at_rest=at_rest)
        signin_health = health_recorder(self._state_dir(), "sign-in")
        directory = Directory(section.directory_db, directory_password=directory_passwords(
            self._ldap(), on_state=signin_health))  # fmt: skip
        secret = load_or_create_secret(section.web.secret_key_file)
        link_state = section.spool_dir / "link-state"
        publisher = (
            self._publisher
            or shared_publisher(self.config, self.audit, link_state, at_rest, fence=self.fence)
            or outbound_publisher(self.config.link, self.config.keys, link_state, fence=self.fence)
        )
        limits = _extract_limits(section)
        reader = AttachmentReader(limits)
        # Held mails are drawn for their approvers in a render worker of their own (D60):
        # started at the first held mail, its LibreOffice at the first office document.
        previews = Previewer(functools.partial(preview_pool, limits.ocr_languages))
        self._closables = [publisher, state, directory, reader, previews]
        self.publisher = publisher
        self.inbound = self._inbound(directory, publisher)
        self.rules = RulesSource(section.rules_file, self.audit)
        self.workflow = Workflow(
            section,
            Stores(spool, state, directory),
            Outlets(self.audit, publisher),
            scanner=Scanner(self.rules, reader),
            signer=TokenSigner(secret),
            clock=self.clock,
            previewer=previews,
            fence=self.fence or (lambda: None),
        )
        self._warn_of_directory_gaps()
        self._sync = self._directory_sync(directory, state)
        recovered = await asyncio.to_thread(self.workflow.recover)
        if recovered:
            log.info("took in %d outbound mail(s) found in the spool after a restart", recovered)
        await self._settle_decisions()  # no web process runs yet
        try:
            await self._start_smtp(spool)
            await self._start_web(directory, secret)
        except BaseException:
            await self.stop()  # nothing half-started stays behind
            raise
        self._tasks.append(asyncio.create_task(self._work(), name="outbound-worker"))

    def _warn_of_directory_gaps(self) -> None:
        """A new site's empty directory (or a department nobody approves for) is said loudly
        at start, as ``maildiode check`` and the dashboard say it, not found by held mail."""
        for finding in directory_warnings(self.section, "inner.toml"):
            log.warning("%s", finding.line())

    def _directory_sync(self, directory: Directory, state: OutboundState) -> PeriodicPass | None:
        """The LDAP sync every ``directory.ldap.interval_s``, when ``[directory.ldap]`` is set
        (its access records go to the agent's audit store, as the account ``ldap-sync``)."""
        ldap = self._ldap()
        if ldap is None:
            return None
        record = access_recorder(AccessLog(self.audit, None, UTC), SYNC_ACCOUNT)
        approvers = Approvers(directory, self.section.approval.fallback_approver)
        sync = DirectorySync(ldap, directory, record, open_requests=(state, approvers),
                             clock=self.clock, on_moved=self._ask_moved_soon,
                             fence=self.fence or (lambda: None))  # fmt: skip
        duty = sync_duty(sync, health_recorder(self._state_dir(), "sync"))
        duty.start()
        return duty

    def _inbound(self, directory: Directory, publisher: Publisher) -> InboundOutward | None:
        """The receive filters' outward half, when ``[inbound]`` is configured."""
        section = getattr(self.config, "inbound", None)
        if not isinstance(section, InboundSection) or self.holds is None:
            return None
        state_dir = self.config.state.dir
        policy = PolicyPublisher(section, directory, state_dir / "inbound-policy.json",
                                 publisher, self.audit, clock=self.clock,
                                 fence=self.fence or (lambda: None))  # fmt: skip
        return InboundOutward(policy, self.holds, publisher, self.audit)

    def reload_policy(self) -> bool:
        """Read both rules files again now (SIGHUP; the console's save wakes the worker, whose
        pass notices the change the same way): the outbound rules decide every mail scanned
        from now on; the inbound rules go out as the next signed policy record. False when
        the outbound file does not validate (the last good rules stay; ALARM, audited)."""
        taken = self.rules.reload() if self.rules is not None else True
        self.recheck_inbound()
        return taken

    def _notice_changed_rules(self) -> None:
        """A pass's first step: a changed inbound rules file is published now, not at the next
        ``check_s`` (the outbound file is checked before each scan)."""
        seen = fingerprint(self._inbound_file)
        if seen != self._inbound_seen:
            self._inbound_seen = seen
            self.recheck_inbound()

    def recheck_inbound(self) -> None:
        """SIGHUP: the inbound rules and the directory are read again now."""
        if self.inbound is not None:
            self.inbound.recheck()
            self.wake()

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
            holds_lease=self._holds_lease,
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
        web = self.section.web
        # Bound here, before the listener starts anywhere: a busy port is an OSError naming it.
        self._listener = _listening_socket(*parse_host_port(web.listen))
        self.web_port = self._listener.getsockname()[1]
        spec = self._web_spec()
        if spec is None:
            await self._serve_web_here(self._listener, directory, secret)
            return
        self.web_process = WebProcess(spec, self._listener, on_wake=self.wake,
                                      before_restart=self._settle_decisions)  # fmt: skip
        try:
            await self.web_process.start()
        except WebProcessFailed as exc:
            raise WebProcessFailed(f"the web listener on {web.listen} did not start: {exc}"
                                   ) from None  # fmt: skip

    def _web_spec(self) -> WebSpec | None:
        """What the web process opens, or None when the listener must run here: an audit
        log without a file cannot be shared, nor a clock that is not the system's."""
        config = self.config
        audit_path = getattr(self.audit, "path", None) or _attribute(config, "audit", "path")
        if audit_path is None or self.clock is not time.time:
            log.info("the web listener runs in the agent's process (the audit log has no file, "
                     "or the clock is a test's)")  # fmt: skip
            return None
        places = places_from(config)
        return WebSpec(
            outbound=self.section,
            console=getattr(config, "console", None) or ConsoleSection(),
            log=getattr(config, "log", None) or LogSection(),
            audit_path=audit_path,
            state_dir=places.state_dir,
            silence_alarm_s=places.silence_alarm_s,
            gap_wait_s=places.gap_wait_s,
            inject_alarm_s=places.inject_alarm_s,
            at_rest_key=_attribute(config, "keys", "at_rest_key"),
            inbound_rules_file=self._inbound_file,
            inbound_configured=isinstance(getattr(config, "inbound", None), InboundSection),
            ldap=self._ldap(),
            streams=places.streams,
            lease=self.lease,
        )

    def _state_dir(self) -> Path | None:
        """Where the directory's health is kept (``directory_health``); None in a test's
        bare config."""
        found = getattr(getattr(self.config, "state", None), "dir", None)
        return found if isinstance(found, Path) else None

    def _ldap(self) -> LdapSection | None:
        """``[directory.ldap]``: the sync, and sign-in with the directory password."""
        ldap = getattr(getattr(self.config, "directory", None), "ldap", None)
        return ldap if isinstance(ldap, LdapSection) else None

    async def _settle_decisions(self) -> None:
        """Before a new web process starts: finish what a dead one decided but left (only
        while this agent holds the state's lease)."""
        if self.workflow is not None and self._holds_lease("settling decisions"):
            await asyncio.to_thread(self.workflow.settle_decisions)

    def _holds_lease(self, what: str) -> bool:
        """Whether the fence is open; when it is closed, ``what`` is not done, and said so."""
        if self.fence is None:
            return True
        try:
            self.fence()
        except FenceClosed as closed:
            log.warning("outbound: not %s: this agent no longer holds the state's lease (%s)",
                        what, closed)  # fmt: skip
            return False
        return True

    async def _serve_web_here(
        self, listener: socket.socket, directory: Directory, secret: bytes
    ) -> None:
        """The listener in this event loop (no file to share the audit log through)."""
        import uvicorn

        from inner_agent.webproc.site import server_config, site_app

        assert self.workflow is not None
        console = getattr(self.config, "console", None) or ConsoleSection()
        app, web_parts = site_app(
            self.workflow.desk, self.section, console=console, directory=directory,
            audit=self.audit, audit_path=_attribute(self.config, "audit", "path"),
            secret=secret, clock=self.clock, places=places_from(self.config),
            policy=policy_files(self.config), on_policy_saved=self.wake,
        )  # fmt: skip
        self._closables[:0] = [web_parts]  # before the directory its checks read
        self._web = uvicorn.Server(server_config(app, self.section.web))
        serving = asyncio.create_task(self._web.serve(sockets=[listener]), name="outbound-web")
        self._tasks.append(serving)
        while not self._web.started:
            if serving.done():
                self._tasks.remove(serving)
                raise OSError(f"approval web pages on {self.section.web.listen} did not start "
                              "(see log)")  # fmt: skip
            await asyncio.sleep(0.01)
        log.info("approval web pages on %s (in the agent's process)", self.section.web.listen)

    # ----------------------------------------------------------------------------- work

    def _ask_moved_soon(self, moved: list[Moved]) -> None:
        """From the sync's thread: the worker's next pass asks the new approvers (one thread
        carries out the mails' transitions)."""
        for move in moved:
            self._moved.put(move.request_id)
        self.wake()

    def _ask_moved(self) -> None:
        request_ids = []
        while not self._moved.empty():
            request_ids.append(self._moved.get_nowait())
        if request_ids and self.workflow is not None:
            self.workflow.ask_moved(request_ids)

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
        if workflow is None or not self._holds_lease("running a pass"):
            return
        steps: list[Callable[[], object]] = [
            self._notice_changed_rules,
            self._ask_moved,
            workflow.process_received,
            workflow.publish_pending,
        ]
        if self.inbound is not None:
            steps += [self.inbound.check_policy, self.inbound.publish_decisions]
        if tick_due:
            steps.append(workflow.tick)
        steps.append(workflow.send_notices)
        settle = getattr(self.publisher, "settle", None)  # several outer agents (D75)
        if settle is not None:
            steps.append(settle)
        heartbeat = getattr(self.publisher, "heartbeat_if_due", None)
        if heartbeat is not None:
            steps.append(heartbeat)
        for step in steps:  # one failing step (a full link folder) does not stop the others
            try:
                step()
            except FenceClosed as closed:  # the lease went in the middle of the pass
                log.warning("outbound pass stopped at %s: %s", step.__name__, closed)
                return
            except Exception:
                log.exception("outbound step %s failed; retried next pass", step.__name__)

    async def run_once(self) -> None:
        """One full pass now (tests and ``maildiode`` tools)."""
        await asyncio.to_thread(self._pass, True)

    # ----------------------------------------------------------------------------- stop

    async def stop(self) -> None:
        if self._sync is not None:
            await asyncio.to_thread(self._sync.stop)  # a pass in hand finishes first
            self._sync = None
        if self.smtp is not None:
            await self.smtp.stop()
        if self.web_process is not None:
            await self.web_process.stop()
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
        if self._listener is not None:
            self._listener.close()


def _at_rest(config: object) -> AtRest:
    """The at-rest keyring of ``[keys]``; CLEAR for a test's namespace without one."""
    keys = getattr(config, "keys", None)
    return at_rest_of(keys) if isinstance(keys, KeysSection) else CLEAR


def _attribute(config: object, section: str, name: str) -> Any:
    """``config.section.name``, or None when the config (a test's namespace) lacks it."""
    return getattr(getattr(config, section, None), name, None)


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
