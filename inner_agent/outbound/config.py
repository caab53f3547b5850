"""``[outbound]`` of ``inner.toml``: the outbound intake, policy, directory, approval web and
notices. Every key is documented in docs/configuration.md under "inner.toml [outbound]".

The inner agent's ``InnerConfig`` holds ``outbound: OutboundSection | None``; absent means the
outbound path is off.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from agentkit.settings import (
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_MAX_RECIPIENTS,
    DEFAULT_MIN_FREE_BYTES,
    MAX_MESSAGE_BYTES_CEILING,
    MAX_RECIPIENTS_CEILING,
    HostPort,
    Network,
    Section,
    resolve_path,
)
from inner_agent.web.config import SignInSection

__all__ = [
    "ApprovalSection",
    "NoticeSection",
    "OutboundSection",
    "WebSection",
    "example_toml_section",
]

# Four hours: a department head who has not answered by mid-day gets one reminder.
DEFAULT_REMIND_AFTER_S = 4 * 3600.0
# Two days: a held mail older than that is stale for the business that sent it.
DEFAULT_EXPIRE_AFTER_S = 2 * 86400.0
# Eight hours: one working day signed in, then sign in again.
DEFAULT_SESSION_TTL_S = 8 * 3600.0
# Twenty minutes without a request ends a session (a screen left open at lunch).
DEFAULT_SESSION_IDLE_S = 20 * 60.0
# Ten steps of nice: when the cores are short, the kernel gives the web process about a tenth
# of what it gives the agent's threads (CFS weights 110 vs 1024), so a flood of web clients
# costs the mail path little; on idle cores the web runs at full speed.
DEFAULT_WEB_NICE = 10


def _resolve(value: Any, info: ValidationInfo) -> Any:
    return resolve_path(value, info)


def _resolve_optional(value: Any, info: ValidationInfo) -> Any:
    return None if value is None else resolve_path(value, info)


def _check_address(value: str) -> str:
    local, at, domain = value.partition("@")
    if not (at and local and "." in domain) or any(c.isspace() for c in value):
        raise ValueError(f"{value!r} is not a mail address (user@domain)")
    return value


class WebSection(Section):
    """The inner agent's web listener: the approval pages, the console and its API."""

    listen: HostPort = "127.0.0.1:8025"
    public_url: str = "http://127.0.0.1:8025"  # base of the links in approval request mails
    secret_key_file: Path = Path("keys/web.secret")  # signs tokens and CSRF; made 0600 if absent
    session_ttl_s: float = Field(default=DEFAULT_SESSION_TTL_S, gt=0, le=7 * 86400)
    session_idle_s: float = Field(default=DEFAULT_SESSION_IDLE_S, gt=0, le=7 * 86400)
    # Connections from these may say who the client is (X-Forwarded-For): a TLS proxy in front.
    trusted_proxies: tuple[Network, ...] = ("127.0.0.1",)
    # Only clients in these networks reach the listener at all (pages, sign-in, API); empty: any.
    allowed_clients: tuple[Network, ...] = ()
    # The listener runs in a child process this much lower in CPU priority than the agent
    # (added to the agent's nice value): web clients never get the cores before the mail path.
    nice: int = Field(default=DEFAULT_WEB_NICE, ge=0, le=19)
    signin: SignInSection = SignInSection()
    # TLS at the listener itself (PEM files); with them public_url must be https. Without
    # them, put a TLS proxy in front (trusted_proxies) and give its https public_url.
    tls_cert: Path | None = None
    tls_key: Path | None = None

    _paths = field_validator("secret_key_file", mode="before")(_resolve)
    _tls_paths = field_validator("tls_cert", "tls_key", mode="before")(_resolve_optional)

    @model_validator(mode="after")
    def _tls_pair(self) -> WebSection:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be given together")
        if self.tls_cert is not None and not self.public_url.startswith("https://"):
            raise ValueError("with tls_cert the listener speaks https: make public_url https://")
        return self

    @field_validator("public_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")) or any(c.isspace() for c in value):
            raise ValueError(f"{value!r} must be an http:// or https:// URL")
        return value.rstrip("/")


