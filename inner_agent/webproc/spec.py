"""What the web process is told to open: ``WebSpec``, written by the agent as JSON on the
child's standard input and checked there like a config file (frozen, unknown keys refused).

Only what the listener needs crosses: the ``[outbound]`` section (the web listener, the
approval settings, the state database, the spool, the directory), ``[console]``, ``[log]``,
``[directory.ldap]`` (sign-in with the directory password),
the audit log's file, the state folder and the console's alarm thresholds from ``[link]``
and ``[inject]``. Every path is absolute (the agent resolved them when it loaded its
config), and nothing secret crosses: the child reads the web secret from its file.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field, ValidationError

from agentkit.lease import Terms
from agentkit.settings import LogSection, Section
from inner_agent.console.places import (
    DEFAULT_GAP_WAIT_S,
    DEFAULT_INJECT_ALARM_S,
    DEFAULT_SILENCE_ALARM_S,
    ConsolePlaces,
)
from inner_agent.outbound.config import OutboundSection
from inner_agent.outbound.ldap_config import LdapSection
from inner_agent.policyedit.files import PolicyFiles
from inner_agent.web.config import ConsoleSection
from inner_agent.webproc.errors import WebProcessFailed

__all__ = ["MAX_SPEC_BYTES", "WebSpec", "read_spec"]

# The sections of one inner.toml, as JSON, are a few kilobytes.
MAX_SPEC_BYTES = 256 << 10


class WebSpec(Section):
    outbound: OutboundSection
    console: ConsoleSection = ConsoleSection()
    log: LogSection = LogSection()
    audit_path: Path  # the audit store the agent writes to: access records and decisions too
    state_dir: Path | None = None  # the agent's [state] dir (the console's report store)
    # The console's alarm thresholds, from the agent's [link] and [inject] (docs/console.md).
    silence_alarm_s: float = Field(default=DEFAULT_SILENCE_ALARM_S, gt=0)
    gap_wait_s: float = Field(default=DEFAULT_GAP_WAIT_S, gt=0)
    inject_alarm_s: float = Field(default=DEFAULT_INJECT_ALARM_S, gt=0)
    # The agent's at-rest key file (its path only: the child reads the keys itself).
    at_rest_key: Path | None = None
    # The policy editor's files: [inbound] rules_file (None: the built-in rules) and whether
    # [inbound] is set at all (the outbound file is [outbound] rules_file).
    inbound_rules_file: Path | None = None
    inbound_configured: bool = False
    # [directory.ldap]: people sign in with their directory password (its bind password
    # stays in its file, read by the child).
    ldap: LdapSection | None = None
    # The outer agents beyond the pair's ([[streams.outer]] ids): the dashboard lists them.
    streams: tuple[str, ...] = ()
    # The state's fencing lease the agent runs under: decisions are stored only while it is
    # still the agent's (agentkit.leasekeeper.LeaseWatch); None: no lease (a test's service).
    lease: Terms | None = None

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @property
    def console_places(self) -> ConsolePlaces:
        """Where the console reads, in the web process: the agent's files, read-only."""
        return ConsolePlaces(
            audit_path=self.audit_path, state_dir=self.state_dir,
            outbound_state=self.outbound.spool_dir / "state.db",
            silence_alarm_s=self.silence_alarm_s, gap_wait_s=self.gap_wait_s,
            inject_alarm_s=self.inject_alarm_s, at_rest_key=self.at_rest_key,
            streams=self.streams, lease_holder=self.lease.holder if self.lease else None,
            # the dashboard's directory alarms (its gaps, LDAP servers down) read these; the
            # agent's console has them from places_from, the web process's must too
            directory_db=self.outbound.directory_db,
            fallback_approver=self.outbound.approval.fallback_approver,
        )  # fmt: skip

    @property
    def policy_files(self) -> PolicyFiles:
        """The rules files the console's policy editor changes, and its versions folder."""
        versions = (self.state_dir or self.outbound.spool_dir) / "policy-versions"
        return PolicyFiles(self.outbound.rules_file, self.inbound_rules_file, versions,
                           self.inbound_configured)  # fmt: skip


def read_spec(untrusted: bytes) -> WebSpec:
    """The spec the agent wrote; WebProcessFailed naming what is wrong."""
    if len(untrusted) > MAX_SPEC_BYTES:
        raise WebProcessFailed(f"the web process spec is larger than {MAX_SPEC_BYTES} bytes")
    try:
        # Python mode, not JSON mode: the sections' path validators run as they do on a file.
        return WebSpec.model_validate(json.loads(untrusted))
    except (ValueError, ValidationError) as exc:
        raise WebProcessFailed(f"the web process spec does not validate: {exc}") from None
