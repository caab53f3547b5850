"""The receive filters' parts of the outer agent, built from ``outer.toml`` (its main process
calls this after the spool's recovery and before any thread starts)."""

from __future__ import annotations

import json
import logging
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentkit.settings import parse_host_port
from outer_agent.archive import ArchiveForwarder, ArchiveQueue, Audit
from outer_agent.config import OuterConfig
from outer_agent.control import ControlDesk
from outer_agent.delivery import SmtpHop
from outer_agent.filtering import Filtering, FilterPackager
from outer_agent.hold_keeper import HoldKeeper, Publisher
from outer_agent.holds import HoldStore
from outer_agent.inbound_policy import PolicyStore
from outer_agent.spool import Envelope, Spool, mail_id_of
from outer_agent.verdicts import VerdictStore
from protocol.atrest import CLEAR, AtRest

__all__ = ["InboundParts", "archive_forwarder", "archive_queue", "build", "inbound_summary"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InboundParts:
    policies: PolicyStore
    holds: HoldStore
    filtering: Filtering
    check_s: float

    def desk(
        self,
        audit: Any,
        *,
        quarantine: Callable[[str, bytes, str], None],
        released: Callable[[Envelope, int], None],
    ) -> ControlDesk:
        return ControlDesk(
            self.policies, self.holds, audit, quarantine=quarantine, released=released
        )

    def keeper(self, publisher: Publisher, audit: Any) -> HoldKeeper:
        return HoldKeeper(self.holds, self.filtering, publisher, audit, check_s=self.check_s)


def build(
    config: OuterConfig, spool: Spool, packager: FilterPackager, knows: Callable[[bytes], bool]
) -> InboundParts:
    """The policy in force, the held mail (a decision a crash cut short is finished first) and
    the pipeline's filter; stored verdicts of mails no longer in the spool are dropped."""
    root = config.spool.dir
    policies = PolicyStore(root / "policy.json")
    holds = HoldStore(root / "held", spool.folder("received"), at_rest=spool.at_rest)
    if finished := holds.recover():
        log.info("finished %d decision(s) on held mail a stop cut short", finished)
    verdicts = VerdictStore(spool.root / "verdicts")
    verdicts.prune({mail_id_of(name) for name in spool.pending() + spool.claimed()})
    filtering = Filtering(
        policies,
        holds,
        verdicts,
        packager,
        knows=knows,
        hold_expiry_s=config.inbound.hold_expiry_s,
        quarantine_failures=config.render.on_failure == "quarantine",
    )
    log.info("inbound policy version %d; %d mail(s) held", policies.version, holds.count())
    return InboundParts(policies, holds, filtering, config.inbound.check_s)


def archive_queue(config: OuterConfig, at_rest: AtRest = CLEAR) -> ArchiveQueue | None:
    if not config.archive.smtp:
        return None
    return ArchiveQueue(config.spool.dir / "archive", at_rest=at_rest)


def archive_forwarder(
    config: OuterConfig, queue: ArchiveQueue | None, audit: Audit
) -> ArchiveForwarder | None:
    section = config.archive
    if queue is None or section.smtp is None:
        return None
    context = None
    if section.tls_ca_file is not None:
        context = ssl.create_default_context(cafile=str(section.tls_ca_file))
    hop = SmtpHop(
        smarthost=parse_host_port(section.smtp),
        helo=section.helo,
        starttls=section.starttls,
        tls_context=context,
        timeout_s=section.connect_timeout_s,
    )
    return ArchiveForwarder(
        queue,
        hop,
        audit,
        where=section.smtp,
        mailbox=section.mailbox,
        retry_initial_s=section.retry_initial_s,
        retry_max_s=section.retry_max_s,
        expire_s=section.expire_s,
        poll_s=section.poll_s,
    )


def inbound_summary(spool_dir: Path) -> dict[str, int | None]:
    """For ``maildiode status -c outer.toml``, read only: the policy version in force (0: none,
    None: its file is unreadable), held mails, and archive copies waiting or failed."""
    try:
        document = json.loads((spool_dir / "policy.json").read_text(encoding="utf-8"))
        version: int | None = int(document["version"])
    except FileNotFoundError:
        version = 0
    except (OSError, ValueError, KeyError, TypeError):
        version = None
    failed = _entries(spool_dir / "archive" / "failed")
    return {
        "policy_version": version,
        "held": len(_entries(spool_dir / "held" / "mail")),
        "archive_waiting": len(_entries(spool_dir / "archive" / "queue")),
        "archive_failed": len([n for n in failed if not n.endswith(".reason")]),
    }


def _entries(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except FileNotFoundError:
        return []