class ApprovalSection(Section):
    """When approvers are reminded, and what happens to requests nobody answers."""

    remind_after_s: float = Field(default=DEFAULT_REMIND_AFTER_S, gt=0)
    expire_after_s: float = Field(default=DEFAULT_EXPIRE_AFTER_S, gt=0)
    on_expiry: Literal["reject", "escalate"] = "reject"
    # Asked when the department (and those above) has no head or delegate, or, for a mail whose
    # envelope sender and From: disagree, when the directory has no security officer.
    fallback_approver: str | None = None
    check_interval_s: float = Field(default=30.0, gt=0, le=3600)

    @field_validator("fallback_approver")
    @classmethod
    def _fallback(cls, value: str | None) -> str | None:
        return None if value is None else _check_address(value).lower()

    @model_validator(mode="after")
    def _order(self) -> ApprovalSection:
        if self.remind_after_s >= self.expire_after_s:
            raise ValueError("remind_after_s must be shorter than expire_after_s")
        return self


class NoticeSection(Section):
    """Mail the outbound path sends inside: approval requests, reminders, decisions."""

    from_address: str = "maildiode-approval@corp.example"  # sender of approval/notice mails
    internal_smtp: HostPort = "127.0.0.1:2526"  # the internal mail server they go through
    retry_s: float = Field(default=60.0, gt=0, le=3600)  # wait before retrying a refused notice

    @field_validator("from_address")
    @classmethod
    def _from(cls, value: str) -> str:
        return _check_address(value)


# Tesseract's language names ("kor", "chi_sim", "script/Hangul"), joined by "+".
_OCR_LANGUAGES = re.compile(r"[A-Za-z_/]+(?:\+[A-Za-z_/]+)*")


class OutboundSection(Section):
    """The outbound path: intake, policy, directory, approval, notices."""

    listen: HostPort = "127.0.0.1:2527"  # the internal server relays external mail to this
    hostname: str = "maildiode-inner.localdomain"
    allowed_networks: tuple[Network, ...] = Field(default=("127.0.0.0/8",), min_length=1)
    # The internal server enforces its own (lower) limit before relaying to us.
    max_message_bytes: int = Field(
        default=DEFAULT_MAX_MESSAGE_BYTES, ge=1024, le=MAX_MESSAGE_BYTES_CEILING
    )
    max_recipients: int = Field(default=DEFAULT_MAX_RECIPIENTS, ge=1, le=MAX_RECIPIENTS_CEILING)
    spool_dir: Path = Path("inner/outbound")
    min_free_bytes: int = Field(default=DEFAULT_MIN_FREE_BYTES, ge=0)
    rules_file: Path | None = None  # none: built-in rules (personal data needs approval)
    # Reading the text in pictures: "auto" (on when Tesseract reads Korean), true, false, or
    # Tesseract language names ("kor+eng+jpn").
    ocr: bool | str = "auto"
    directory_db: Path = Path("inner/directory.db")
    # A mismatch between the envelope sender and From: that shows two people (or an address of
    # ours nobody has): "hold" holds it for a security officer even when the rules would let
    # it go; "route" only sends mail the rules hold to an officer (docs/approval.md).
    sender_mismatch: Literal["hold", "route"] = "hold"
    poll_s: float = Field(default=1.0, gt=0, le=60)
    web: WebSection = WebSection()
    approval: ApprovalSection = ApprovalSection()
    notice: NoticeSection = NoticeSection()

    _paths = field_validator("spool_dir", "directory_db", mode="before")(_resolve)
    _optional = field_validator("rules_file", mode="before")(_resolve_optional)

    @field_validator("ocr")
    @classmethod
    def _ocr(cls, value: bool | str) -> bool | str:
        if isinstance(value, str) and value != "auto" and not _OCR_LANGUAGES.fullmatch(value):
            raise ValueError('must be "auto", true, false or languages like "kor+eng"')
        return value

    @field_validator("rules_file")
    @classmethod
    def _rules(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"rules file {value} does not exist")
        return value


