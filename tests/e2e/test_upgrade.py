"""An upgrade from the previous release's state works (issue 22.6, "Done means").

``tests/data/upgrade/state-88ef688.tar.xz`` is what the release before versioned state (commit
88ef688) left after a run of both agents (``tests/data/upgrade/make_state.py`` made it: see
there): inbound mail delivered, released and still held; outbound mail delivered and held for
approval; its configs, test keys and link folders. Today's agents start on it:

- ``maildiode check`` passes on the old configs and state;
- every database of the old release (the mail index aside: it is derived) is copied aside
  first and the upgrade is in each agent's audit log (``state_migrated``: store, from, to);
- the mail held before is still held, and a held inbound mail released now is delivered,
  once; nothing delivered before the upgrade is delivered again;
- the outbound mail held for approval is still held, and the head approves it on the web
  pages (signed in with a password set after the upgrade): it reaches the internet mailbox;
- both audit chains verify (``maildiode audit verify``), the upgrade events included.
"""

from __future__ import annotations

import email
import email.policy
import functools
import http.cookiejar
import json
import re
import sqlite3
import subprocess
import sys
import tarfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentkit.readonly import query_read_only
from inner_agent.outbound.directory import Directory
from maildiode.demo.mailbox import MaildirMailbox
from maildiode.trial.carrier import Carrier
from maildiode.trial.stack import AgentProcess, free_port, wait_for
from tests.support.postfix import PostfixInstance

pytestmark = pytest.mark.e2e

FIXTURE = Path(__file__).resolve().parents[1] / "data/upgrade/state-88ef688.tar.xz"
HEAD = "head@corp.example"
HEAD_PASSWORD = "head-비밀번호-22"
# What the old release's state holds (tests/data/upgrade/old_release_run.py).
DELIVERED_BEFORE = ("plain-00", "plain-01", "held-00")
STILL_HELD = ("held-01", "held-02")
RRN = "800101-1234567"  # the made-up resident number of the held outbound mail
# The files a migration of this release changes, per agent: (store, file, from, to). Every
# store the old release left is upgraded and recorded (D109: before, the six stores without a
# migration were left at version 0 with no record; the mail index is derived, not migrated).
MIGRATED = {
    "outer": {
        ("audit", "outer/audit.db", 0, 1),
        ("link sender", "outer/spool/sender/sender-inbound.db", 0, 1),
        ("link receiver", "outer/spool/link-out/receiver-outbound.db", 0, 1),
    },
    "inner": {
        ("audit", "inner/audit.db", 0, 1),
        ("directory", "inner/directory.db", 0, 2),
        ("outbound state", "inner/outbound/state.db", 0, 2),
        ("inbound holds", "inner/inbound-holds.db", 0, 1),
        ("injection queue", "inner/inject.db", 0, 1),
        ("link receiver", "inner/receiver-inbound.db", 0, 1),
        ("link sender", "inner/outbound/link-state/sender-outbound.db", 0, 1),
        ("status reports", "inner/reports.db", 0, 1),
        ("sign-in", "inner/signin.db", 0, 1),
    },
}


def maildiode(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "maildiode", *args], capture_output=True,
                          text=True, timeout=120)  # fmt: skip


