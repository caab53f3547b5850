"""Encryption at rest end to end (issue 21.3, its "Done" line): both agents as processes, a
real Postfix as the internal server, hostile carriers on both links, a relay sink.

With a held outbound mail carrying a resident number and a held inbound mail, a search of
every file under both agents' state folders (SQLite files and WAL included) for the number's
digits and for a marker word of each body finds nothing in clear; after a restart, and after
a key rotation of both agents, both mails (and a second pair held under the new keys) are
still released correctly: the inbound one reaches its reader once, the outbound one reaches
the relay with its original bytes.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import smtplib
import subprocess
import sys
import urllib.parse
import urllib.request
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from agentkit.readonly import query_read_only
from inner_agent.outbound.directory import Directory
from maildiode.trial.stack import port_open, wait_for
from protocol.atrest import AtRestKeyring
from tests.support.outbound import MailSink, approval_link
from tests.support.receive_filters import REQUEST, FilterStack

pytestmark = pytest.mark.e2e

RRN = "800101-1234567"
NEEDLES = (RRN.encode(), RRN.replace("-", "").encode(), b"zebracorn", b"quokkafig")
RULES = """\
version = 1
default_action = "allow"

[[rule]]
id = "hold-quotes"
description = "견적 보류 (부서장 승인)"
action = "hold"
[[rule.condition]]
field = "subject"
contains = "held-"
"""
HEAD_PASSWORD = "head-비밀번호-21"


def inbound_mail(token: str) -> EmailMessage:
    """Held by the rule above; the body (8bit, so a clear copy would show) names the marker
    and the number."""
    message = EmailMessage()
    message["From"] = "kim@partner.example"
    message["To"] = "user@corp.example"
    message["Subject"] = f"{token} 견적"
    message["Message-ID"] = f"<{token}@partner.example>"
    message.set_content(f"zebracorn {token}: 주민등록번호 {RRN}\n", cte="8bit")
    return message


def outbound_mail(token: str) -> bytes:
    """Held for the department head by the built-in outbound rules (a resident number)."""
    message = EmailMessage()
    message["From"] = "user@corp.example"
    message["To"] = "partner@example.com"
    message["Subject"] = f"{token} 명단"
    message["Message-ID"] = f"<{token}@corp.example>"
    message.set_content(f"quokkafig {token}: 홍길동 주민등록번호 {RRN}\n", cte="8bit")
    return message.as_bytes(policy=policy.SMTP)  # CRLF: the bytes arrive exactly as sent


def found_in_clear(root: Path) -> list[str]:
    """Every file under both agents' state folders holding a needle, as 'path: needle'."""
    hits = []
    for state in (root / "outer", root / "inner"):
        for folder, _, names in os.walk(state):
            for name in names:
                try:
                    data = (Path(folder) / name).read_bytes()
                except FileNotFoundError:  # a temp file gone between listing and reading
                    continue
                hits += [f"{folder}/{name}: {n.decode()}" for n in NEEDLES if n in data]
    return hits


class Head:
    """The department head at the approval pages (urllib, like the pages: no JavaScript)."""

    def __init__(self, web_url: str) -> None:
        self.web_url = web_url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def _open(self, url: str, fields: dict[str, str] | None = None) -> tuple[str, bytes]:
        data = None if fields is None else urllib.parse.urlencode(fields).encode()
        with self.opener.open(url, data=data, timeout=30) as response:
            return response.url, response.read()

    def approve(self, link: str) -> None:
        url, page = self._open(link)
        if "/login" in url:
            url, page = self._open(f"{self.web_url}/login", {
                "csrf": _field(page, "csrf"), "next": _field(page, "next"),
                "email": "head@corp.example", "password": HEAD_PASSWORD,
            })  # fmt: skip
        assert RRN.encode() not in page  # the head sees the number masked
        request_path = urllib.parse.urlparse(url).path
        done, _ = self._open(f"{self.web_url}{request_path}/decide", {
            "csrf": _field(page, "csrf"), "token": _field(page, "token"), "action": "approve",
        })  # fmt: skip
        assert done.endswith("/requests?done=approved"), done


def _field(page: bytes, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page.decode())
    assert match is not None, f"no {name} field in the page"
    return match.group(1)


def send_outbound(stack: FilterStack, token: str) -> bytes:
    raw = outbound_mail(token)
    with smtplib.SMTP("127.0.0.1", stack.stack.ports.outbound, timeout=60) as client:
        client.sendmail("user@corp.example", ["partner@example.com"], raw)
    return raw


