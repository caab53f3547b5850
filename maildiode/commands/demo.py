"""``maildiode demo``: everything on loopback with an embedded mailbox, ready to try.

Starts, in a working folder: an internal mailbox (SMTP server writing a Maildir, plus a web
page listing the delivered notifications), a second one standing for the internet (where
approved outbound mail arrives), the inner agent, the outer agent, and a carrier each way
(playing the network-linkage product). Then sends a handful of sample mails through the outer
agent, two outbound mails with a customer list through the inner agent (held for the
department head, whose password is printed), and prints where to look. Ctrl-C stops
everything cleanly.
"""

from __future__ import annotations

import argparse
import signal
import smtplib
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType

from agentkit.settings import load_config
from inner_agent.config import InnerConfig
from maildiode.demo.mailbox import MaildirMailbox
from maildiode.demo.outbound import (
    APPROVER,
    APPROVER_PASSWORD,
    PARTNER,
    SENDER,
    fill_directory,
    outbound_samples,
)
from maildiode.demo.samples import sample_mails
from maildiode.demo.web import MailboxWeb
from maildiode.trial.carrier import Carrier
from maildiode.trial.stack import AgentProcess, Ports, prepare

RCPT = "user@corp.example"


def _say(text: str) -> None:
    print(text, flush=True)


def run(args: argparse.Namespace) -> int:
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="maildiode-demo-"))
    ports = Ports()
    _say(f"maildiode demo in {root}")
    # The stand-in for the internet speaks no TLS: named as an exception to the default of
    # verified TLS, as an administrator would for a partner without a certificate.
    prepare(root, ports, relay=f"127.0.0.1:{ports.internet}",
            outer={("delivery", "tls_exceptions"): '["127.0.0.1"]'})  # fmt: skip
    mailbox = MaildirMailbox(root / "mailbox", port=ports.internal)
    # Stands for the partner's mail server on the internet: approved outbound mail lands here.
    internet = MaildirMailbox(root / "internet", port=ports.internet)
    try:
        web = MailboxWeb(root / "mailbox" / "new", args.web_port)
    except OSError as exc:
        print(f"maildiode demo: cannot listen on port {args.web_port} ({exc.strerror}); "
              "choose another with --web-port", file=sys.stderr)  # fmt: skip
        return 2
    inner = AgentProcess("inner", root / "inner.toml", root / "inner.log")
    outer = AgentProcess("outer", root / "outer.toml", root / "outer.log")
    carriers = [Carrier(root / "link/in/send", root / "link/in/recv"),
                Carrier(root / "link/out/send", root / "link/out/recv")]  # fmt: skip
    stop = _stop_event()
    try:
        mailbox.start()
        internet.start()
        web.start()
        fill_directory(_directory_db(root))
        for carrier in carriers:
            carrier.start()
        _say("starting the inner agent (intranet side) and the outer agent (internet side)...")
        inner.start(wait_port=ports.outbound)
        outer.start(wait_port=ports.smtp)
        _send_samples(ports.smtp)
        _send_outbound_samples(ports.outbound)
        _print_where_to_look(root, ports, web.url)
        _watch(mailbox, stop, args.exit_after)
    except (RuntimeError, TimeoutError) as exc:
        print(f"maildiode demo: {exc}", file=sys.stderr)
        return 1
    finally:
        _say("stopping: outer agent, inner agent, carriers, mailbox...")
        outer.stop()
        inner.stop()
        for carrier in carriers:
            carrier.stop()
        web.stop()
        internet.stop()
        mailbox.stop()
        _say(f"stopped. Everything is kept in {root}")
    return 0


def _stop_event() -> threading.Event:
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    return stop


def _send_samples(smtp_port: int) -> None:
    for what, raw in sample_mails(RCPT):
        try:
            with smtplib.SMTP("127.0.0.1", smtp_port, timeout=60) as smtp:
                smtp.sendmail("sender@partner.example", [RCPT], raw)
        except smtplib.SMTPException as exc:
            _say(f"  NOT sent ({exc}): {what}")
            continue
        _say(f"  sent: {what}")


def _directory_db(root: Path) -> Path:
    outbound = load_config(root / "inner.toml", InnerConfig).outbound
    assert outbound is not None  # the demo's inner.toml has its [outbound] section
    return outbound.directory_db


def _send_outbound_samples(outbound_port: int) -> None:
    """An employee's mails to a partner, through the inner agent's outbound intake (where the
    internal mail server relays mail for external recipients)."""
    for what, raw in outbound_samples():
        try:
            with smtplib.SMTP("127.0.0.1", outbound_port, timeout=60) as smtp:
                smtp.sendmail(SENDER, [PARTNER], raw)
        except smtplib.SMTPException as exc:
            _say(f"  NOT sent outbound ({exc}): {what}")
            continue
        _say(f"  sent outbound: {what}")


def _print_where_to_look(root: Path, ports: Ports, url: str) -> None:
    _say(f"""
Notifications appear within a minute at:   {url}
  Maildir of the internal mailbox:          {root}/mailbox/new
  audit log (inner):   maildiode audit -c {root}/inner.toml
  audit log (outer):   maildiode audit -c {root}/outer.toml
  find a mail:         maildiode audit -c {root}/inner.toml --search 견적 --trail
  statistics:          maildiode stats -c {root}/inner.toml
  logs:                {root}/outer.log  {root}/inner.log
  the link folders:    {root}/link/in/send -> {root}/link/in/recv
Send your own mail:   swaks --server 127.0.0.1:{ports.smtp} --to {RCPT} --body '안녕하세요'

Outbound: the held mails' approval requests reach the department head in the same mailbox.
  approve or reject at:  http://127.0.0.1:{ports.web}/
  sign in as:            {APPROVER}   password: {APPROVER_PASSWORD}
  approved mail arrives: {root}/internet/new   (the partner's server, standing in for the internet)
Press Ctrl-C to stop.
""")


def _watch(mailbox: object, stop: threading.Event, exit_after: float | None) -> None:
    started, seen = time.monotonic(), 0
    while not stop.wait(0.5):
        count = len(mailbox.messages())  # type: ignore[attr-defined]
        if count != seen:
            _say(f"  {count} mail(s) in the internal mailbox ({time.monotonic() - started:.0f} s)")
            seen = count
        if exit_after is not None and time.monotonic() - started > exit_after:
            return
