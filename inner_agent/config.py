"""The inner agent's configuration (``inner.toml``), loaded once into frozen typed objects.

Every key is documented in ``docs/configuration.md`` under "inner.toml". ``example_toml``
writes a complete, commented file; ``maildiode init`` calls it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from agentkit.settings import (
    SMTP_CLIENT_TIMEOUT_S,
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
from agentkit.storeretention import STORE_CEILING_DAYS, STORE_FLOOR_DAYS
from inner_agent.inbound.config import InboundSection
from inner_agent.inbound.config import example_toml_section as inbound_example
from inner_agent.notify import DEFAULT_MAX_NOTIFICATION_BYTES
from inner_agent.outbound.config import OutboundSection, example_toml_section
from inner_agent.outbound.ldap_config import DirectorySection
from inner_agent.outbound.ldap_config import example_toml_section as ldap_example
from inner_agent.streams_config import StreamsSection
from inner_agent.web.config import ConsoleSection
from mailsafe.payload import MAX_IMAGE_PIXELS

__all__ = [
    "ImagesSection",
    "InjectSection",
    "InnerConfig",
    "InnerRetentionSection",
    "LeaseSection",
    "NotifySection",
    "StateSection",
    "example_toml",
]

# Parallel SMTP sessions to the internal server: enough to keep up with rendering on 2 cores.
DEFAULT_INJECT_WORKERS = 4


def _resolve_optional(value: Any, info: ValidationInfo) -> Any:
    return None if value is None else resolve_path(value, info)


def _check_address(value: str) -> str:
    local, at, domain = value.partition("@")
    if not (at and local and "." in domain) or any(c.isspace() or ord(c) < 32 for c in value):
        raise ValueError(f"{value!r} is not a mail address (user@domain)")
    return value


class StateSection(Section):
    """Where the inner agent keeps its state: protocol receiver, injection queue, quarantine."""

    dir: Path = Path("inner")

    _paths = field_validator("dir", mode="before")(resolve_path)


class InjectSection(Section):
    """The internal mail server notifications are injected into (SMTP)."""

    server: HostPort = "127.0.0.1:2526"
    helo: str = "maildiode-inner.localdomain"
    starttls: Literal["off", "opportunistic", "required"] = "off"
    tls_ca_file: Path | None = None  # CA bundle to verify the server (default: system CAs)
    tls_verify: bool = True  # check the server certificate and name when STARTTLS is used
    username: str | None = None  # AUTH after STARTTLS (or on a trusted loopback with starttls off)
    password_file: Path | None = None  # file holding the password, mode 0600
    connect_timeout_s: float = Field(default=SMTP_CLIENT_TIMEOUT_S, gt=0, le=600)
    workers: int = Field(default=DEFAULT_INJECT_WORKERS, ge=1, le=64)
    # The link thread sends a fresh notification itself while nothing waits in the queue (D16).
    direct: bool = True
    attempts_per_pass: int = Field(default=3, ge=1, le=20)  # quick retries (tenacity) per pass
    retry_initial_s: float = Field(default=10.0, gt=0)  # then wait; doubles each time
    retry_max_s: float = Field(default=600.0, gt=0)
    poll_s: float = Field(default=1.0, gt=0, le=600)
    # `maildiode status` exits 1 once a notification has waited this long for the server.
    alarm_after_s: float = Field(default=900.0, gt=0)

    _paths = field_validator("tls_ca_file", "password_file", mode="before")(_resolve_optional)

    @model_validator(mode="after")
    def _auth_pair(self) -> InjectSection:
        if (self.username is None) != (self.password_file is None):
            raise ValueError("username and password_file must be given together")
        if self.password_file is not None:
            check_private_key_file(self.password_file)  # exists, regular, mode 0600
        if self.retry_initial_s > self.retry_max_s:
            raise ValueError("retry_initial_s must not exceed retry_max_s")
        return self


class NotifySection(Section):
    """The notification mail built for each external mail."""

    language: Literal["ko", "en"] = "ko"
    subject_prefix: str = Field(default="[외부메일]", max_length=64)
    from_address: str = "maildiode@corp.example"  # envelope sender (bounces come back here)
    our_domains: tuple[_Domain, ...] = ()  # a From claiming one of these gets a spoofing warning
    max_message_bytes: int = Field(default=DEFAULT_MAX_NOTIFICATION_BYTES, ge=64 << 10)
    carry_text: bool = True  # put the extracted text in the text/plain part

    @field_validator("from_address")
    @classmethod
    def _from(cls, value: str) -> str:
        return _check_address(value)

    @field_validator("subject_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError("subject_prefix must not contain control characters")
        return value


class ImagesSection(Section):
    """Defence in depth: every image from the outer side is decoded again here."""

    # Default: the cap the renderer and the package keep (mailsafe.payload.MAX_IMAGE_PIXELS).
    max_pixels: int = Field(default=MAX_IMAGE_PIXELS, ge=10_000, le=200_000_000)
    # always: decode and write fresh PNG/JPEG (drops anything hidden in the file's other bytes);
    # never: decode to check, then pass the checked bytes on unchanged (cheaper).
    reencode: Literal["always", "never"] = "always"


class InnerRetentionSection(RetentionSection):
    """The inner agent's stores besides the quarantines (agentkit.storeretention): finished
    outbound mail (its row: envelope, masked subject and findings, decision) and the approval
    state of decided requests (the request and its preview, the mail's picture) and of decided
    inbound holds."""

    finished_outbound_days: int = Field(default=365, ge=STORE_FLOOR_DAYS, le=STORE_CEILING_DAYS)
    approval_days: int = Field(default=90, ge=STORE_FLOOR_DAYS, le=STORE_CEILING_DAYS)


class LeaseSection(Section):
    """The fencing lease on the state folder (agentkit.lease): one inner agent injects at a
    time; a standby (``maildiode inner --standby``) takes over when the holder's lease expires."""

    holder: str = Field(default="", max_length=128)  # this host's name in the lease; "" = hostname
    # A dead holder's lease runs out after this long; then a standby takes over. The holder
    # renews every quarter of it and stops writing at three quarters without a renewal.
    ttl_s: float = Field(default=20.0, ge=1.0, le=600.0)

    @field_validator("holder")
    @classmethod
    def _holder(cls, value: str) -> str:
        if any(c.isspace() or ord(c) < 32 for c in value):
            raise ValueError("holder must be one word without spaces or control characters")
        return value


class InnerConfig(Section):
    """The whole ``inner.toml``."""

    link: LinkSection
    keys: KeysSection
    state: StateSection = StateSection()
    lease: LeaseSection = LeaseSection()
    inject: InjectSection = InjectSection()
    notify: NotifySection = NotifySection()
    images: ImagesSection = ImagesSection()
    postmaster: str = "postmaster@corp.example"  # gets a report for every refused notification
    log: LogSection = LogSection()
    audit: AuditSection = AuditSection()
    retention: InnerRetentionSection = InnerRetentionSection()
    console: ConsoleSection = ConsoleSection()
    outbound: OutboundSection | None = None  # absent: the outbound path is off
    directory: DirectorySection = DirectorySection()  # [directory.ldap]: the LDAP sync
    inbound: InboundSection | None = None  # absent: no receive filters (needs [outbound])
    streams: StreamsSection | None = None  # absent: one outer agent (the pair's stream only)

    @field_validator("postmaster")
    @classmethod
    def _postmaster(cls, value: str) -> str:
        return _check_address(value)

    @model_validator(mode="after")
    def _inbound_needs_outbound(self) -> InnerConfig:
        if self.inbound is not None and self.outbound is None:
            raise ValueError("[inbound] needs [outbound]: the directory (who approves, who is in "
                             "a department) and the out link the policy travels on")  # fmt: skip
        return self

    @model_validator(mode="after")
    def _sync_needs_outbound(self) -> InnerConfig:
        if self.directory.ldap is not None and self.outbound is None:
            raise ValueError("[directory.ldap] needs [outbound]: the directory it fills is "
                             "outbound.directory_db")  # fmt: skip
        return self

    @model_validator(mode="after")
    def _link_dirs(self) -> InnerConfig:
        if self.link.transport == "folder" and self.link.recv_dir is None:
            raise ValueError("link.recv_dir is required with the folder transport")
        if self.link.transport == "tcp" and self.link.tcp_listen is None:
            raise ValueError("link.tcp_listen is required with the tcp transport")
        return self


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def example_toml(
    *,
    domains: list[str] | tuple[str, ...],
    internal_smtp: str = "127.0.0.1:2526",
    outbound_listen: str | None = "127.0.0.1:2527",
    web_listen: str = "127.0.0.1:8025",
    recv_dir: str = "link/in/recv",
    send_dir: str = "link/out/send",
    state_dir: str = "inner",
    signing_key: str = "keys/inner.key",
    peer_key: str = "keys/outer.pub",
    at_rest_key: str | None = None,
    decrypt_key: str | None = None,
    encrypt_to: str | None = None,
    audit_path: str = "inner/audit.db",
    log_file: str | None = None,
) -> str:
    """A complete ``inner.toml`` with every key present and commented.

    ``outbound_listen=None`` leaves the outbound path off (no ``[outbound]`` section).
    """
    first = domains[0] if domains else "corp.example"
    text = _EXAMPLE.format(
        domains=", ".join(_toml_string(d) for d in domains),
        max_pixels=MAX_IMAGE_PIXELS,
        server=_toml_string(internal_smtp),
        from_address=_toml_string(f"maildiode@{first}"),
        postmaster=_toml_string(f"postmaster@{first}"),
        recv_dir=_toml_string(recv_dir),
        send_dir=_toml_string(send_dir),
        state_dir=_toml_string(state_dir),
        signing_key=_toml_string(signing_key),
        peer_key=_toml_string(peer_key),
        link_encrypt="true" if decrypt_key is not None and encrypt_to is not None else "false",
        key_lines=example_key_lines(
            at_rest_key or "keys/inner-at-rest.keys",
            at_rest_key is not None,
            decrypt_key or "keys/inner-enc.key",
            encrypt_to or "keys/outer-enc.pub",
            encrypted=decrypt_key is not None and encrypt_to is not None,
        ),
        audit_path=_toml_string(audit_path),
        log_line=f"file = {_toml_string(log_file)}" if log_file else '# file = "inner.log"',
    )
    if outbound_listen is not None:
        text += "\n" + example_toml_section(
            listen=outbound_listen,
            web_listen=web_listen,
            internal_smtp=internal_smtp,
            from_address=f"maildiode-approval@{first}",
            spool_dir=f"{state_dir}/outbound",
            directory_db=f"{state_dir}/directory.db",
        )
        text += "\n" + inbound_example()
        text += "\n" + ldap_example()
    return text


_EXAMPLE = """\
# maildiode inner agent (intranet side). Every key is described in docs/configuration.md.

postmaster = {postmaster}   # gets a report when the internal server refuses a notification

[state]
dir = {state_dir}                 # receiver state, injection queue, quarantine

# One inner agent on the state at a time; a standby takes over (docs/operations.md).
[lease]
holder = ""                       # this host's name in the lease; "" = its host name
ttl_s = 20                        # a dead holder's lease lasts this long; then a standby takes it

[inject]
server = {server}                 # the internal mail server (SMTP)
helo = "maildiode-inner.localdomain"
starttls = "off"                  # "off", "opportunistic" or "required"
# tls_ca_file = "tls/internal-ca.pem"
tls_verify = true
# username = "maildiode"          # AUTH at the internal server
# password_file = "keys/internal.password"   # mode 0600
connect_timeout_s = 30
workers = 4                       # parallel SMTP sessions
attempts_per_pass = 3             # quick retries on 4xx / connection errors
retry_initial_s = 10              # then wait this long, doubling up to retry_max_s; never given up
retry_max_s = 600
poll_s = 1
alarm_after_s = 900               # `maildiode status` exits 1 when a notification waits longer

[notify]
language = "ko"                   # "ko" or "en"
subject_prefix = "[외부메일]"
from_address = {from_address}     # envelope sender of notifications
our_domains = [{domains}]         # a From claiming these gets a spoofing warning
max_message_bytes = 10485760      # notifications are scaled down or split to stay under this
carry_text = true                 # extracted text in the text/plain part

[images]
max_pixels = {max_pixels}             # an image claiming more is refused (quarantined)
reencode = "always"               # or "never": check by decoding, pass the bytes on

[link]
transport = "folder"
recv_dir = {recv_dir}             # inbound chunks arrive here (linkage delivery)
send_dir = {send_dir}             # outbound chunks go here (linkage pickup)
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

[keys]
signing_key = {signing_key}       # our Ed25519 private key, mode 0600
peer_keys = [{peer_key}]          # the outer agent's public key(s)
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
finished_outbound_days = 365      # finished outbound mail's record (sent, blocked, rejected, ...)
approval_days = 90                # decided approval requests, their previews, decided inbound holds

# Several outer agents (docs/configuration.md "[streams]"; decisions D74, D75). The pair's
# link above stays the first stream; each [[streams.outer]] adds one outer agent with its own
# folder pair and key (its outer.toml sets link.stream to the same id).
# [streams]
# dedup_window_s = 604800           # a mail arriving again on another stream within this: dropped
# takeover_after_s = 300            # an outer agent silent this long: its outbound share moves
# [[streams.outer]]
# id = "mx2"                        # 1-10 of [a-z0-9-]; its outbound stream is "mx2-out"
# recv_dir = "link/mx2/in/recv"     # or tcp_listen = "HOST:PORT"
# send_dir = "link/mx2/out/send"    # or tcp_send = "HOST:PORT"
# peer_keys = ["keys/mx2.pub"]      # its Ed25519 public key(s)
# encrypt_to = "keys/mx2-enc.pub"   # its X25519 key (absent: keys.encrypt_to)

[console]                         # the web console on the [outbound.web] listener
timezone = "Asia/Seoul"           # times on its pages, in the API and the access review
language = "ko"                   # its pages and downloads: "ko" or "en"
"""
