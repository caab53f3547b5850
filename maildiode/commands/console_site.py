"""What ``maildiode account`` and ``maildiode token`` work on: the account and token stores in
the directory database, and the access log in the audit store, of one ``inner.toml``.

Only ``[outbound]`` (its ``directory_db``), ``[audit]`` and ``[console]`` are read; the rest of
the file is not checked here (``maildiode check`` does that). Every change these commands make
is an access record by ``cli:<the operating-system user>`` from address ``local``.

Both openings first bring the files they open to this release and record it in the audit log
as ``state_migrated``, as the agent's start does (D98); a newer release's file raises
``NewerStateError`` before any store opens.
"""

from __future__ import annotations

import getpass
import sys
from dataclasses import dataclass
from pathlib import Path

from pydantic import ConfigDict

from agentkit.access import AccessLog, Action, iso_time
from agentkit.audit import AuditLog
from agentkit.settings import AuditSection, ConfigError, Section, load_config
from agentkit.upgrade import StateDatabase
from inner_agent.outbound.config import OutboundSection
from inner_agent.outbound.directory import Directory
from inner_agent.outbound.directory_schema import VERSIONS as DIRECTORY_VERSIONS
from inner_agent.web.accounts import AccountStore
from inner_agent.web.api_tokens import TokenStore
from inner_agent.web.config import ConsoleSection
from maildiode.commands.check import guess_agent
from maildiode.commands.state_upgrade import upgrade_recorded

__all__ = ["LOCAL", "AccessSite", "ConsoleSite", "open_access", "open_site", "operator", "when"]

LOCAL = "local"  # the address of a change made at the machine's command line


class _AccessConfig(Section):
    model_config = ConfigDict(extra="ignore", frozen=True)
    audit: AuditSection = AuditSection()
    console: ConsoleSection = ConsoleSection()


class _SiteConfig(_AccessConfig):
    outbound: OutboundSection


@dataclass
class AccessSite:
    """The access log of a config's audit store (for the review)."""

    audit: AuditLog
    access: AccessLog
    console: ConsoleSection
    audit_path: Path

    def record(self, action: Action, detail: str, *, count: int | None = None) -> None:
        self.access.record(operator(), LOCAL, action, detail=detail, count=count)

    def close(self) -> None:
        self.audit.close()


def open_access(config: str) -> AccessSite | None:
    """The access log of the file's audit store, or None after saying on stderr why not.
    Raises ``NewerStateError`` for a newer release's audit log."""
    try:
        loaded = load_config(Path(config), _AccessConfig)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None
    agent = guess_agent(Path(config), None) or "inner"
    upgrade_recorded([], loaded.audit.path, agent=agent)
    audit = AuditLog(loaded.audit.path, agent=agent)
    return AccessSite(audit, AccessLog(audit, loaded.audit.path, loaded.console.zone),
                      loaded.console, loaded.audit.path)  # fmt: skip


@dataclass
class ConsoleSite:
    directory: Directory
    tokens: TokenStore
    audit: AuditLog
    access: AccessLog
    console: ConsoleSection

    @property
    def accounts(self) -> AccountStore:
        return self.directory.accounts

    def record(self, action: Action, detail: str, *, count: int | None = None) -> None:
        self.access.record(operator(), LOCAL, action, detail=detail, count=count)

    def close(self) -> None:
        self.tokens.close()
        self.directory.close()
        self.audit.close()


def open_site(config: str) -> ConsoleSite | None:
    """The stores of the file's site, or None after saying on stderr why not. Raises
    ``NewerStateError`` for a newer release's directory or audit log (nothing opened)."""
    try:
        loaded = load_config(Path(config), _SiteConfig)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None
    # the accounts and the API tokens share the directory's file
    directory_db = StateDatabase.at(loaded.outbound.directory_db, DIRECTORY_VERSIONS)
    upgrade_recorded([directory_db], loaded.audit.path)
    directory = Directory(loaded.outbound.directory_db)
    tokens = TokenStore(loaded.outbound.directory_db)
    audit = AuditLog(loaded.audit.path, agent="inner")
    access = AccessLog(audit, loaded.audit.path, loaded.console.zone)
    return ConsoleSite(directory, tokens, audit, access, loaded.console)


def operator() -> str:
    """Who runs the command, as access records name them."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no name for this uid (a bare container)
        return "cli:?"


def when(ts: float | None, site: ConsoleSite) -> str:
    """A stored time in the console's zone, ISO 8601 with offset; "-" when there is none."""
    return iso_time(ts, site.console.zone) if ts else "-"
