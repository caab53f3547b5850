"""Issue 21.4: the approval pages and the console over https, with HSTS (`init --web-tls`).

The inner agent runs as a real process from a trial made by `maildiode init --web-tls`; the
client checks the listener's certificate against the one init made, reads the sign-in page and
its Strict-Transport-Security header, and finds that plain http gets no page.
"""

from __future__ import annotations

import http.client
import ssl
import urllib.request
from pathlib import Path

import pytest

from maildiode.trial.stack import AgentProcess, free_port
from tests.support.command import maildiode
from tests.support.greeter import smtp_greeter

pytestmark = pytest.mark.e2e


def _trial(root: Path, internal: str, web_port: int) -> None:
    made = maildiode(
        "init", str(root), "--web-tls", "--web-port", str(web_port), "--internal-smtp", internal,
        "--smtp-port", str(free_port()), "--outbound-port", str(free_port()),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr


def test_the_web_listener_speaks_https_with_hsts_and_not_http(tmp_path: Path) -> None:
    root, web_port = tmp_path / "trial", free_port()
    with smtp_greeter() as internal:
        _trial(root, internal, web_port)
        checked = maildiode("check", "-c", str(root / "inner.toml"))
        assert "tls_cert" not in checked.stderr, checked.stderr  # the pair loads together
        inner = AgentProcess("inner", root / "inner.toml", tmp_path / "inner.log")
        inner.start(wait_port=web_port)
        try:
            context = ssl.create_default_context(cafile=str(root / "keys/web.crt"))
            url = f"https://127.0.0.1:{web_port}/login"
            with urllib.request.urlopen(url, context=context, timeout=30) as response:
                assert response.status == 200
                assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
                assert "<form" in response.read().decode()
            with pytest.raises((http.client.HTTPException, ConnectionError)):
                _plain_http_get(web_port, "/login")
        finally:
            inner.stop()


def _plain_http_get(port: int, path: str) -> int:
    plain = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    plain.request("GET", path)
    return plain.getresponse().status


def test_check_names_a_certificate_that_does_not_match_its_key(tmp_path: Path) -> None:
    root = tmp_path / "trial"
    with smtp_greeter() as internal:
        _trial(root, internal, free_port())
        other = tmp_path / "other"
        _trial(other, internal, free_port())
        (root / "keys/web.key").write_bytes((other / "keys/web.key").read_bytes())
        checked = maildiode("check", "-c", str(root / "inner.toml"))
    assert checked.returncode == 2
    assert "outbound.web.tls_cert" in checked.stderr
    assert "does not match the key" in checked.stderr
