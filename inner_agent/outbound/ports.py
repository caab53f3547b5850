"""What the outbound workflow is given from outside: where it keeps things (``Stores``) and
where things leave it (``Outlets``: the audit log and the out link)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from inner_agent.outbound.directory import Directory
from inner_agent.outbound.spool import Spool
from inner_agent.outbound.state import OutboundState
from protocol import Kind

__all__ = ["Audit", "Outlets", "Publisher", "Stores"]


class Audit(Protocol):
    def record(self, mail_id: str, step: str, **fields: Any) -> None: ...


class Publisher(Protocol):
    """The out link (``agentkit.links.LinkPublisher``): mail as DATA, the receive filters'
    policy and decisions as CONTROL records."""

    def publish(self, bundle: bytes, bundle_id: bytes, kind: Kind = Kind.DATA) -> int: ...


@dataclass(frozen=True)
class Stores:
    spool: Spool  # the accepted mails' files: the truth about which mails exist
    state: OutboundState  # how far each got; requests, nonces, sessions, the notice outbox
    directory: Directory  # users, departments, approvers, accounts


@dataclass(frozen=True)
class Outlets:
    audit: Audit
    publisher: Publisher
