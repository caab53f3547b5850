"""Where the console reads, from the inner agent's configuration: the audit store (and the
mail index beside it), the state folder (status reports, injection queue, link receiver,
quarantines), the outbound state database (approvals, findings, pictures), and the
thresholds its alarms use. Frozen; a missing part (no ``[audit]``, no ``[outbound]``) is
None and the console says that figure is not available."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_GAP_WAIT_S",
    "DEFAULT_INJECT_ALARM_S",
    "DEFAULT_SILENCE_ALARM_S",
    "ConsolePlaces",
    "places_from",
]

# What the link and queue alarms use when the configuration does not say (agentkit.settings
# and inner.toml's defaults).
DEFAULT_SILENCE_ALARM_S = 300.0
DEFAULT_GAP_WAIT_S = 30.0
DEFAULT_INJECT_ALARM_S = 900.0


@dataclass(frozen=True)
class ConsolePlaces:
    audit_path: Path | None = None  # [audit] path; the mail index lives beside it
    state_dir: Path | None = None  # [state] dir: reports.db, inject.db, receiver-inbound.db
    outbound_state: Path | None = None  # [outbound] spool_dir / state.db
    silence_alarm_s: float = DEFAULT_SILENCE_ALARM_S  # [link] silence_alarm_s
    gap_wait_s: float = DEFAULT_GAP_WAIT_S  # [link] gap_wait_s
    inject_alarm_s: float = DEFAULT_INJECT_ALARM_S  # [inject] alarm_after_s
    at_rest_key: Path | None = None  # [keys] at_rest_key: opens the sealed preview pictures
    directory_db: Path | None = None  # [outbound] directory_db: its gaps are alarms
    fallback_approver: str | None = None  # [outbound.approval]: asked where nobody else is
    streams: tuple[str, ...] = ()  # [[streams.outer]] ids: the outer agents beyond the pair's
    lease_holder: str | None = None  # [lease] holder (or the host's name): whose role is shown

    @property
    def shares_db(self) -> Path | None:
        """Which outer agent carries which outbound mail (D75), beside the outbound state."""
        return None if self.outbound_state is None else self.outbound_state.parent / "shares.db"

    @property
    def reports_db(self) -> Path | None:
        return None if self.state_dir is None else self.state_dir / "reports.db"

    @property
    def disk_path(self) -> Path:
        """The file system whose free space the dashboard shows for the inner host."""
        return self.state_dir or self.audit_path or Path("/")


def places_from(config: Any) -> ConsolePlaces:
    """The places of an ``InnerConfig`` (or any object with some of its sections)."""
    audit, state = getattr(config, "audit", None), getattr(config, "state", None)
    link, inject = getattr(config, "link", None), getattr(config, "inject", None)
    outbound = getattr(config, "outbound", None)
    spool_dir = getattr(outbound, "spool_dir", None)
    return ConsolePlaces(
        audit_path=getattr(audit, "path", None),
        state_dir=getattr(state, "dir", None),
        outbound_state=None if spool_dir is None else spool_dir / "state.db",
        silence_alarm_s=getattr(link, "silence_alarm_s", DEFAULT_SILENCE_ALARM_S),
        gap_wait_s=getattr(link, "gap_wait_s", DEFAULT_GAP_WAIT_S),
        inject_alarm_s=getattr(inject, "alarm_after_s", DEFAULT_INJECT_ALARM_S),
        at_rest_key=getattr(getattr(config, "keys", None), "at_rest_key", None),
        directory_db=getattr(outbound, "directory_db", None),
        fallback_approver=getattr(getattr(outbound, "approval", None), "fallback_approver", None),
        streams=tuple(s.id for s in getattr(getattr(config, "streams", None), "outer", ())),
        lease_holder=_lease_holder(config),
    )


def _lease_holder(config: Any) -> str | None:
    """The name this agent holds its state's lease under (inner_agent.standby.holder_name);
    None for a config without [lease] (a test's namespace)."""
    lease = getattr(config, "lease", None)
    if lease is None:
        return None
    return getattr(lease, "holder", None) or socket.gethostname()
