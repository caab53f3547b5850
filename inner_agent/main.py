"""Run the inner agent: the inbound link reader, the injection workers and (when configured) the
outbound service; stop cleanly on SIGTERM or SIGINT.

Stopping order: the outbound service (its web process first), then the link reader (it
finishes the bundle in hand; a bundle not yet sent or committed stays in the work folder and
is handled at the next start), then the injection workers (a message in the middle of an SMTP
transaction finishes or stays queued). Everything not yet accepted by the internal server
waits in the queue or the work folder for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from agentkit.atrest import at_rest_of
from agentkit.audit import AuditLog
from agentkit.auditsigning import AuditCheckpointer
from agentkit.collector import settle_collector
from agentkit.leasekeeper import LeaseKeeper
from agentkit.logs import setup_logging
from agentkit.reload import apply_reloaded, reload_config
from agentkit.settings import load_config
from agentkit.startup import open_state
from agentkit.storeretention import StorePrune
from agentkit.streams import PAIR_INBOUND
from agentkit.upgrade import (
    StateDatabase,
    audit_database,
    check_state,
    lease_database,
    link_databases,
    record_upgrades,
    upgrade_state,
)
from inner_agent.bundle_check import ImagePolicy
from inner_agent.bundle_handler import BundleHandler, RuleNotices
from inner_agent.config import InnerConfig
from inner_agent.direct import DirectInjection
from inner_agent.duplicates import VERSIONS as DUPLICATES_VERSIONS
from inner_agent.duplicates import DuplicateBook
from inner_agent.inbound.arrivals import HeldArrivals
from inner_agent.inbound.holds import VERSIONS as HOLDS_VERSIONS
from inner_agent.inbound.holds import HoldBook
from inner_agent.inject import VERSIONS as INJECT_VERSIONS
from inner_agent.inject import InjectionQueue, Injector, RetryPolicy
from inner_agent.left_over import build_left_over
from inner_agent.link_service import LinkService, OneAtATime, build_readers
from inner_agent.notify import NotifyOptions
from inner_agent.outbound.absences import VERSIONS as ABSENCES_VERSIONS
from inner_agent.outbound.directory_schema import VERSIONS as DIRECTORY_VERSIONS
from inner_agent.outbound.shares import VERSIONS as SHARES_VERSIONS
from inner_agent.outbound.state import VERSIONS as OUTBOUND_VERSIONS
from inner_agent.reports import VERSIONS as REPORTS_VERSIONS
from inner_agent.reports import ControlHandler, ReportStore
from inner_agent.retention import retention_stores
from inner_agent.smtpclient import Hop
from inner_agent.standby import HeldLease, fenced, free_addresses, take_lease
from inner_agent.web.store import VERSIONS as SIGNIN_VERSIONS
from protocol import LinkReader
from protocol.keys import VerifyKey
from protocol.sqlite import Migrated

if TYPE_CHECKING:
    from inner_agent.outbound.directory import Directory
    from inner_agent.outbound.service import OutboundService

__all__ = ["EXIT_LEASE_LOST", "notify_options", "run", "state_databases"]

log = logging.getLogger(__name__)

# The exit status after this agent lost the state's fencing lease to another (docs/operations.md).
EXIT_LEASE_LOST = 4


def notify_options(config: InnerConfig) -> NotifyOptions:
    section = config.notify
    return NotifyOptions(
        language=section.language, subject_prefix=section.subject_prefix,
        from_address=section.from_address, our_domains=tuple(section.our_domains),
        max_message_bytes=section.max_message_bytes, carry_text=section.carry_text,
    )  # fmt: skip


def run(config: InnerConfig, *, config_path: Path | None = None, standby: bool = False) -> int:
    """Run until SIGTERM/SIGINT; 0 on a clean stop, EXIT_LEASE_LOST when the fencing lease was
    lost. SIGHUP reads ``config_path`` again (agentkit.reload) and the rules and the directory.
    ``standby``: wait for the state's lease instead of refusing to start while another agent
    holds it (inner_agent.standby)."""
    setup_logging(config.log, agent="maildiode-inner")
    stop_early = threading.Event()  # a stop asked for while waiting for the disk is kept
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: stop_early.set())
    reload_early = threading.Event()  # a reload asked for while starting: done once running
    signal.signal(signal.SIGHUP, lambda _signum, _frame: reload_early.set())
    lost: list[str] = []
    # A newer release's file anywhere in the state refuses the start before anything is
    # upgraded (D109); the lease's own file is brought forward before it is taken. Reading a
    # version needs room (SQLite's shared-memory file): a full disk is waited out, as below.
    lease_migrated = open_state(lambda: _lease_brought_forward(config), config.state.dir,
                                stop=stop_early)  # fmt: skip
    if lease_migrated is None:
        log.info("stopped while waiting to read the agent's state")
        return 0
    lease = take_lease(config, standby=standby, stop=stop_early,
                       on_lost=functools.partial(_stop_on_lost, lost))  # fmt: skip
    if lease is None:
        log.info("stopped before the state's lease was taken")
        return 0
    lease.keeper.start()  # renewed from now on, also while a full disk delays opening the state
    try:
        if standby and not free_addresses(config, stop_early):
            return EXIT_LEASE_LOST if lost else 0
        if _run_holding(config, lease, stop_early, reload_early, config_path,
                        lease_migrated=lease_migrated) is None:  # fmt: skip
            return 0
    finally:
        lease.stop()
    return EXIT_LEASE_LOST if lost else 0


def _stop_on_lost(lost: list[str], why: str) -> None:
    """The lease is gone: stop as SIGTERM would (the new holder finishes what is left)."""
    lost.append(why)
    os.kill(os.getpid(), signal.SIGTERM)


def _run_holding(
    config: InnerConfig,
    lease: HeldLease,
    stop_early: threading.Event,
    reload_early: threading.Event,
    config_path: Path | None,
    *,
    lease_migrated: list[Migrated],
) -> int | None:
    """The agent itself, while holding the lease; None when stopped before the state opened.
    ``lease_migrated``: the lease file's upgrade, recorded with the others'."""
    state_dir = config.state.dir
    opened = open_state(lambda: _open(config, lease_migrated), state_dir, stop=stop_early)
    if opened is None:
        log.info("stopped before the state could be opened")
        return None
    audit, queue, readers = opened
    lease.record_takeover(audit)
    section = config.inject
    hop = dataclasses.replace(Hop.from_config(section), fence=lease.keeper.fence)
    injector = Injector(
        queue, hop, audit,
        policy=RetryPolicy(section.attempts_per_pass, section.retry_initial_s, section.retry_max_s),
        workers=section.workers, postmaster=config.postmaster,
        report_from=config.notify.from_address, quarantine_dir=state_dir / "quarantine",
        poll_s=section.poll_s,
    )  # fmt: skip
    direct = DirectInjection(queue, hop) if section.direct else None
    reports = ReportStore(state_dir / "reports.db")
    holds, held, directory = _receive_filters(config, audit)
    options = notify_options(config)
    duplicates = _duplicate_book(config)
    handler = BundleHandler(
        queue, audit, options,
        ImagePolicy(config.images.max_pixels, config.images.reencode == "always"),
        state_dir / "quarantine", direct=direct,
        control=ControlHandler(reports, audit, stream_keys=_outer_keys(config)),
        held=held, rule_notices=_rule_notices(config, directory, options.from_address),
        duplicates=duplicates,
    )  # fmt: skip
    guarded = fenced(handler, lease.keeper.fence)
    shared = OneAtATime(guarded) if len(readers) > 1 else guarded
    links = [LinkService(r, shared, config.link.rescan_s, audit, fence=lease.keeper.fence)
             for r in readers.values()]  # fmt: skip
    log.info("injection queue: %s", queue.counts())
    checkpointer = AuditCheckpointer.from_config(audit, config, retention_stores(config))
    checkpointer.start()
    settle_collector()
    injector.start()
    if left_over := build_left_over(handler):
        log.info("built %d bundle(s) an earlier version had stored", left_over)
    for link in links:
        link.start()
    try:
        on_reload = None
        if config_path is not None:
            path = config_path
            on_reload = functools.partial(
                reload_config, config, lambda: load_config(path, InnerConfig),
                functools.partial(apply_reloaded, checkpointer=checkpointer,
                          stores=functools.partial(_reloaded_stores, config)),
            )  # fmt: skip
        asyncio.run(_serve(config, audit, stop_early, holds, on_reload=on_reload,
                           reload_early=reload_early, lease=lease.keeper))  # fmt: skip
    finally:
        log.info("stopping: link reader, then injection workers")
        for link in links:
            link.stop()
        if duplicates is not None:
            duplicates.close()
        if direct is not None:
            direct.close()
        injector.stop()
        queue.close()
        reports.close()
        for closable in (directory, holds):
            if closable is not None:
                closable.close()
        checkpointer.stop()  # the last events of this run signed
        audit.close()
    log.info("stopped cleanly")
    return 0


def _outer_keys(config: InnerConfig) -> dict[str, list[VerifyKey]]:
    """Each outer agent's public keys by its stream (``keys.peer_keys`` for the pair's
    ``inbound``, each ``[[streams.outer]]``'s for its own): a checkpoint is kept inside only
    when its own stream's key verifies it (inner_agent.reports, D98)."""
    extra = config.streams.outer if config.streams is not None else ()
    paths = {PAIR_INBOUND: config.keys.peer_keys, **{s.id: s.peer_keys for s in extra}}
    return {stream: [VerifyKey.load(path) for path in keys] for stream, keys in paths.items()}


