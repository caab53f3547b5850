"""The optional client-address allow-list of the web listener (issue 16.2,
``[outbound.web] allowed_clients``): a request from any other address is refused before
anything else looks at it — no sign-in page, no session lookup, no token check.

Empty (the default): every address may connect (the listener is on the intranet, behind its
own firewall). The client is the connection's address, or the address a trusted proxy names
in ``X-Forwarded-For`` (uvicorn applies it for ``trusted_proxies`` only). Refusals are logged
once a minute with their count, so a scan from outside cannot flood the log.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable, Iterable

from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["ClientAllowList", "client_allowed"]

log = logging.getLogger(__name__)

# Refusals are logged at most once per this many seconds, with their count.
REFUSAL_LOG_S = 60.0
NOT_ALLOWED_KO = "이 주소에서는 접속할 수 없습니다. 관리자에게 문의하십시오."

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_allowed(address: str, networks: Iterable[Network]) -> bool:
    """Whether ``address`` is in one of ``networks`` (an unreadable address is not)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:10.1.2.3 is 10.1.2.3
    return any(ip in network for network in networks)


class ClientAllowList:
    """ASGI middleware: requests from outside ``networks`` get 403; an empty list allows all."""

    def __init__(
        self, app: ASGIApp, networks: Iterable[str], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.app, self.clock = app, clock
        self.networks = tuple(ipaddress.ip_network(n, strict=False) for n in networks)
        self._refused, self._since = 0, clock() - REFUSAL_LOG_S

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.networks:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = str(client[0]) if client else ""
        if client_allowed(address, self.networks):
            await self.app(scope, receive, send)
            return
        self._note(address)
        await _refusal(str(scope.get("path", "")))(scope, receive, send)

    def _note(self, address: str) -> None:
        self._refused += 1
        now = self.clock()
        if now - self._since >= REFUSAL_LOG_S:
            log.warning("%d web request(s) refused in %d s from addresses outside "
                        "allowed_clients (the last from %s)", self._refused,
                        round(now - self._since), address)  # fmt: skip
            self._refused, self._since = 0, now


def _refusal(path: str) -> Response:
    if path.startswith("/api/"):
        return JSONResponse({"error": "client_not_allowed",
                             "message": "this address may not use the API (allowed_clients)"},
                            status_code=403)  # fmt: skip
    return PlainTextResponse(NOT_ALLOWED_KO, status_code=403)
