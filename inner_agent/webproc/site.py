"""The web listener's site: its stores opened from a ``WebSpec`` (in the web process), and
the one assembly of its app — the sign-in, the page sets through ``create_app``, the API —
used by the web process and by an agent whose audit log has no file (a test's double).

A page set added to the listener is added in ``site_app``; the stores it needs are opened
in ``open_site`` (SQLite in WAL mode, safe beside the agent's own connections: docs/
architecture.md "The inner agent's processes").
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette

from agentkit.access import AccessLog
from agentkit.audit import AuditLog
from agentkit.leasekeeper import LeaseWatch
from inner_agent.console.data import ConsoleData
from inner_agent.console.places import ConsolePlaces
from inner_agent.outbound.config import OutboundSection, WebSection
from inner_agent.outbound.desk import ApprovalDesk, approval_desk
from inner_agent.outbound.directory import Directory
from inner_agent.outbound.directory_health import health_recorder
from inner_agent.outbound.ldap_bind import directory_passwords
from inner_agent.outbound.ports import Audit, Stores
from inner_agent.outbound.spool import Spool
from inner_agent.outbound.state import OutboundState
from inner_agent.outbound.tokens import TokenSigner, load_or_create_secret
from inner_agent.outbound.web import create_app, templates
from inner_agent.policyedit.files import (
    PolicyFiles,
    PolicySite,
    find_scope_names,
    membership_of,
    scope_names_of,
    sender_of,
)
from inner_agent.web.api_tokens import TokenStore
from inner_agent.web.app import Listener
from inner_agent.web.config import ConsoleSection
from inner_agent.web.gate import Gate
from inner_agent.web.pages import SignInPages
from inner_agent.web.roles import Role
from inner_agent.web.sessions import Sessions
from inner_agent.web.signin import Accounts, SignIn
from inner_agent.web.store import SignInStore
from inner_agent.web.throttle import ClientBuckets
from inner_agent.webproc.spec import WebSpec
from protocol.atrest import CLEAR, AtRestKeyring

__all__ = [
    "GRACEFUL_STOP_S",
    "WebSite",
    "build_listener",
    "build_signin",
    "open_site",
    "server_config",
    "site_app",
]

# Requests in flight when the listener is told to stop get this long to finish.
GRACEFUL_STOP_S = 5


@dataclass
class WebSite:
    """The app and what to close after it stops, in order."""

    app: Starlette
    web: WebSection
    closables: list[Any] = field(default_factory=list)

    def close(self) -> None:
        for item in self.closables:
            item.close()


def site_app(
    desk: ApprovalDesk,
    section: OutboundSection,
    *,
    console: ConsoleSection,
    directory: Directory,
    audit: Audit,
    audit_path: Path | None,
    secret: bytes,
    clock: Callable[[], float],
    places: ConsolePlaces | None = None,
    policy: PolicyFiles | None = None,
    on_policy_saved: Callable[[], None] = lambda: None,
) -> tuple[Starlette, Listener]:
    """The listener's app over these stores: access records go where every audit event
    goes (``audit``) and are read back from ``audit_path``; the console reads ``places``
    (its mail index followed by a thread from here on; closing the listener stops it)."""
    access = AccessLog(audit, audit_path, console.zone)
    data = ConsoleData(places or ConsolePlaces(audit_path=audit_path), zone=console.zone,
                       language=console.language, clock=clock)  # fmt: skip
    editor = (
        None
        if policy is None
        else PolicySite(
            policy,
            on_policy_saved,
            lambda document: membership_of(directory, document),
            lambda: scope_names_of(directory),
            lambda address, department: sender_of(directory, address, department),
            lambda kind, text, limit: find_scope_names(directory, kind, text, limit),
            directory.people_at,
        )
    )
    # The pages' writes pass the fence the desk's decisions pass (D80): the lease's watch in
    # the web process, the keeper's in the agent's own.
    listener = build_listener(section, console, directory, audit, access, secret=secret,
                              clock=clock, on_csrf_refusal=desk.note_csrf_refusal,
                              data=data, policy=editor, fence=desk.fence)  # fmt: skip
    data.start()
    return create_app(desk, listener), listener


def build_signin(
    web: WebSection, accounts: Accounts, secret: bytes, audit: Audit, clock: Callable[[], float]
) -> SignIn:
    """The web listener's sign-in from ``[outbound.web]`` (its ``signin`` sub-section)."""
    store = SignInStore(web.signin.db)
    sessions = Sessions(store, idle_s=web.session_idle_s, absolute_s=web.session_ttl_s,
                        clock=clock)  # fmt: skip
    return SignIn(accounts, store, secret, web.signin, sessions=sessions, audit=audit,
                  clock=clock)  # fmt: skip


