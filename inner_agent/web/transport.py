"""HTTP Strict Transport Security for the web listener when it is reached over https.

A browser that has seen the header once refuses plain http to the host for ``max-age``: a
sign-in page can then not be served in clear by someone on the path (PIPC notice art. 6/7:
secure authentication, encryption in transit). The header is only meaningful over https, so
it is sent when the public URL is https — TLS at our own listener (``tls_cert``) or at a proxy
in front of it.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HSTS_VALUE", "StrictTransportSecurity"]

HSTS_VALUE = b"max-age=31536000"  # one year; no includeSubDomains: other hosts are not ours


class StrictTransportSecurity:
    """ASGI middleware: every HTTP response carries ``Strict-Transport-Security``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"strict-transport-security", HSTS_VALUE))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_header)