def _lease_brought_forward(config: InnerConfig) -> list[Migrated]:
    """Every state file's version checked, then the lease's own file upgraded (D109)."""
    check_state([lease_database(config.state.dir), *state_databases(config)])
    return upgrade_state([lease_database(config.state.dir)])


def _open(
    config: InnerConfig, lease_migrated: list[Migrated]
) -> tuple[AuditLog, InjectionQueue, dict[str, LinkReader]]:
    """The audit log, the injection queue and every stream's link reader, or none of them."""
    config.state.dir.mkdir(parents=True, exist_ok=True)
    migrated = upgrade_state(state_databases(config))  # before any store opens them
    with contextlib.ExitStack() as opened:  # closes what was opened if a later one fails
        audit = AuditLog(config.audit.path, agent="inner")
        opened.callback(audit.close)
        record_upgrades(audit, [*lease_migrated, *migrated])
        queue = InjectionQueue(config.state.dir / "inject.db", at_rest=at_rest_of(config.keys))
        opened.callback(queue.close)
        readers = build_readers(config, config.state.dir)
        opened.pop_all()
    return audit, queue, readers


def _duplicate_book(config: InnerConfig) -> DuplicateBook | None:
    """The identities of mail seen on each stream, with several streams (D74); None with one."""
    if config.streams is None or not config.streams.outer:
        return None
    return DuplicateBook(config.state.dir / "duplicates.db", config.streams.dedup_window_s)