def build_listener(
    section: OutboundSection,
    console: ConsoleSection,
    directory: Directory,
    audit: Audit,
    access: AccessLog,
    *,
    secret: bytes,
    clock: Callable[[], float],
    on_csrf_refusal: Callable[[str, str], None],
    data: ConsoleData | None = None,
    policy: PolicySite | None = None,
    fence: Callable[[], None] = lambda: None,
) -> Listener:
    """The web listener's parts from ``[outbound.web]`` and ``[console]``: sign-in (its
    spraying alerts to ``audit``), pages, the gate, tokens, ``access`` for the records,
    ``data``, what the console reads, and ``fence``, the lease every shared write checks."""
    web, accounts = section.web, directory.accounts
    signin = build_signin(web, accounts, secret, audit, clock)
    pages = SignInPages(
        signin, templates(), secret, secure_cookie=web.public_url.startswith("https://"),
        on_csrf_refusal=on_csrf_refusal, access=access,
        home=lambda user: "/requests" if Role.APPROVER in accounts.roles(user) else "/",
    )  # fmt: skip
    tokens = TokenStore(section.directory_db, clock=clock)
    failed_tokens = ClientBuckets(web.signin.per_client_per_minute, web.signin.per_client_burst)
    gate = Gate(pages, accounts, tokens, access, failed_tokens=failed_tokens, clock=clock)
    return Listener(signin, pages, gate, accounts, tokens, access, console.zone,
                    tuple(web.allowed_clients), data, policy=policy, fence=fence,
                    strict_transport=web.public_url.startswith("https://"))  # fmt: skip


def open_site(spec: WebSpec, *, on_decided: Callable[[], None]) -> WebSite:
    """The stores the web process opens itself, and the app over them; every store opened
    is closed again when a later one fails."""
    section = spec.outbound
    with contextlib.ExitStack() as opened:
        audit = AuditLog(spec.audit_path, agent="inner")
        opened.callback(audit.close)
        at_rest = CLEAR if spec.at_rest_key is None else AtRestKeyring.load(spec.at_rest_key)
        state = OutboundState(section.spool_dir / "state.db", at_rest=at_rest)
        opened.callback(state.close)
        signin_health = health_recorder(spec.state_dir, "sign-in")
        directory = Directory(section.directory_db, directory_password=directory_passwords(
            spec.ldap, on_state=signin_health))  # fmt: skip
        opened.callback(directory.close)
        secret = load_or_create_secret(section.web.secret_key_file)  # the agent made it
        stores = Stores(Spool(section.spool_dir, at_rest=at_rest), state, directory)
        desk = approval_desk(section, stores, audit, signer=TokenSigner(secret),
                             on_decided=on_decided, fence=_lease_fence(spec))  # fmt: skip
        app, listener = site_app(desk, section, console=spec.console, directory=directory,
                                 audit=audit, audit_path=spec.audit_path, secret=secret,
                                 clock=time.time, places=spec.console_places,
                                 policy=spec.policy_files, on_policy_saved=on_decided)  # fmt: skip
        opened.pop_all()
    # The listener first: its sign-in pool and checks read the directory.
    return WebSite(app, section.web, [listener, directory, state, audit])


def _lease_fence(spec: WebSpec) -> Callable[[], None]:
    """The agent's lease, checked by this process before it stores a decision: a web process
    left behind by an agent that lost the lease (frozen, or stopping) decides nothing."""
    if spec.lease is None or spec.state_dir is None:
        return lambda: None
    return LeaseWatch(spec.state_dir, spec.lease).fence


def server_config(app: Starlette, web: WebSection) -> uvicorn.Config:
    """uvicorn for the listener, wherever it runs: quiet, no lifespan, no server header,
    ``X-Forwarded-For`` only from ``trusted_proxies``."""
    return uvicorn.Config(
        app,
        log_level="warning",
        lifespan="off",
        access_log=False,
        server_header=False,
        proxy_headers=True,
        forwarded_allow_ips=list(web.trusted_proxies),
        timeout_graceful_shutdown=GRACEFUL_STOP_S,
        ssl_certfile=str(web.tls_cert) if web.tls_cert else None,
        ssl_keyfile=str(web.tls_key) if web.tls_key else None,
    )
