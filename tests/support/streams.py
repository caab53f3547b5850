"""Two outer agents and one inner agent on one machine (issue 23, D74/D75): the trial pair from
``maildiode.trial`` plus a second outer agent ``mx2`` with its own key, spool, SMTP port and
folder pair, listed in the inner agent's ``[[streams.outer]]``; a carrier per link folder."""

from __future__ import annotations

import json
import smtplib
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from agentkit.readonly import query_read_only
from inner_agent.reports import latest_report, report_freshness
from maildiode.trial.carrier import Carrier
from maildiode.trial.stack import AgentProcess, Ports, free_port, prepare, set_key, wait_for
from tests.support.command import maildiode
from tests.support.inbound import DOMAIN
from tests.support.inbound import _subject as subject_of
from tests.support.outbound import fill_directory
from tests.support.postfix import PostfixInstance

MX2 = "mx2"
CHANNELS = ("in", "out")


def add_mx2(root: Path, smtp_port: int, *, takeover_after_s: float) -> None:
    """Make ``root`` (written by ``prepare``) a place for the second outer agent as an
    administrator does, with ``maildiode init DIR --add-outer mx2``: its keys, its private
    folders, its folder pair, ``outer-mx2.toml`` listening on ``smtp_port`` (outer.toml's settings,
    the test's overrides included), and its ``[[streams.outer]]`` entry in ``inner.toml`` (a
    copy of inner.toml made later has it); then the test's own takeover time."""
    added = maildiode("init", str(root), "--add-outer", MX2, "--smtp-port", str(smtp_port))
    assert added.returncode == 0, added.stderr
    inner = (root / "inner.toml").read_text(encoding="utf-8")
    assert "\n[streams]\n" in inner  # the table the command opened (the example's is a comment)
    inner = inner.replace("\n[streams]\n", f"\n[streams]\ntakeover_after_s = {takeover_after_s}\n")
    (root / "inner.toml").write_text(inner, encoding="utf-8")
    text = (root / f"outer-{MX2}.toml").read_text(encoding="utf-8")
    (root / f"outer-{MX2}.toml").write_text(set_key(text, "delivery", "helo", '"mx2.test"'),
                                      encoding="utf-8")  # fmt: skip


def mx2_process(root: Path) -> AgentProcess:
    return AgentProcess("outer", root / f"outer-{MX2}.toml", root / f"{MX2}.log")


def carriers(root: Path, prefix: str) -> dict[str, Carrier]:
    """A carrier per channel of one folder pair: ``""`` the first outer agent's, ``"mx2/"``
    the second's; keyed ``in``, ``out``, ``mx2/in``, ``mx2/out``."""
    return {
        f"{prefix}{side}": Carrier(root / f"link/{prefix}{side}/send",
                                   root / f"link/{prefix}{side}/recv")
        for side in CHANNELS
    }  # fmt: skip


class TwoOuterStack:
    """outer (stream ``inbound``) + mx2 (stream ``mx2``) + inner, delivering to ``relay_port``."""

    def __init__(
        self,
        root: Path,
        relay_port: int,
        *,
        takeover_after_s: float = 3,
        internal: PostfixInstance | None = None,
        render_processes: int = 2,
        outer: dict[tuple[str, str], str] | None = None,
        outbound: bool = True,
    ) -> None:
        """``internal``: a Postfix the inner agent delivers inbound notifications to;
        ``outbound``: the inner agent runs its outbound path (intake, web, the shares)."""
        self.root = root
        self.internal, self.outbound = internal, outbound
        self.ports = Ports(internal=internal.port) if internal is not None else Ports()
        self.mx2_port = free_port()
        fast_reports = {("report", "interval_s"): "1",
                        ("delivery", "tls_exceptions"): '["127.0.0.1"]',
                        ("render", "processes"): str(render_processes), **(outer or {})}  # fmt: skip
        prepare(root, self.ports, outbound=outbound, relay=f"127.0.0.1:{relay_port}",
                outer=fast_reports, inner={("notify", "our_domains"): f'["{DOMAIN}"]'})  # fmt: skip
        add_mx2(root, self.mx2_port, takeover_after_s=takeover_after_s)
        if outbound:
            fill_directory(SimpleNamespace(directory_db=root / "inner/directory.db"))  # type: ignore[arg-type]
        self.inner = AgentProcess("inner", root / "inner.toml", root / "inner.log")
        self.outer = AgentProcess("outer", root / "outer.toml", root / "outer.log")
        self.mx2 = mx2_process(root)
        self.carriers = {**carriers(root, ""), **carriers(root, f"{MX2}/")}

    def start(self) -> TwoOuterStack:
        try:
            if self.internal is not None:
                self.internal.start()
            for carrier in self.carriers.values():
                carrier.start()
            self.inner.start(wait_port=self.ports.outbound if self.outbound else None)
            self.outer.start(wait_port=self.ports.smtp)
            self.mx2.start(wait_port=self.mx2_port)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for agent in (self.mx2, self.outer, self.inner):
            agent.stop()
        for carrier in self.carriers.values():
            carrier.stop()
        if self.internal is not None:
            self.internal.close()

    def __enter__(self) -> TwoOuterStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what the test does and reads ------------------------------------------------------

    def send_in(self, message: EmailMessage, port: int) -> None:
        """A sender's mail through one outer agent's SMTP intake (an MX)."""
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
            smtp.send_message(message, "sender@partner.example", [f"user@{DOMAIN}"])

    def subjects(self) -> list[str]:
        """The Subject of every notification in the internal server's mailbox."""
        assert self.internal is not None
        return [subject_of(path) for path in self.internal.messages()]

    def send_out(self, message: bytes, rcpt: str, sender: str = "kim@corp.example") -> None:
        """An employee's mail through the inner agent's outbound intake."""
        with smtplib.SMTP("127.0.0.1", self.ports.outbound, timeout=60) as smtp:
            smtp.sendmail(sender, [rcpt], message)

    def fresh(self, stream: str) -> bool:
        stored = latest_report(self.root / "inner/reports.db", stream)
        return bool(report_freshness(stored, time.time())["state"] == "fresh")

    def wait_both_fresh(self, timeout_s: float = 60) -> None:
        wait_for(lambda: self.fresh("inbound") and self.fresh(MX2), timeout_s,
                 "status reports from both outer agents")  # fmt: skip

    def shares(self) -> list[tuple[str, str]]:
        """(mail id, stream) of every outbound mail not yet reported delivered."""
        rows = query_read_only(self.root / "inner/outbound/shares.db",
                               "SELECT mail_id, stream FROM shares")  # fmt: skip
        return [(str(m), str(s)) for m, s in rows]

    def status(self) -> tuple[int, dict[str, Any]]:
        """``maildiode status -c inner.toml --json``: its exit code and its answer."""
        done = subprocess.run(
            [sys.executable, "-m", "maildiode", "status", "-c", str(self.root / "inner.toml"),
             "--json"], capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        return done.returncode, json.loads(done.stdout)

    def inner_events(self, step: str) -> list[tuple[str, str]]:
        rows = query_read_only(self.root / "inner/audit.db",
                               "SELECT agent, mail_id FROM events WHERE step = ?", (step,))  # fmt: skip
        return [(str(a), str(m)) for a, m in rows]
