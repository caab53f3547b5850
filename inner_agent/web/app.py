"""The web listener as one app: the sign-in pages, the page sets on top (the approval pages,
the console), the API, each route through the gate, deny by default.

``Listener`` holds what every page set needs from the listener (sign-in, the gate, the
account and token stores, the access log, the console's time zone, the console's data);
``listener_app`` makes the Starlette app from it and the page sets' routes: the sign-in,
the given pages, the console's pages and API endpoints, the identity API. The client
allow-list wraps it all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import tzinfo

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute

from agentkit.access import AccessLog
from agentkit.leasekeeper import FenceClosed
from inner_agent.console.api import ConsoleApi
from inner_agent.console.data import ConsoleData
from inner_agent.console.directory_pages import DirectoryPages
from inner_agent.console.pages import ConsolePages
from inner_agent.console.places import ConsolePlaces
from inner_agent.outbound.directory import Directory
from inner_agent.policyedit.files import PolicySite
from inner_agent.web.accounts import AccountStore
from inner_agent.web.api import IdentityApi, api_http_error
from inner_agent.web.api_tokens import TokenStore
from inner_agent.web.clients import ClientAllowList
from inner_agent.web.gate import Gate, guarded_routes
from inner_agent.web.lease_lost import DECISION_NOT_SAVED, lease_lost_html, lease_lost_page
from inner_agent.web.pages import SECURITY_HEADERS, SignInPages
from inner_agent.web.signin import SignIn
from inner_agent.web.transport import StrictTransportSecurity

__all__ = ["Listener", "listener_app"]


def _open_fence() -> None:
    """No lease to check (an agent without a state folder, a test's listener)."""


@dataclass(frozen=True)
class Listener:
    signin: SignIn
    pages: SignInPages
    gate: Gate
    accounts: AccountStore
    tokens: TokenStore
    access: AccessLog
    zone: tzinfo  # the console's time zone ([console] timezone)
    allowed_clients: tuple[str, ...] = ()  # empty: every address
    # What the console reads; None: only the audit store the access log reads (no figures).
    console: ConsoleData | None = None
    strict_transport: bool = False  # reached over https: every response says HSTS
    # The rules files the policy editor changes; None: no editor (no [outbound]).
    policy: PolicySite | None = None
    # Raises FenceClosed (answered 503) once the agent no longer holds its state's lease:
    # checked before every write of shared state the pages make (D80); open by default.
    fence: Callable[[], None] = _open_fence

    def close(self) -> None:
        self.signin.close()
        self.signin.store.close()
        self.tokens.close()
        if self.console is not None:
            self.console.close()

    def console_data(self) -> ConsoleData:
        if self.console is not None:
            return self.console
        places = ConsolePlaces(audit_path=self.access.path)
        return ConsoleData(places, zone=self.zone, language="ko")


def listener_app(listener: Listener, page_routes: Sequence[BaseRoute]) -> Starlette:
    data = listener.console_data()
    routes = [
        *listener.pages.routes(),
        *page_routes,
        *ConsolePages(listener.pages, listener.access, data).routes(),
        *_directory_routes(listener, data),
        *ConsoleApi(data, listener.access).routes(),
        *IdentityApi(listener.access, listener.zone).routes(),
        *_policy_routes(listener),
    ]
    app = Starlette(
        routes=guarded_routes(routes),
        exception_handlers={404: api_http_error, 405: api_http_error, FenceClosed: lease_lost},
        middleware=[
            Middleware(ClientAllowList, networks=listener.allowed_clients),
            *([Middleware(StrictTransportSecurity)] if listener.strict_transport else []),
        ],
    )
    app.state.gate = listener.gate
    return app


# Said (503) when a decision reaches an agent that lost its state's lease to its standby.
LEASE_LOST_PAGE = DECISION_NOT_SAVED


async def lease_lost(request: Request, exc: Exception) -> Response:
    """A decision, a withdrawal, a rules file's or the directory's save, an absence refused by
    the fence: nothing stored, the page says what; the standby serves soon."""
    # The plain text too: nosniff keeps a browser from reading it as anything else.
    headers = {**SECURITY_HEADERS, "Retry-After": "60"}
    if "text/html" in request.headers.get("accept", ""):  # a browser: a page a phone can read
        return HTMLResponse(lease_lost_html(request.url.path), status_code=503, headers=headers)
    return PlainTextResponse(lease_lost_page(request.url.path), status_code=503, headers=headers)


def _policy_routes(listener: Listener) -> list[BaseRoute]:
    """The policy editor's pages, when the listener has rules files to edit."""
    from inner_agent.policyedit.pages import PolicyPages

    site = listener.policy
    if site is None:
        return []
    files = site.files.open(listener.access.recorder, site.on_saved, fence=listener.fence)
    return list(PolicyPages(listener.pages, listener.access, files, zone=listener.zone,
                            membership=site.membership,
                            scope_names=site.scope_names, sender=site.sender,
                            find_names=site.find_names,
                            people_at=site.people_at).routes())  # fmt: skip


def _directory_routes(listener: Listener, data: ConsoleData) -> list[BaseRoute]:
    """The console's directory pages, where the account store's people are the directory."""
    directory = listener.accounts.people
    if not isinstance(directory, Directory):
        return []
    return list(DirectoryPages(listener.pages, listener.access, data, directory,
                               fence=listener.fence).routes())  # fmt: skip
