"""The demo mailbox's web page: the delivered notifications, newest first, with their images.

Only our own notifications are shown (built and escaped by the inner agent); the page still
sends a Content-Security-Policy that allows nothing but its own images and inline styles.
Listens on loopback only.
"""

from __future__ import annotations

import html
import re
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote

__all__ = ["MailboxWeb"]

CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"
_NAME = re.compile(r"^[A-Za-z0-9._,:=-]{1,200}$")
_CID = re.compile(r'src="cid:([^"]+)"')


def _load(folder: Path, name: str) -> EmailMessage | None:
    if not _NAME.match(name) or not (folder / name).is_file():
        return None
    raw = (folder / name).read_bytes()
    return message_from_bytes(raw, policy=policy.default)


def _index(folder: Path) -> str:
    paths = sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    rows = []
    for path in paths:
        message = _load(folder, path.name)
        if message is None:
            continue
        link = "/mail/" + quote(path.name)
        rows.append(
            f'<tr><td><a href="{html.escape(link)}">{html.escape(str(message["Subject"]))}</a>'
            f"</td><td>{html.escape(str(message['From']))}</td>"
            f"<td>{html.escape(str(message['Date']))}</td></tr>"
        )
    body = (
        "".join(rows)
        or '<tr><td colspan="3">아직 도착한 알림이 없습니다 (no notifications yet)</td></tr>'
    )
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="3">'
        '<title>maildiode demo mailbox</title></head><body style="font-family:sans-serif">'
        "<h1>사내 메일함 (demo internal mailbox)</h1>"
        f"<p>{len(rows)} mail(s). This page refreshes every 3 seconds.</p>"
        '<table border="1" cellpadding="4" style="border-collapse:collapse">'
        f"<tr><th>제목 Subject</th><th>보낸 사람 From</th><th>날짜 Date</th></tr>{body}</table>"
        "</body></html>"
    )


def _show(name: str, message: EmailMessage) -> str:
    part = message.get_body(("html",))
    content = part.get_content() if part is not None else "<p>(no HTML part)</p>"
    prefix = "/mail/" + quote(name) + "/cid/"
    return _CID.sub(lambda m: f'src="{html.escape(prefix + quote(m.group(1)))}"', str(content))


def _image(message: EmailMessage, cid: str) -> tuple[str, bytes] | None:
    for part in message.walk():
        if part.get("Content-ID", "").strip("<>") == cid:
            return part.get_content_type(), part.get_payload(decode=True)  # type: ignore[return-value]
    return None


class _Handler(BaseHTTPRequestHandler):
    folder: Path

    def do_GET(self) -> None:
        parts = [unquote(p) for p in self.path.split("?")[0].split("/") if p]
        if not parts:
            return self._send(200, "text/html; charset=utf-8", _index(self.folder).encode())
        if parts[0] == "mail" and len(parts) in (2, 4):
            message = _load(self.folder, parts[1])
            if message is not None and len(parts) == 2:
                page = _show(parts[1], message).encode("utf-8")
                return self._send(200, "text/html; charset=utf-8", page)
            if message is not None and parts[2] == "cid":
                found = _image(message, parts[3])
                if found is not None:
                    return self._send(200, found[0], found[1])
        return self._send(404, "text/plain", b"not found")

    def _send(self, code: int, content_type: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return  # quiet: the demo prints its own progress


class MailboxWeb:
    def __init__(self, maildir_new: Path, port: int, host: str = "127.0.0.1") -> None:
        handler = type("Handler", (_Handler,), {"folder": maildir_new})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self.url = f"http://{host}:{self._server.server_address[1]}/"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
