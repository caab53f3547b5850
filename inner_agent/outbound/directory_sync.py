"""The directory sync as a duty: one pass (``DirectorySync.run_once``) fetches the people from
LDAP, replaces the directory, moves open approvals to the approvers it now names, and records
it all: the access records ``directory_imported`` (the summary) and ``directory_changed`` (one
per person or department added, changed or removed, and one per approval moved, with its
mail), and the report stored in the directory (``Directory.reports``). The agent runs it every
``directory.ldap.interval_s`` (``agentkit.periodic.PeriodicPass``); ``maildiode directory sync``
runs one pass by hand.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Protocol

from agentkit.access import AccessLog, Action
from agentkit.leasekeeper import FenceClosed
from agentkit.periodic import PeriodicPass
from inner_agent.outbound.approvers import Approvers
from inner_agent.outbound.directory import Directory, Report
from inner_agent.outbound.errors import DirectoryError, DirectoryUnreachable
from inner_agent.outbound.ldap_bind import DirectoryState
from inner_agent.outbound.ldap_config import LdapSection
from inner_agent.outbound.ldap_sync import (
    Fetched,
    LdapEntry,
    Mapped,
    ServerState,
    fetch_from_any,
    snapshot_from_entries,
)
from inner_agent.outbound.rerouting import Moved, move_open_requests
from inner_agent.outbound.state import OutboundState

__all__ = [
    "AccessRecorder",
    "DirectorySync",
    "SyncOutcome",
    "access_recorder",
    "record_report",
    "sync_duty",
]

log = logging.getLogger(__name__)


class AccessRecorder(Protocol):
    def __call__(
        self, action: Action, detail: str, *, mail_id: str | None = None, count: int | None = None
    ) -> None: ...


@dataclass(frozen=True)
class SyncOutcome:
    report: Report
    notes: list[str] = field(default_factory=list)
    moved: list[Moved] = field(default_factory=list)
    server: str = ""  # the LDAP server that answered
    down: tuple[ServerState, ...] = ()  # the servers asked before it that could not answer


def record_report(record: AccessRecorder, source: str, report: Report) -> None:
    """An import or sync changes access rights (who approves for whom): its summary, then one
    record per user or department added, changed or removed."""
    kinds = (("user", report.users), ("department", report.departments))
    changes = [(noun, mark, name)
               for noun, found in kinds
               for mark, names in (("added", found.added), ("changed", found.changed),
                                   ("removed", found.removed))
               for name in names]  # fmt: skip
    record(Action.DIRECTORY_IMPORTED, f"{source}: {report.summary()}", count=len(changes))
    for noun, mark, name in changes:
        record(Action.DIRECTORY_CHANGED, f"{noun} {name} {mark}")


class DirectorySync:
    def __init__(
        self,
        section: LdapSection,
        directory: Directory,
        record: AccessRecorder,
        *,
        open_requests: tuple[OutboundState, Approvers] | None = None,
        fetch: Callable[[LdapSection], Fetched | list[LdapEntry]] = fetch_from_any,
        clock: Callable[[], float] = time.time,
        on_moved: Callable[[list[Moved]], None] | None = None,
        fence: Callable[[], None] = lambda: None,
        holding: Callable[[], AbstractContextManager[object]] = nullcontext,
    ) -> None:
        """``fence``: raises (agentkit.leasekeeper.FenceClosed) once the agent no longer holds
        its state's lease; checked after the fetch, before the directory is replaced.
        ``holding``: the block the replace and the moves run in (the hand command's
        ``fenced_write``, which checks the lease and keeps it from moving until they are done)."""
        self.section, self.directory, self.record = section, directory, record
        self.open_requests, self.fetch, self.clock = open_requests, fetch, clock
        self.on_moved = on_moved  # the agent asks the new approvers (Workflow.ask_moved)
        self.fence, self.holding = fence, holding

    def preview(self) -> SyncOutcome:
        """What a pass would change now; changes nothing."""
        fetched, mapped = self._fetch()
        return SyncOutcome(self.directory.preview(mapped.snapshot), mapped.notes,
                           server=fetched.server, down=fetched.down)  # fmt: skip

    def run_once(self) -> SyncOutcome:
        """One pass; DirectoryError (nothing changed) when LDAP fails or finds nobody."""
        fetched, mapped = self._fetch()
        source = f"ldap {fetched.server}"
        with self.holding():
            self.fence()  # the fetch took seconds: the lease may have gone meanwhile
            report = self.directory.replace(mapped.snapshot, source)
            if report:
                record_report(self.record, source, report)
            moved = self._move_requests()
        log.info("directory sync: %s; %d approval(s) moved", report.summary(), len(moved))
        return SyncOutcome(report, mapped.notes, moved, fetched.server, fetched.down)

    def _fetch(self) -> tuple[Fetched, Mapped]:
        section = self.section
        found = self.fetch(section)
        # A fetch that returns only the entries (a test's double) got them from the first.
        fetched = found if isinstance(found, Fetched) else Fetched(found, section.url[0])
        mapped = snapshot_from_entries(fetched.entries, section.attributes, section.flavor)
        for note in mapped.notes:
            log.warning("directory sync: %s", note)
        if not mapped.snapshot.users:
            raise DirectoryError(
                f"LDAP {fetched.server}: no people under {section.base_dn} match "
                f"{section.people_filter()}; the directory is kept as it was"
            )
        return fetched, mapped

    def _move_requests(self) -> list[Moved]:
        if self.open_requests is None:
            return []
        state, approvers = self.open_requests
        moved = move_open_requests(state, approvers, self.directory, self.clock())
        for move in moved:
            self.record(Action.DIRECTORY_CHANGED, move.detail(), mail_id=move.mail_id)
        if moved and self.on_moved is not None:
            self.on_moved(moved)
        return moved


def access_recorder(access: AccessLog, account: str) -> AccessRecorder:
    """Access records of ``account`` at the machine itself (the agent's scheduled sync)."""

    def record(
        action: Action, detail: str, *, mail_id: str | None = None, count: int | None = None
    ) -> None:
        access.record(account, "local", action, mail_id=mail_id, detail=detail, count=count)

    return record


def sync_duty(
    sync: DirectorySync, on_state: Callable[[DirectoryState], None] | None = None
) -> PeriodicPass:
    """A pass at once, then one every ``interval_s``, in a thread of its own (not started).
    ``on_state``: told after each pass whether the server answered (``directory_health``)."""
    interval = sync.section.interval_s
    told = on_state or (lambda _state: None)

    def one_pass() -> None:
        try:
            outcome = sync.run_once()
        except DirectoryUnreachable as exc:
            log.error("directory sync failed, the directory is kept as it was: "
                      "ldap_unreachable: %s; trying again in %.0f s", exc, interval)  # fmt: skip
            now = time.time()
            down = tuple(ServerState(server, False, why, now) for server, why in exc.down)
            told(DirectoryState(exc.server, False, exc.reason, now, down))
            return
        except FenceClosed as closed:  # the standby syncs once it holds the lease
            log.warning("directory sync: not done: this agent no longer holds the state's "
                        "lease (%s)", closed)  # fmt: skip
            return
        except DirectoryError as exc:  # misconfigured: one line, not a traceback
            log.error("directory sync failed, the directory is kept as it was: %s; "
                      "trying again in %.0f s", exc, interval)  # fmt: skip
            return  # whether the server answered is not known: the last state stays
        now = time.time()
        up = ServerState(outcome.server, True, "", now)
        told(DirectoryState(outcome.server, True, "", now, (up, *outcome.down)))

    return PeriodicPass("directory-sync", one_pass, lambda: interval, "directory sync failed",
                        threading.Event())  # fmt: skip
