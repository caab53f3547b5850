"""A local HTTP server that counts every request: hostile HTML points at it, the count must stay 0."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class TrapServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[str] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    def _record(self) -> None:
        self.server.requests.append(f"{self.command} {self.path}")  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"x")

    do_GET = do_POST = do_HEAD = do_OPTIONS = _record

    def __getattr__(self, name: str) -> object:
        # Any other method (WebDAV's PROPFIND, LOCK, ...: LibreOffice opens http links that
        # way) is recorded too, instead of an unrecorded 501.
        if name.startswith("do_"):
            return self._record
        raise AttributeError(name)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        return


@contextmanager
def trap_server() -> Iterator[TrapServer]:
    server = TrapServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def hostile_html(base: str) -> str:
    """Every way we know for HTML mail to make a renderer fetch something."""
    return f"""<html><head>
<base href="{base}/base/">
<meta http-equiv="refresh" content="0; url={base}/refresh">
<link rel="stylesheet" href="{base}/link.css">
<link rel="prefetch" href="{base}/prefetch"><link rel="preconnect" href="{base}/preconnect">
<link rel="dns-prefetch" href="{base}/dns"><link rel="icon" href="{base}/favicon.ico">
<style>
@import url("{base}/import.css");
@import "{base}/import2.css";
@font-face {{ font-family: trap; src: url({base}/font.woff); }}
body {{ background: url({base}/css-background.png); font-family: trap; }}
.x {{ background-image: u\\72l({base}/escaped.png); }}
.y {{ list-style-image: url('{base}/list.png'); cursor: url({base}/cursor.cur), auto; }}
.z {{ background-image: image-set("{base}/set.png" 1x); }}
</style>
<script src="{base}/script.js"></script>
<script>fetch("{base}/fetch"); new Image().src = "{base}/js-image";</script>
</head>
<body background="{base}/body-background.png" onload="fetch('{base}/onload')">
<p class="x y z">본문 Body text 한국어</p>
<img src="{base}/img.png" alt="remote"><img src="//127.0.0.1:{base.rsplit(":", 1)[1]}/proto-relative.png">
<img srcset="{base}/srcset.png 2x" src="data:,">
<picture><source srcset="{base}/picture.png"><img src="{base}/picture-img.png"></picture>
<table background="{base}/table-background.png"><tr><td background="{base}/td.png">cell</td></tr></table>
<div style="background-image: url({base}/inline-style.png)">inline style</div>
<video poster="{base}/poster.png" src="{base}/video.mp4"></video>
<audio src="{base}/audio.mp3" autoplay></audio>
<iframe src="{base}/iframe.html"></iframe><frameset><frame src="{base}/frame.html"></frameset>
<object data="{base}/object.swf"></object><embed src="{base}/embed.swf">
<input type="image" src="{base}/input.png"><form action="{base}/form"><button>b</button></form>
<svg><image href="{base}/svg-image.png"/><use href="{base}/svg-use.svg#x"/></svg>
<a href="{base}/link">a link</a><a ping="{base}/ping" href="{base}/l2">ping</a>
<img src="file:///etc/hostname"><img src="cid:missing">
</body></html>"""