def example_toml_section(
    *,
    listen: str = "127.0.0.1:2527",
    web_listen: str = "127.0.0.1:8025",
    internal_smtp: str = "127.0.0.1:2526",
    from_address: str = "maildiode-approval@corp.example",
    spool_dir: str = "inner/outbound",
    directory_db: str = "inner/directory.db",
    secret_key_file: str = "keys/web.secret",  # noqa: S107 - a file name, not a secret
    signin_db: str = "inner/signin.db",
) -> str:
    """The ``[outbound]`` part of an example ``inner.toml``, every key present and commented."""
    return _EXAMPLE.format(
        listen=listen,
        web_listen=web_listen,
        internal_smtp=internal_smtp,
        from_address=from_address,
        spool_dir=spool_dir,
        directory_db=directory_db,
        secret_key_file=secret_key_file,
        signin_db=signin_db,
    )


_EXAMPLE = """\
[outbound]
listen = "{listen}"               # the internal server relays mail for external recipients here
hostname = "maildiode-inner.localdomain"
allowed_networks = ["127.0.0.0/8"]   # only these clients may relay (others get 554)
max_message_bytes = 26214400
max_recipients = 100
spool_dir = "{spool_dir}"          # accepted mail (fsynced before 250) and its state database
min_free_bytes = 536870912         # below this much free disk, intake answers 452 4.3.1
# rules_file = "rules.toml"        # none: built-in rules (personal data needs approval)
ocr = "auto"                       # text in pictures: on when Tesseract reads Korean; true insists
directory_db = "{directory_db}"    # filled by: maildiode directory import HR.csv -c inner.toml
sender_mismatch = "hold"           # envelope and From: show two people: held for a security
                                   # officer; "route": only what the rules hold goes to one
poll_s = 1

[outbound.web]
listen = "{web_listen}"
public_url = "http://{web_listen}"   # base of the links in approval request mails
# tls_cert = "keys/web.crt"       # https at the listener (with tls_key; public_url https://);
# tls_key = "keys/web.key"        # https also sends HSTS. `maildiode init --web-tls` makes a pair
secret_key_file = "{secret_key_file}"  # made (0600) at first start if absent
session_ttl_s = 28800             # a sign-in lasts at most this long
session_idle_s = 1200             # and ends after this long without a request
trusted_proxies = ["127.0.0.1"]   # may say who the client is (X-Forwarded-For)
allowed_clients = []              # only these networks may connect (empty: any), e.g.
                                  # ["10.1.0.0/16"]; others get 403 before anything else
nice = 10                         # the listener's own process runs this much lower in CPU
                                  # priority than the agent (0-19)

[outbound.web.signin]
db = "{signin_db}"       # lockouts and sessions
hash_workers = 2                  # password checks at once (argon2, 64 MiB each)
hash_queue = 8                    # waiting for a worker; more get 503 + Retry-After
per_client_per_minute = 10        # sign-ins per client address (after a burst of
per_client_burst = 10             # this many); more get 429 + Retry-After
lock_after = 5                    # wrong passwords (account + client) before a lock
lock_first_s = 60                 # the first lock; each later failure doubles it
lock_max_s = 3600                 # up to this

[outbound.approval]
remind_after_s = 14400            # remind the approver after 4 hours
expire_after_s = 172800           # after 2 days: on_expiry
on_expiry = "reject"              # or "escalate" (to the parent department's head)
# fallback_approver = "security@corp.example"   # when no head, delegate or security officer
check_interval_s = 30

[outbound.notice]
from_address = "{from_address}"
internal_smtp = "{internal_smtp}"  # approval requests and decisions go through this server
retry_s = 60
"""
