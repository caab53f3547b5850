"""The web listener as one app: the sign-in pages, the page sets on top (the approval pages
today, the console next), the API, each route through the gate, deny by default.

``Listener`` holds what every page set needs from the listener (sign-in, the gate, the
account and token stores, the access log, the console's time zone); ``listener_app`` makes
the Starlette app from it and the page sets' routes. The client allow-list wraps it all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import tzinfo

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from agentkit.access import AccessLog
from inner_agent.web.accounts import AccountStore
from inner_agent.web.api import IdentityApi, api_http_error
from inner_agent.web.api_tokens import TokenStore
from inner_agent.web.clients import ClientAllowList
from inner_agent.web.gate import Gate, guarded_routes
from inner_agent.web.pages import SignInPages
from inner_agent.web.signin import SignIn

__all__ = ["Listener", "listener_app"]


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

    def close(self) -> None:
        self.signin.close()
        self.signin.store.close()
        self.tokens.close()


def listener_app(listener: Listener, page_routes: Sequence[BaseRoute]) -> Starlette:
    routes = [
        *listener.pages.routes(),
        *page_routes,
        *IdentityApi(listener.access, listener.zone).routes(),
    ]
    app = Starlette(
        routes=guarded_routes(routes),
        exception_handlers={404: api_http_error, 405: api_http_error},
        middleware=[Middleware(ClientAllowList, networks=listener.allowed_clients)],
    )
    app.state.gate = listener.gate
    return app
