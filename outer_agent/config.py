"""The outer agent's configuration (``outer.toml``), loaded once into frozen typed objects.

Every key is documented in ``docs/configuration.md`` under "outer.toml". ``example_toml``
writes a complete, commented file; ``maildiode init`` calls it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from agentkit.settings import (
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_MAX_RECIPIENTS,
    DEFAULT_MIN_FREE_BYTES,
    MAX_MESSAGE_BYTES_CEILING,
    MAX_RECIPIENTS_CEILING,
    SMTP_CLIENT_TIMEOUT_S,
    SMTP_IDLE_TIMEOUT_S,
    AuditSection,
    HostPort,
    KeysSection,
    LinkSection,
    LogSection,
    RetentionSection,
    Section,
    check_private_key_file,
    example_key_lines,
    resolve_path,
)
from agentkit.settings import Domain as _Domain
from agentkit.streams import PAIR_INBOUND, StreamId

__all__ = [
    "ArchiveSection",
    "AuthSection",
    "DeliverySection",
    "InboundSection",
    "OuterConfig",
    "OuterLinkSection",
    "RenderSection",
    "ReportSection",
    "SmtpSection",
    "SpoolSection",
    "example_toml",
]

# What rendering one mail may cost in the agent. The renderer's own defaults (for tools and
# tests: mailsafe.render.options, 20 CPU s and 30 s of wall clock) are tighter; the agent is
# more patient, because a mail cut short by a limit reaches its reader as "not displayable",
# which for a slow but honest mail on a busy host is worse than a longer wait. The memory cap
# is the renderer's: PyMuPDF and Pillow need ~400 MiB for the biggest picture allowed.
DEFAULT_RENDER_CPU_SECONDS = 30
DEFAULT_RENDER_WALL_SECONDS = 60.0
DEFAULT_RENDER_MEMORY_MB = 1024
# Enough for a busy MX in front of us; each session costs one coroutine and a little memory.
DEFAULT_MAX_SESSIONS = 200
# Postfix's smtpd_client_connection_count_limit (50): a busy relay in front of us (an MX,
# Microsoft 365) opens many parallel sessions and must not be refused below what Postfix
# grants it; still caps a single client hogging the intake (a quarter of max_sessions).
DEFAULT_MAX_SESSIONS_PER_IP = 50
# A session with no mail transaction open may wait this long for its next command: a sending
# MTA says MAIL within a second of the greeting, so 30 s is generous, and idle sessions can no
# longer hold the intake for the 300 s of RFC 5321 (issue 15.7).
DEFAULT_IDLE_TIMEOUT_S = 30.0
# Postfix's smtpd_timeout under stress ("${stress?{10}:{300}}s").
DEFAULT_STRESS_TIMEOUT_S = 10.0
# Under stress once three quarters of max_sessions are taken: early enough that idle sessions
# are cut before the overall limit turns everyone away, late enough to leave a busy MX alone.
DEFAULT_STRESS_FRACTION = 0.75


# An outbound mail waiting longer than this for the relay makes `maildiode status` exit 1:
# fifteen minutes, as the inner agent's inject.alarm_after_s.
DEFAULT_DELIVERY_ALARM_S = 900.0


def _resolve_optional(value: Any, info: ValidationInfo) -> Any:
    return None if value is None else resolve_path(value, info)


class SmtpSection(Section):
    """The SMTP intake facing the internet (or the organisation's MX)."""

    listen: HostPort = "127.0.0.1:2525"
    hostname: str = "maildiode-outer.localdomain"  # name in the greeting and in bounce notices
    domains: tuple[_Domain, ...] = Field(min_length=1)  # RCPT accepted only for these domains
    # Internal servers cap lower (~10 MB), but rendering shrinks mail: the outer side may
    # accept more than the inside carries.
    max_message_bytes: int = Field(
        default=DEFAULT_MAX_MESSAGE_BYTES, ge=1024, le=MAX_MESSAGE_BYTES_CEILING
    )
    max_recipients: int = Field(default=DEFAULT_MAX_RECIPIENTS, ge=1, le=MAX_RECIPIENTS_CEILING)
    max_sessions: int = Field(default=DEFAULT_MAX_SESSIONS, ge=1, le=100_000)
    max_sessions_per_ip: int = Field(default=DEFAULT_MAX_SESSIONS_PER_IP, ge=1, le=100_000)
    timeout_s: float = Field(default=SMTP_IDLE_TIMEOUT_S, gt=0, le=3600)
    # Shorter waits for a command (never longer than timeout_s): with no mail transaction
    # open, and for every session once sessions reach stress_fraction of max_sessions.
    idle_timeout_s: float = Field(default=DEFAULT_IDLE_TIMEOUT_S, ge=1, le=3600)
    stress_timeout_s: float = Field(default=DEFAULT_STRESS_TIMEOUT_S, ge=1, le=3600)
    stress_fraction: float = Field(default=DEFAULT_STRESS_FRACTION, gt=0, le=1)
    # Processes accepting SMTP on the same port (SO_REUSEPORT): one per core keeps intake
    # going when the machine is busy; they share the session limits and the spool.
    processes: int = Field(default=2, ge=1, le=64)
    tls_cert: Path | None = None  # PEM certificate chain; with tls_key enables STARTTLS
    tls_key: Path | None = None
    require_tls: bool = False  # refuse MAIL before STARTTLS

    _paths = field_validator("tls_cert", "tls_key", mode="before")(_resolve_optional)

    @model_validator(mode="after")
    def _tls_pair(self) -> SmtpSection:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be given together")
        if self.require_tls and self.tls_cert is None:
            raise ValueError("require_tls needs tls_cert and tls_key")
        for path in (self.tls_cert, self.tls_key):
            if path is not None and not path.is_file():
                raise ValueError(f"file {path} does not exist")
        return self


class SpoolSection(Section):
    """Where accepted mail waits (received → rendered → published) and outbound mail waits."""

    dir: Path = Path("spool")
    min_free_bytes: int = Field(default=DEFAULT_MIN_FREE_BYTES, ge=0)

    _paths = field_validator("dir", mode="before")(resolve_path)


class RenderSection(Section):
    """Rendering workers (separate processes with limits)."""

    backend: Literal["pymupdf", "chromium"] = "pymupdf"
    processes: int = Field(default=2, ge=1, le=64)
    cpu_seconds: int = Field(default=DEFAULT_RENDER_CPU_SECONDS, ge=1, le=3600)
    memory_mb: int = Field(default=DEFAULT_RENDER_MEMORY_MB, ge=64, le=65536)
    wall_seconds: float = Field(default=DEFAULT_RENDER_WALL_SECONDS, gt=0, le=3600)
    pin_workers: bool = True  # each render worker on a CPU of its own (round robin)
    text_layer: bool = True  # send the extracted plain text beside the images
    # NanumGothic.ttf + NanumGothicBold.ttf for Korean (bold headings); "" = MuPDF's built-in.
    font_dir: str = "/usr/share/fonts/truetype/nanum"
    # Office documents (docx/xlsx/pptx, doc/xls/ppt, odt/ods/odp, rtf) drawn as pages through a
    # sandboxed LibreOffice kept warm in each worker; false: withheld as before.
    office_documents: bool = True
    # Seconds LibreOffice may take for one document before it is killed and replaced (the
    # document is withheld, "office_timeout"); a mail's documents together get twice this.
    # Twice this plus LibreOffice's start-up (at most 20 s) must stay under wall_seconds.
    office_wall_seconds: float = Field(default=10.0, gt=0, le=3600)
    # A mail that cannot be rendered: publish a "could not be displayed safely" notice (headers,
    # attachment list, reason) or keep it in spool/quarantine for an administrator.
    on_failure: Literal["not_displayable", "quarantine"] = "not_displayable"


class AuthSection(Section):
    """Sender authentication results shown in the notification (data, never a verdict here)."""

    # off: nothing checked; verify: SPF, DKIM and DMARC checked here (pyspf, dkimpy, DNS);
    # trust_mx: take the results from the Authentication-Results header of a trusted MX.
    mode: Literal["off", "verify", "trust_mx"] = "off"
    # verify mode: check SPF for the connecting address. Only right when this agent is the MX
    # (behind another MX the connecting address is that MX's): otherwise false, or trust_mx.
    check_spf: bool = True
    trusted_authserv_id: str | None = None  # authserv-id of the MX whose header we trust
    dns_timeout_s: float = Field(default=5.0, gt=0, le=60)

    @model_validator(mode="after")
    def _trusted_id(self) -> AuthSection:
        if self.mode == "trust_mx" and not self.trusted_authserv_id:
            raise ValueError("mode trust_mx needs trusted_authserv_id (the MX's authserv-id)")
        return self


class DeliverySection(Section):
    """Delivery of approved outbound mail that arrives over the reverse link."""

    smarthost: HostPort | None = None  # relay to deliver through; none: MX lookup
    # Mail with personal data crosses the internet only encrypted (PIPC notice art. 7):
    # STARTTLS with a verified certificate, or the mail waits.
    starttls: Literal["off", "opportunistic", "required"] = "required"
    # Recipient domains, or the smarthost's host name, where "required" becomes "opportunistic"
    # (each delivery in clear is an audit event detail and a warning in the log).
    tls_exceptions: tuple[str, ...] = ()
    # Delivering to MX hosts (no smarthost): honour each domain's MTA-STS policy (RFC 8461).
    mta_sts: bool = True
    tls_ca_file: Path | None = None  # CA bundle to verify the relay (default: system CAs)
    username: str | None = None  # AUTH at the smarthost (only after STARTTLS)
    password_file: Path | None = None  # file holding the password, mode 0600
    helo: str = "maildiode-outer.localdomain"
    connect_timeout_s: float = Field(default=SMTP_CLIENT_TIMEOUT_S, gt=0, le=600)
    attempts_per_pass: int = Field(default=3, ge=1, le=20)  # quick retries (tenacity) per pass
    retry_initial_s: float = Field(default=60.0, gt=0)  # first wait; doubles each time
    retry_max_s: float = Field(default=3600.0, gt=0)
    expire_s: float = Field(default=5 * 86400.0, gt=0)  # RFC 5321 §4.5.4.1: give up after 4-5 days
    poll_s: float = Field(default=1.0, gt=0, le=600)
    # `maildiode status` exits 1 once an outbound mail has waited this long (as the inner
    # agent's inject.alarm_after_s): a relay down for a quarter of an hour is worth a page.
    alarm_after_s: float = Field(default=DEFAULT_DELIVERY_ALARM_S, gt=0)

    _paths = field_validator("tls_ca_file", mode="before")(_resolve_optional)

    @field_validator("password_file", mode="before")
    @classmethod
    def _password(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        return check_private_key_file(resolve_path(value, info))  # a secret: mode 0600

    @model_validator(mode="after")
    def _auth_pair(self) -> DeliverySection:
        if (self.username is None) != (self.password_file is None):
            raise ValueError("username and password_file must be given together")
        if self.username is not None and self.smarthost is None:
            raise ValueError("username needs a smarthost")
        return self


# Three days: a held mail nobody decided on by then is stale for its reader, and the DMZ
# should not keep internet mail longer than the business needs it.
DEFAULT_HOLD_EXPIRY_S = 3 * 86400.0


class InboundSection(Section):
    """Receive filters: the rules come from inside (docs/policy.md); what the DMZ keeps."""

    # A held mail no decision reached by then is dropped, with a notice to its recipients.
    hold_expiry_s: float = Field(default=DEFAULT_HOLD_EXPIRY_S, ge=60, le=30 * 86400)
    # How often held mail is checked for expiry (and expiry notices are sent again).
    check_s: float = Field(default=30.0, gt=0, le=3600)


class ArchiveSection(Section):
    """A copy of each original, unchanged, to an internet-side archive mailbox (issue 17.6)."""

    smtp: HostPort | None = None  # the archive's SMTP server; none: no copies are kept
    mailbox: str | None = None  # RCPT TO at the archive; none: the original recipients
    helo: str = "maildiode-outer.localdomain"
    starttls: Literal["off", "opportunistic", "required"] = "opportunistic"
    tls_ca_file: Path | None = None  # CA bundle to verify the archive server (default: system)
    connect_timeout_s: float = Field(default=SMTP_CLIENT_TIMEOUT_S, gt=0, le=600)
    retry_initial_s: float = Field(default=60.0, gt=0)  # first wait after a failure; doubles
    retry_max_s: float = Field(default=3600.0, gt=0)
    expire_s: float = Field(default=5 * 86400.0, gt=0)  # then the copy is kept in archive/failed
    poll_s: float = Field(default=2.0, gt=0, le=600)

    _paths = field_validator("tls_ca_file", mode="before")(_resolve_optional)

    @field_validator("mailbox")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and (value.count("@") != 1 or any(c.isspace() for c in value)):
            raise ValueError(f"{value!r} is not a mail address (user@domain)")
        return value


class ReportSection(Section):
    """The status report sent inward on the link (docs/protocol.md §16.4)."""

    # Seconds between reports; None: link.heartbeat_s (the inner side calls a report stale
    # after three intervals, as a silent link is noticed after a few missed heartbeats).
    interval_s: int | None = Field(default=None, ge=1, le=86_400)


class OuterLinkSection(LinkSection):
    """The shared ``[link]`` plus which outer agent this is (several outer agents, D74)."""

    # "inbound": the one outer agent of a pair; another id: one of several, reading ID-out.
    stream: StreamId = PAIR_INBOUND


class OuterConfig(Section):
    """The whole ``outer.toml``."""

    smtp: SmtpSection
    spool: SpoolSection = SpoolSection()
    render: RenderSection = RenderSection()
    auth: AuthSection = AuthSection()
    delivery: DeliverySection = DeliverySection()
    link: OuterLinkSection
    keys: KeysSection
    log: LogSection = LogSection()
    audit: AuditSection = AuditSection()
    retention: RetentionSection = RetentionSection()
    report: ReportSection = ReportSection()
    inbound: InboundSection = InboundSection()
    archive: ArchiveSection = ArchiveSection()

    @property
    def report_interval_s(self) -> int:
        """The report interval in force: ``[report] interval_s``, else the heartbeat's."""
        if self.report.interval_s is not None:
            return self.report.interval_s
        return max(1, math.ceil(self.link.heartbeat_s))

    @model_validator(mode="after")
    def _encryption(self) -> OuterConfig:
        if self.link.encrypt and self.keys.encrypt_to is None:
            raise ValueError("link.encrypt needs keys.encrypt_to (the inner agent's X25519 key)")
        return self

    @model_validator(mode="after")
    def _link_dirs(self) -> OuterConfig:
        if self.link.transport == "folder" and (self.link.send_dir is None):
            raise ValueError("link.send_dir is required with the folder transport")
        if self.link.transport == "folder" and (self.link.recv_dir is None):
            raise ValueError("link.recv_dir is required with the folder transport")
        return self


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def example_toml(
    *,
    domains: list[str] | tuple[str, ...],
    smtp_listen: str = "127.0.0.1:2525",
    relay: str | None = None,
    send_dir: str = "link/in/send",
    recv_dir: str = "link/out/recv",
    spool_dir: str = "outer/spool",
    signing_key: str = "keys/outer.key",
    peer_key: str = "keys/inner.pub",
    at_rest_key: str | None = None,
    decrypt_key: str | None = None,
    encrypt_to: str | None = None,
    audit_path: str = "outer/audit.db",
    log_file: str | None = None,
) -> str:
    """A complete ``outer.toml`` with every key present and commented.

    Paths are written as given; relative ones are read relative to the file's folder.
    """
    domain_list = ", ".join(_toml_string(d) for d in domains)
    smarthost = (
        f"smarthost = {_toml_string(relay)}" if relay else '# smarthost = "relay.example:25"'
    )
    log_line = f"file = {_toml_string(log_file)}" if log_file else '# file = "outer.log"'
    return _EXAMPLE.format(
        domains=domain_list,
        listen=_toml_string(smtp_listen),
        smarthost=smarthost,
        send_dir=_toml_string(send_dir),
        recv_dir=_toml_string(recv_dir),
        spool_dir=_toml_string(spool_dir),
        signing_key=_toml_string(signing_key),
        peer_key=_toml_string(peer_key),
        link_encrypt="true" if decrypt_key is not None and encrypt_to is not None else "false",
        key_lines=example_key_lines(
            at_rest_key or "keys/outer-at-rest.keys",
            at_rest_key is not None,
            decrypt_key or "keys/outer-enc.key",
            encrypt_to or "keys/inner-enc.pub",
            encrypted=decrypt_key is not None and encrypt_to is not None,
        ),
        audit_path=_toml_string(audit_path),
        log_line=log_line,
    )


_EXAMPLE = """\
# maildiode outer agent (internet side). Every key is described in docs/configuration.md.

[smtp]
listen = {listen}                # where the MX (or the internet) delivers to us
hostname = "maildiode-outer.localdomain"  # greeting name, and the sender of bounce notices
domains = [{domains}]             # RCPT accepted only for these: never an open relay
max_message_bytes = 26214400     # advertised as SIZE; larger mail gets 552
max_recipients = 100             # RCPTs per message; more get 452 4.5.3
max_sessions = 200               # concurrent sessions overall; more get 421
max_sessions_per_ip = 50         # concurrent sessions per client address; more get 421
timeout_s = 300                  # idle timeout inside a mail transaction (after MAIL)
idle_timeout_s = 30              # idle timeout before MAIL and between mails
stress_timeout_s = 10            # idle timeout for every session under stress
stress_fraction = 0.75           # under stress from this share of max_sessions on
processes = 2                    # SMTP acceptor processes sharing the port (one per core)
# tls_cert = "tls/outer.crt"     # PEM chain; with tls_key enables STARTTLS
# tls_key = "tls/outer.key"
require_tls = false              # refuse MAIL before STARTTLS (needs tls_cert/tls_key)

[spool]
dir = {spool_dir}                # received -> rendered -> published; outbound queue
min_free_bytes = 536870912       # below this much free disk, intake answers 452 4.3.1

[render]
backend = "pymupdf"              # or "chromium" (high fidelity, slower)
processes = 2                    # worker processes
cpu_seconds = 30                 # CPU limit per mail
memory_mb = 1024                 # address-space limit per worker
wall_seconds = 60                # wall-clock limit per mail
pin_workers = true               # each worker on a CPU of its own (PyMuPDF backend)
text_layer = true                # send extracted plain text beside the images
font_dir = "/usr/share/fonts/truetype/nanum"   # NanumGothic (+Bold) for Korean; "" = built-in
office_documents = true          # Office/ODF/RTF attachments as pages (sandboxed LibreOffice)
office_wall_seconds = 10         # per document; a hang is killed, the document withheld
on_failure = "not_displayable"   # or "quarantine": keep unrenderable mail in spool/quarantine

[auth]
mode = "off"                     # "verify" (SPF/DKIM/DMARC here) or "trust_mx" (MX's header)
check_spf = true                 # verify mode: SPF for the connecting address (we are the MX)
# trusted_authserv_id = "mx.corp.example"
dns_timeout_s = 5

[delivery]
{smarthost}
starttls = "required"            # verified TLS or the mail waits; "opportunistic" or "off"
tls_exceptions = []              # recipient domains / the smarthost's name allowed in clear
mta_sts = true                   # MX delivery: honour a domain's MTA-STS policy (RFC 8461)
# tls_ca_file = "tls/relay-ca.pem"
# username = "maildiode"         # AUTH at the smarthost, only over TLS
# password_file = "keys/relay.password"
helo = "maildiode-outer.localdomain"
connect_timeout_s = 30
attempts_per_pass = 3            # quick retries per delivery pass
retry_initial_s = 60             # then wait this long, doubling up to retry_max_s
retry_max_s = 3600
expire_s = 432000                # give up (bounce notice to the sender) after 5 days
poll_s = 1
alarm_after_s = 900              # `maildiode status` exits 1 when a mail waits longer

[link]
transport = "folder"
send_dir = {send_dir}            # inbound chunks go here (linkage pickup)
recv_dir = {recv_dir}            # approved outbound chunks arrive here (linkage delivery)
extension = ".mdc"
armor = false
chunk_size = 1048576
encrypt = {link_encrypt}
heartbeat_s = 30
gap_wait_s = 300
silence_alarm_s = 180
resend_window_s = 604800
rescan_s = 2
settle_s = 1
max_file_bytes = 20971520
quarantine_max_bytes = 2147483648 # refused files kept as evidence: at most this many bytes
quarantine_max_files = 10000      # ... and files (reason files included, each at least 4 KiB)
quarantine_sample = 100           # kept per refusal reason and interval; the rest are deleted
refusal_log_interval_s = 60       # a flood of refusals is logged once per reason this often
# stream = "inbound"              # one of several outer agents: its id (inner [[streams.outer]])

[keys]
signing_key = {signing_key}      # our Ed25519 private key, mode 0600
peer_keys = [{peer_key}]         # the inner agent's public key(s)
{key_lines}

[log]
level = "info"
format = "text"
{log_line}

[audit]
path = {audit_path}
retention_days = 1825
access_retention_days = 1825      # access records (floor 730: PIPC notice art. 8)
rights_retention_days = 1825      # records of access rights (floor 1095: art. 5)

# Stores beside the audit log: days each is kept (1 ... 1825), pruned daily with the log.
[retention]
quarantine_days = 90              # quarantined files (and their released/ copies)
link_quarantine_days = 30         # chunk files the link refused

[report]
# interval_s = 30                # status report inward this often (default: link.heartbeat_s)

[inbound]
# The receive filters' rules come from inside (the inner agent's [inbound] rules_file).
hold_expiry_s = 259200           # a held mail undecided after 3 days is dropped (recipients told)
check_s = 30                     # held mail is checked for expiry this often

[archive]
# smtp = "archive.corp.example:25"  # a copy of each original, unchanged, goes here by SMTP
# mailbox = "archive@corp.example"  # RCPT TO at the archive (default: the original recipients)
helo = "maildiode-outer.localdomain"
starttls = "opportunistic"       # "off", "opportunistic" or "required"
# tls_ca_file = "tls/archive-ca.pem"
connect_timeout_s = 30
retry_initial_s = 60             # after a failure wait this long, doubling up to retry_max_s
retry_max_s = 3600
expire_s = 432000                # then the copy is kept in spool/archive/failed (5 days)
poll_s = 2
"""