class OldState:
    """The fixture unpacked, its ports moved to free ones, the servers it names running."""

    def __init__(self, base: Path) -> None:
        with tarfile.open(FIXTURE) as tar:
            tar.extractall(base, filter="data")
        self.root = base / "trial"
        self.postfix = PostfixInstance(domain="corp.example")
        self.internet_port = free_port()
        self.internet = MaildirMailbox(base / "internet", port=self.internet_port)
        self._move_ports()
        self.carriers = [Carrier(self.root / f"link/{d}/send", self.root / f"link/{d}/recv")
                         for d in ("in", "out")]  # fmt: skip
        self.outer = AgentProcess("outer", self.config("outer"), base / "outer.log")
        self.inner = AgentProcess("inner", self.config("inner"), base / "inner.log")
        self._serving = False

    def config(self, agent: str) -> Path:
        return self.root / f"{agent}.toml"

    def _move_ports(self) -> None:
        """Every loopback port of the old configs to a free one: the internal server's to
        Postfix's, the outer smarthost's to the internet mailbox's."""
        inner, outer = self.config("inner"), self.config("outer")
        inner_text, outer_text = inner.read_text("utf-8"), outer.read_text("utf-8")
        internal = re.search(r'^server = "127\.0\.0\.1:(\d+)"', inner_text, re.M)
        relay = re.search(r'^smarthost = "127\.0\.0\.1:(\d+)"', outer_text, re.M)
        assert internal is not None
        assert relay is not None
        moved = {internal.group(1): str(self.postfix.port), relay.group(1): str(self.internet_port)}
        for path, text in ((inner, inner_text), (outer, outer_text)):
            for old in re.findall(r"127\.0\.0\.1:(\d+)", text):
                moved.setdefault(old, str(free_port()))
            path.write_text(re.sub(r"127\.0\.0\.1:(\d+)", lambda m: f"127.0.0.1:{moved[m[1]]}",
                                   text), encoding="utf-8")  # fmt: skip
        listen = re.search(r'^listen = "127\.0\.0\.1:(\d+)"', outer.read_text("utf-8"), re.M)
        assert listen is not None
        self.smtp_port = int(listen.group(1))

    def start_servers(self) -> None:
        """The internal server, the internet mailbox and the carriers: what the agents use."""
        self._serving = True
        self.postfix.start()
        self.internet.start()
        for carrier in self.carriers:
            carrier.start()

    def start_agents(self) -> None:
        self.inner.start()
        self.outer.start(wait_port=self.smtp_port)

    def stop(self) -> None:
        """Everything started, once (the test stops it before verifying; teardown again)."""
        try:
            for agent in (self.outer, self.inner):
                agent.stop()
            if self._serving:
                for carrier in self.carriers:
                    carrier.stop()
                self.internet.stop()
        finally:
            self._serving = False
            self.postfix.close()

    # -- what the agents did ----------------------------------------------------------------

    def subjects(self) -> list[str]:
        found = []
        for path in self.postfix.messages():
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            found.append(f"{message['To']}|{message['Subject']}")
        return found

    def delivered(self, token: str) -> int:
        """The mail itself delivered to its reader (not a notice about it to the head)."""
        return sum(1 for s in self.subjects()
                   if s.startswith("user@corp.example|") and token in s.split())  # fmt: skip

    def holds(self) -> dict[str, dict[str, object]]:
        listed = maildiode("inbound", "list", "--state", "all", "--json", "-c",
                           str(self.config("inner")))  # fmt: skip
        assert listed.returncode == 0, listed.stderr
        found = [json.loads(line) for line in listed.stdout.splitlines()]
        return {str(h["subject"]).split()[0]: h for h in found}

    def events(self, agent: str, step: str) -> list[dict[str, object]]:
        """The agent's own events (the inner log also holds the outer agent's, carried in)."""
        rows = query_read_only(self.root / agent / "audit.db",
                               "SELECT mail_id, details FROM events WHERE step = ? AND agent = ?",
                               (step, agent))  # fmt: skip
        return [{"mail_id": m, **json.loads(d)} for m, d in rows]

    def web_url(self) -> str:
        text = self.config("inner").read_text("utf-8")
        found = re.search(r'^public_url = "([^"]+)"', text, re.M)
        assert found is not None
        return found.group(1)

    def held_request(self) -> str:
        (request_id,) = query_read_only(self.root / "inner/outbound/state.db",
                                        "SELECT request_id FROM requests WHERE state = 'held'"
                                        )[0]  # fmt: skip
        return str(request_id)

    def outbound_held(self) -> int:
        (count,) = query_read_only(self.root / "inner/outbound/state.db",
                                   "SELECT COUNT(*) FROM mails WHERE state = 'held'")[0]  # fmt: skip
        return int(count)


@pytest.fixture
def old_state(tmp_path: Path) -> Iterator[OldState]:
    state = OldState(tmp_path)
    try:
        yield state
    finally:
        state.stop()


