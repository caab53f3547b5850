"""Run the outer agent: recover the spool, start the pipeline, delivery and SMTP intake, and stop
cleanly on SIGTERM or SIGINT (intake closes first; mails in hand finish; the rest waits in the
spool for the next start)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from agentkit.atrest import at_rest_of
from agentkit.audit import AuditLog
from agentkit.auditsigning import AuditCheckpointer
from agentkit.collector import settle_collector
from agentkit.hostfigures import HostSampler
from agentkit.logs import setup_logging
from agentkit.reload import apply_reloaded, reload_config
from agentkit.settings import load_config, parse_host_port
from agentkit.startup import open_state
from agentkit.storeretention import StorePrune
from agentkit.upgrade import (
    StateDatabase,
    audit_database,
    link_databases,
    record_upgrades,
    upgrade_state,
)
from mailsafe.payload import decode_outbound
from outer_agent.acceptors import Acceptors
from outer_agent.authres import SenderAuthentication
from outer_agent.config import OuterConfig
from outer_agent.delivery import (
    DeliveryQueue,
    DeliveryService,
    LinkPoll,
    RetryPolicy,
    hop_from_config,
)
from outer_agent.pipeline import Pipeline
from outer_agent.report import LinkSender, ReportCursor, ReportSources, StatusReporter
from outer_agent.retention import retention_stores
from outer_agent.sessions import SessionCounter
from outer_agent.smtp import (
    IntakeHandler,
    IntakeLimits,
    IntakeServer,
    SpoolCommitter,
    intake_event_loop,
    server_tls_context,
)
from outer_agent.spool import Envelope, Spool
from protocol import LinkReader, ReceivedBundle

__all__ = ["run"]

log = logging.getLogger(__name__)


def run(config: OuterConfig, *, config_path: Path | None = None) -> int:
    """Run until SIGTERM/SIGINT; 0 on a clean stop. SIGHUP reads ``config_path`` again
    (agentkit.reload); the forked acceptors ignore it."""
    for sig in (signal.SIGTERM, signal.SIGINT):  # a stop asked for during start-up is kept
        signal.signal(sig, _remember_stop)
    signal.signal(signal.SIGHUP, _remember_reload)  # not a stop; applied once running
    setup_logging(config.log, agent="maildiode-outer")
    # aiosmtpd logs every connection at INFO; our own lines say what matters per mail.
    logging.getLogger("mail.log").setLevel(max(logging.WARNING, logging.getLogger().level))
    spool = open_state(lambda: _open_spool(config), config.spool.dir, stop=_STOP_REQUESTED)
    if spool is None:
        log.info("stopped before the spool could be opened")
        return 0
    counter = SessionCounter(_limits(config))
    # Fork the extra acceptors first, while this process has no threads yet; whatever fails
    # after this point stops them again (they would otherwise keep the port and this process).
    acceptors = Acceptors.start(config.smtp.processes - 1, _acceptor_main, config, counter)
    try:
        return _run_main(config, spool=spool, counter=counter, acceptors=acceptors,
                         config_path=config_path)  # fmt: skip
    finally:
        acceptors.stop()


def _open_spool(config: OuterConfig) -> Spool:
    spool = Spool(
        config.spool.dir / "inbound",
        min_free_bytes=config.spool.min_free_bytes,
        at_rest=at_rest_of(config.keys),
    )
    log.info("spool recovery: %s", spool.recover())
    migrated = upgrade_state(state_databases(config))  # before any store opens them
    # Opened (and switched to WAL) before the acceptors fork, so they never race to convert
    # the file; each acceptor opens its own connection.
    audit = AuditLog(config.audit.path, agent="outer")
    try:
        record_upgrades(audit, migrated)
    finally:
        audit.close()
    return spool


def state_databases(config: OuterConfig) -> list[StateDatabase]:
    """The outer agent's databases (agentkit.upgrade): the audit log and the link ends'."""
    return [
        audit_database(config.audit.path),
        *link_databases(config.spool.dir / "sender"),
        *link_databases(config.spool.dir / "link-out"),
    ]


def _run_main(
    config: OuterConfig,
    *,
    spool: Spool,
    counter: SessionCounter,
    acceptors: Acceptors,
    config_path: Path | None = None,
) -> int:
    """Everything of the main process after the fork: pipeline, delivery, its own acceptor."""
    # Lazy, and after the fork: the renderer (PyMuPDF) and the link ends are this process's
    # alone; the SMTP acceptors and the intake benchmark import this module without them.
    from outer_agent import link, packaging, receive_filters

    with contextlib.ExitStack() as stack:
        audit = AuditLog(config.audit.path, agent="outer")
        stack.callback(audit.close)
        # Its checkpoints are also events, which the status report carries inward: the
        # intranet keeps a copy whoever holds this host cannot rewrite (issue 21.1).
        checkpointer = AuditCheckpointer.from_config(
            audit, config, retention_stores(config), announce=True
        )
        checkpointer.start()
        stack.callback(checkpointer.stop)  # runs after the others stop: their last events signed
        publisher = link.inbound_publisher(config, config.spool.dir / "sender")
        stack.callback(publisher.close)
        packager = packaging.MailsafePackager.from_config(config.render)
        stack.callback(packager.close)
        # The mail is read for SPF/DKIM/DMARC in children with limits, as it is rendered.
        sender_auth = SenderAuthentication(config.auth, processes=config.render.processes)
        stack.callback(sender_auth.close)
        inbound = receive_filters.build(config, spool, packager, publisher.knows)
        archive = receive_filters.archive_queue(config, spool.at_rest)
        pipeline = Pipeline(
            spool,
            packager,
            publisher,
            audit,
            workers=config.render.processes,
            on_failure=config.render.on_failure,
            authenticate=sender_auth.authenticate,
            filtering=inbound.filtering,
            archive=archive,
        )
        reader = link.outbound_reader(config, config.spool.dir / "link-out")
        queue = DeliveryQueue(config.spool.dir / "outbound", at_rest=spool.at_rest)
        control = inbound.desk(
            audit, quarantine=queue.quarantine, released=pipeline.notify_received
        )
        delivery = _delivery(config, audit, pipeline, None if reader is None else reader.poll,
                             queue=queue, control=control.accept)  # fmt: skip
        reporter = _reporter(
            config, audit, publisher.sender, reader, lambda: inbound.policies.version
        )
        keeper = inbound.keeper(publisher, audit)
        forwarder = receive_filters.archive_forwarder(config, archive, audit)
        committer = SpoolCommitter(
            spool, on_committed=_audit_received(audit), on_segment=pipeline.notify_incoming,
            on_received=pipeline.notify_received,
        )  # fmt: skip
        server = _server(config, spool, committer, counter, reuse_port=config.smtp.processes > 1)
        pipeline.start()
        stack.callback(pipeline.stop)
        delivery.start()
        stack.callback(delivery.stop)
        reporter.start()
        stack.callback(reporter.stop)
        keeper.start()
        stack.callback(keeper.stop)
        if forwarder is not None:
            forwarder.start()
            stack.callback(forwarder.stop)
        stack.callback(committer.close)
        stack.callback(acceptors.stop)  # runs first: no more mail from the acceptors
        acceptors.on_wake(pipeline.notify_incoming)
        settle_collector()
        try:
            _run_intake(_serve(server, _reload_handler(config, config_path, checkpointer)))
        finally:
            log.info("stopping: intake closed; finishing mails in hand")
    log.info("stopped cleanly")
    return 0


def _reporter(
    config: OuterConfig,
    audit: AuditLog,
    sender: LinkSender,
    reader: LinkReader | None,
    policy_version: Callable[[], int],
) -> StatusReporter:
    """The status report inward (docs/protocol.md §16.4): its figures, cursor and interval."""
    spool_dir = config.spool.dir
    sources = ReportSources(
        host=HostSampler(spool_dir), spool_root=spool_dir / "inbound",
        delivery_root=spool_dir / "outbound", sender=sender,
        receiver_status=None if reader is None else reader.status, audit=audit,
        policy_version=policy_version,
    )  # fmt: skip
    cursor = ReportCursor(spool_dir / "report-cursor.json")
    return StatusReporter(sources, cursor, interval_s=config.report_interval_s)


def _audit_received(audit: AuditLog) -> Callable[[Envelope, int], None]:
    def record(envelope: Envelope, size: int) -> None:
        audit.record(
            envelope.mail_id,
            "received",
            bundle_id=envelope.bundle_id.hex(),
            mail_from=envelope.mail_from,
            rcpts=list(envelope.rcpt_to),
            rcpt_count=len(envelope.rcpt_to),
            bytes=size,
            client=envelope.client_addr,
            helo=envelope.helo,
            tls=envelope.tls,
        )

    return record


def _acceptor_main(config: OuterConfig, counter: SessionCounter, wake: Callable[[], None]) -> None:
    """An extra SMTP acceptor: intake and spool only; the main process splits and renders."""
    setup_logging(config.log, agent="maildiode-outer-smtp")
    logging.getLogger("mail.log").setLevel(max(logging.WARNING, logging.getLogger().level))
    audit = AuditLog(config.audit.path, agent="outer")
    spool = Spool(
        config.spool.dir / "inbound",
        min_free_bytes=config.spool.min_free_bytes,
        at_rest=at_rest_of(config.keys),
    )
    # Segments only: the main process renders, and learns of new mail from the splitter.
    committer = SpoolCommitter(spool, on_committed=_audit_received(audit), on_segment=wake)
    settle_collector()
    try:
        _run_intake(_serve(_server(config, spool, committer, counter, reuse_port=True)))
    finally:
        committer.close()
        audit.close()


def _delivery(
    config: OuterConfig,
    audit: AuditLog,
    pipeline: Pipeline,
    poller: LinkPoll | None,
    *,
    queue: DeliveryQueue,
    control: Callable[[ReceivedBundle], None],
) -> DeliveryService:
    section = config.delivery
    policy = RetryPolicy(
        attempts_per_pass=section.attempts_per_pass,
        retry_initial_s=section.retry_initial_s,
        retry_max_s=section.retry_max_s,
        expire_s=section.expire_s,
    )
    return DeliveryService(
        queue,
        hop_from_config(section),
        audit,
        decode=decode_outbound,
        inject_inbound=pipeline.inject,
        policy=policy,
        hostname=config.smtp.hostname,
        poll_link=poller,
        poll_s=section.poll_s,
        control=control,
    )


def _limits(config: OuterConfig) -> IntakeLimits:
    smtp = config.smtp
    return IntakeLimits(
        domains=frozenset(smtp.domains),
        max_message_bytes=smtp.max_message_bytes,
        max_recipients=smtp.max_recipients,
        max_sessions=smtp.max_sessions,
        max_sessions_per_ip=smtp.max_sessions_per_ip,
        require_tls=smtp.require_tls,
        idle_timeout_s=smtp.idle_timeout_s,
        stress_timeout_s=smtp.stress_timeout_s,
        stress_fraction=smtp.stress_fraction,
    )


def _server(
    config: OuterConfig,
    spool: Spool,
    committer: SpoolCommitter,
    counter: SessionCounter,
    *,
    reuse_port: bool,
) -> IntakeServer:
    smtp = config.smtp
    limits = _limits(config)
    tls = None
    if smtp.tls_cert is not None and smtp.tls_key is not None:
        tls = server_tls_context(str(smtp.tls_cert), str(smtp.tls_key))
    host, port = parse_host_port(smtp.listen)
    handler = IntakeHandler(limits, spool, committer, clock=time.time)
    return IntakeServer(
        handler,
        host=host,
        port=port,
        hostname=smtp.hostname,
        timeout_s=smtp.timeout_s,
        tls_context=tls,
        reuse_port=reuse_port,
        counter=counter,
    )


_STOP_REQUESTED = threading.Event()
_RELOAD_REQUESTED = threading.Event()


def _remember_stop(signum: int, frame: object) -> None:
    _STOP_REQUESTED.set()


def _remember_reload(signum: int, frame: object) -> None:
    _RELOAD_REQUESTED.set()


def _reload_handler(
    config: OuterConfig, path: Path | None, checkpointer: AuditCheckpointer
) -> Callable[[], object] | None:
    """What SIGHUP does once running (agentkit.reload); None without a file to read again."""
    if path is None:
        return None
    return functools.partial(
        reload_config, config, lambda: load_config(path, OuterConfig),
        functools.partial(apply_reloaded, checkpointer=checkpointer,
                          stores=functools.partial(_reloaded_stores, config)),
    )  # fmt: skip


def _run_intake(serving: Coroutine[Any, Any, None]) -> None:
    """Run the SMTP intake's coroutine to its end on the intake's event loop (uvloop)."""
    with asyncio.Runner(loop_factory=intake_event_loop) as runner:
        runner.run(serving)


async def _serve(server: IntakeServer, on_reload: Callable[[], object] | None = None) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if on_reload is not None:
        loop.add_signal_handler(signal.SIGHUP, on_reload)
        if _RELOAD_REQUESTED.is_set():  # asked for while starting: done now
            loop.call_soon(on_reload)
    if _STOP_REQUESTED.is_set():
        return
    await server.start()
    log.info("outer agent running")
    await stop.wait()
    await server.stop()


def _reloaded_stores(running: OuterConfig, new: OuterConfig) -> list[StorePrune]:
    """The stores to prune after a reload: the new ``[retention]`` days over the running
    agent's folders and databases (they change only at a restart)."""
    return retention_stores(running.model_copy(update={"retention": new.retention}))