def _receive_filters(
    config: InnerConfig, audit: AuditLog
) -> tuple[HoldBook | None, HeldArrivals | None, Directory | None]:
    """The hold book and the link thread's handling of held mail (with its own connection to
    the directory), when [inbound] is set."""
    if config.inbound is None or config.outbound is None:
        return None, None, None
    from inner_agent.outbound.directory import Directory

    holds = HoldBook(config.state.dir / "inbound-holds.db")
    directory = Directory(config.outbound.directory_db)
    fallback = config.outbound.approval.fallback_approver
    return holds, HeldArrivals(holds, directory, audit, fallback=fallback), directory


def _rule_notices(
    config: InnerConfig, directory: Directory | None, from_address: str
) -> RuleNotices | None:
    """The inbound rules' ``notify``, sent from the link thread, when [inbound] is set."""
    if config.inbound is None or directory is None:
        return None
    # Lazy, as the directory is: only with [inbound] and [outbound].
    from inner_agent.inbound.rule_notices import InboundRuleNotices, RulesReader

    rules = RulesReader(config.inbound.rules_file)
    return InboundRuleNotices(rules.current, directory, from_address=from_address).for_mail


def state_databases(config: InnerConfig) -> list[StateDatabase]:
    """The inner agent's databases (agentkit.upgrade), those of [outbound] when it is set."""
    state = config.state.dir
    found = [
        audit_database(config.audit.path),
        *link_databases(state),
        StateDatabase.at(state / "inject.db", INJECT_VERSIONS),
        StateDatabase.at(state / "reports.db", REPORTS_VERSIONS),
        StateDatabase.at(state / "inbound-holds.db", HOLDS_VERSIONS),
        StateDatabase.at(state / "duplicates.db", DUPLICATES_VERSIONS),
    ]
    if (section := config.outbound) is not None:
        found += [
            StateDatabase.at(section.directory_db, DIRECTORY_VERSIONS),
            StateDatabase.at(section.spool_dir / "state.db", OUTBOUND_VERSIONS),
            StateDatabase.at(section.spool_dir / "absences.db", ABSENCES_VERSIONS),
            StateDatabase.at(section.web.signin.db, SIGNIN_VERSIONS),
            StateDatabase.at(section.spool_dir / "shares.db", SHARES_VERSIONS),
            *link_databases(section.spool_dir / "link-state"),
        ]
    return found


async def _serve(
    config: InnerConfig,
    audit: AuditLog,
    stop_early: threading.Event,
    holds: HoldBook | None,
    *,
    on_reload: Callable[[], object] | None = None,
    reload_early: threading.Event | None = None,
    lease: LeaseKeeper | None = None,
) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if stop_early.is_set():  # asked to stop while starting
        stop.set()
    outbound = await _start_outbound(config, audit, holds, lease)

    def reload() -> None:  # SIGHUP: the settings, and both rules files read again now
        if on_reload is not None:
            on_reload()
        if outbound is not None:
            outbound.reload_policy()

    loop.add_signal_handler(signal.SIGHUP, reload)
    if reload_early is not None and reload_early.is_set():
        loop.call_soon(reload)
    log.info("inner agent running")
    try:
        await stop.wait()
    finally:
        if outbound is not None:
            await outbound.stop()


async def _start_outbound(
    config: InnerConfig,
    audit: AuditLog,
    holds: HoldBook | None,
    lease: LeaseKeeper | None,
) -> OutboundService | None:
    """The outbound path behind the state's lease: it is started only once the lease is
    taken, and accepts, publishes and settles nothing after it is lost (its web process
    stores no decision either: it checks the lease's row itself)."""
    if config.outbound is None:
        log.info("no [outbound] section: the outbound path is off")
        return None
    # Lazy: without [outbound] the web server, the scanner and their imports never load.
    from inner_agent.outbound.service import OutboundService

    fence, terms = (None, None) if lease is None else (lease.fence, lease.terms)
    service = OutboundService(config, audit, holds=holds, fence=fence, lease=terms)
    await service.start()
    return service


def _reloaded_stores(running: InnerConfig, new: InnerConfig) -> list[StorePrune]:
    """The stores to prune after a reload: the new ``[retention]`` days over the running
    agent's folders and databases (they change only at a restart)."""
    return retention_stores(running.model_copy(update={"retention": new.retention}))