def _version(path: Path) -> int:
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        (version,) = db.execute("PRAGMA user_version").fetchone()
    finally:
        db.close()
    return int(version)


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

    def approve(self, request_id: str) -> None:
        url, page = self._open(f"{self.web_url}/requests/{request_id}")
        if "/login" in url:
            url, page = self._open(f"{self.web_url}/login", {
                "csrf": _field(page, "csrf"), "next": _field(page, "next"),
                "email": HEAD, "password": HEAD_PASSWORD,
            })  # fmt: skip
        assert RRN.encode() not in page  # the head sees the number masked
        done, _ = self._open(f"{self.web_url}/requests/{request_id}/decide", {
            "csrf": _field(page, "csrf"), "token": _field(page, "token"), "action": "approve",
        })  # fmt: skip
        assert done.endswith("/requests?done=approved"), done


def _field(page: bytes, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page.decode())
    assert match is not None, f"no {name} field in the page"
    return match.group(1)


def _audited(state: OldState, agent: str) -> bool:
    return len(state.events(agent, "state_migrated")) == len(MIGRATED[agent])


def test_todays_agents_take_over_the_previous_releases_state(old_state: OldState) -> None:
    root = old_state.root
    old_state.start_servers()
    for agent in ("outer", "inner"):
        checked = maildiode("check", "-c", str(old_state.config(agent)))
        assert checked.returncode == 0, checked.stdout + checked.stderr
    for _agent, migrations in MIGRATED.items():
        for _store, name, old, _new in migrations:
            assert _version(root / name) == old  # as the old release left it
    # The outer agent's state upgraded by the operator's step before its start (D109): what
    # each store was and became; the start then finds nothing to do.
    upgraded = maildiode("upgrade", "--json", "-c", str(old_state.config("outer")))
    assert upgraded.returncode == 0, upgraded.stderr
    rows = [json.loads(line) for line in upgraded.stdout.splitlines()]
    assert {(r["store"], r["file"], r["from"], r["to"]) for r in rows} == {
        (store, str(root / name), old, new) for store, name, old, new in MIGRATED["outer"]
    }
    old_state.start_agents()
    for agent, migrations in MIGRATED.items():
        audited = functools.partial(_audited, old_state, agent)
        wait_for(audited, 60, f"{agent}: the upgrade audited")
        events = old_state.events(agent, "state_migrated")
        assert {(e["store"], e["file"], e["from"], e["to"]) for e in events} == {
            (store, str(root / name), old, new) for store, name, old, new in migrations
        }
        for event in events:
            backup = Path(str(event["backup"]))
            assert backup.parent == Path(str(event["file"])).parent
            assert _version(backup) == event["from"]  # the file as the old release left it
            assert _version(Path(str(event["file"]))) == event["to"]
    holds = old_state.holds()
    assert {t: holds[t]["state"] for t in ("held-00", *STILL_HELD)} == {
        "held-00": "released",
        **dict.fromkeys(STILL_HELD, "waiting"),
    }
    assert old_state.outbound_held() == 1  # the approval request survives the upgrade
    directory = Directory(root / "inner/directory.db")  # the upgraded file: no migration now
    directory.set_password(HEAD, HEAD_PASSWORD)  # the old run signed nobody in
    directory.close()
    Head(old_state.web_url()).approve(old_state.held_request())
    wait_for(lambda: len(old_state.internet.messages()) == 1, 180, "the approved mail sent out")
    assert RRN.encode() in old_state.internet.messages()[0].read_bytes()  # the original
    assert old_state.outbound_held() == 0
    mail_id = str(holds["held-01"]["mail_id"])
    decided = maildiode("inbound", "decide", "-c", str(old_state.config("inner")), mail_id,
                        "release", "--by", HEAD)  # fmt: skip
    assert decided.returncode == 0, decided.stderr
    wait_for(lambda: old_state.delivered("held-01") == 1, 180, "held-01 released and delivered")
    time.sleep(3)  # a mail delivered again after the upgrade would show up by now
    assert {t: old_state.delivered(t) for t in (*DELIVERED_BEFORE, *STILL_HELD)} == {
        **dict.fromkeys(DELIVERED_BEFORE, 0),
        "held-01": 1,
        "held-02": 0,
    }
    assert old_state.holds()["held-02"]["state"] == "waiting"
    old_state.stop()
    for agent in ("outer", "inner"):
        verified = maildiode("audit", "verify", "-c", str(old_state.config(agent)))
        assert verified.returncode == 0, verified.stdout + verified.stderr