def outbound_held(root: Path) -> int:
    rows = query_read_only(root / "inner/outbound/state.db",
                           "SELECT COUNT(*) FROM mails WHERE state = 'held'", ())  # fmt: skip
    return int(rows[0][0])


def request_links(stack: FilterStack, token: str) -> list[str]:
    """The approve links of the outbound requests about ``token`` in the head's mailbox."""
    links = []
    for path in stack.stack.postfix.messages():
        data = path.read_bytes()
        message = message_from_bytes(data, policy=policy.default)
        if message["To"] == "head@corp.example" and token in str(message["Subject"]).split():
            links.append(approval_link(data))
    return links


def hold_a_pair(stack: FilterStack, token: str) -> bytes:
    """An inbound mail held at the outer agent and an outbound one held inside; returns the
    outbound mail's bytes."""
    stack.stack.send(inbound_mail(f"held-{token}"))
    raw = send_outbound(stack, f"out-{token}")
    wait_for(lambda: stack.count(f"held-{token}", to="head@corp.example", tag=REQUEST), 120,
             "the inbound hold's request")  # fmt: skip
    wait_for(lambda: request_links(stack, f"out-{token}"), 120, "the outbound request mail")
    return raw


def rotate_and_restart(stack: FilterStack) -> dict[str, bytes]:
    """Both agents stopped, each at-rest key file given a new key, both started; the new
    key ids."""
    stack.stack.outer.stop()
    stack.stack.inner.stop()
    new_ids = {}
    for agent in ("outer", "inner"):
        path = stack.root / "keys" / f"{agent}-at-rest.keys"
        result = subprocess.run([sys.executable, "-m", "maildiode", "keygen", "--rotate",
                                 str(path)], capture_output=True, text=True, timeout=60)  # fmt: skip
        assert result.returncode == 0, result.stderr
        keyring = AtRestKeyring.load(path)
        assert len(keyring.keys) == 2
        new_ids[agent] = keyring.current.key_id
    stack.stack.inner.start()
    stack.stack.outer.start(wait_port=stack.stack.ports.smtp)
    wait_for(lambda: port_open(stack.stack.ports.outbound) and port_open(stack.stack.ports.web),
             60, "the inner agent's outbound intake and web pages")  # fmt: skip
    return new_ids


def test_held_mail_is_never_in_clear_and_survives_restart_and_key_rotation(
    tmp_path: Path,
) -> None:
    relay = MailSink()
    stack = FilterStack(tmp_path / "stack", rules=RULES,
                        outer={("delivery", "smarthost"): f'"127.0.0.1:{relay.port}"',
                               # the sink speaks no TLS: named as an exception, as a site would
                               ("delivery", "tls_exceptions"): '["127.0.0.1"]'})  # fmt: skip
    directory = Directory(stack.root / "inner" / "directory.db")
    directory.set_password("head@corp.example", HEAD_PASSWORD)
    directory.close()
    root = stack.root
    try:
        with stack:
            stack.wait_policy(1)
            first = hold_a_pair(stack, "a1")
            assert outbound_held(root) == 1
            assert [h["state"] for h in stack.holds().values()] == ["waiting"]
            assert found_in_clear(root) == []

            new_ids = rotate_and_restart(stack)  # a restart, and a rotation of both agents
            second = hold_a_pair(stack, "b2")  # sealed under the new keys
            assert found_in_clear(root) == []
            [held_b] = [f.read_bytes() for f in (root / "outer/spool/held/mail").iterdir()
                        if b"held-b2" in f.read_bytes()]  # (its masked notice headers)  # fmt: skip
            assert new_ids["outer"] in held_b  # sealed with the new key: its id in the blob
            assert outbound_held(root) == 2

            head = Head(f"http://127.0.0.1:{stack.stack.ports.web}")
            for token in ("a1", "b2"):
                assert stack.decide(f"held-{token}", "release").returncode == 0
                head.approve(request_links(stack, f"out-{token}")[0])
            wait_for(lambda: stack.count("held-a1") and stack.count("held-b2"), 120,
                     "the released inbound mails")  # fmt: skip
            wait_for(lambda: len(relay.received) >= 2, 120, "the approved outbound mails")
            assert sorted(m.data for m in relay.received) == sorted([first, second])
            assert (stack.count("held-a1"), stack.count("held-b2")) == (1, 1)
            assert found_in_clear(root) == []
    finally:
        relay.stop()
