"""Run INSIDE a checkout of the previous release (commit 88ef688), with its own code first on
sys.path (make_state.py does that): both agents as processes, Postfix as the internal server,
a mailbox standing for the internet, and mail left in every state an upgrade must carry:

- inbound: ``plain-0x`` delivered; ``held-00`` held by the receive filters and released (so
  delivered); ``held-01``/``held-02`` still held at the outer agent, awaiting the head;
- outbound: a plain mail delivered to the internet mailbox; a mail with a resident number
  held for the department head's approval.

The agents are stopped with SIGTERM (a clean stop), leaving the state in ROOT. Nothing here may
use code newer than that release: this file only calls what it had.

    python old_release_run.py ROOT
"""

from __future__ import annotations

import smtplib
import sqlite3
import sys
from pathlib import Path

from maildiode.demo.mailbox import MaildirMailbox
from maildiode.trial.stack import free_port, wait_for
from tests.support.outbound import plain_mail
from tests.support.receive_filters import REQUEST, FilterStack

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
RRN = "800101-1234567"


def _send_outbound(port: int, data: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        smtp.sendmail("user@corp.example", ["partner@example.com"], data)


def _held_outbound(root: Path) -> int:
    db = sqlite3.connect(f"{(root / 'inner/outbound/state.db').as_uri()}?mode=ro", uri=True)
    try:
        (n,) = db.execute("SELECT COUNT(*) FROM mails WHERE state = 'held'").fetchone()
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()
    return int(n)


def main(root: Path) -> None:
    internet_port = free_port()
    internet = MaildirMailbox(root.parent / "internet", port=internet_port)
    stack = FilterStack(root, rules=RULES)
    outer = root / "outer.toml"
    outer.write_text(outer.read_text(encoding="utf-8").replace(
        '# smarthost = "relay.example:25"', f'smarthost = "127.0.0.1:{internet_port}"'),
        encoding="utf-8")  # fmt: skip
    internet.start()
    try:
        with stack:
            stack.wait_policy(1)
            stack.send(["plain-00", "plain-01", "held-00", "held-01", "held-02"])
            wait_for(lambda: all(stack.count(t) for t in ("plain-00", "plain-01")), 180, "plain")
            wait_for(lambda: all(stack.count(t, to="head@corp.example", tag=REQUEST)
                                 for t in ("held-00", "held-01", "held-02")), 180, "requests")  # fmt: skip
            assert stack.decide("held-00", "release").returncode == 0
            wait_for(lambda: stack.count("held-00") == 1, 180, "held-00 released")
            port = stack.stack.ports.outbound
            _send_outbound(port, plain_mail(sender="user@corp.example"))
            wait_for(lambda: len(internet.messages()) == 1, 180, "outbound plain delivered")
            body = f"고객 명단: 홍길동 주민등록번호 {RRN}\n".encode()
            _send_outbound(port, b"Subject: customer list\r\nFrom: user@corp.example\r\n"
                           b"To: partner@example.com\r\nContent-Type: text/plain; charset=utf-8"
                           b"\r\n\r\n" + body)  # fmt: skip
            wait_for(lambda: _held_outbound(root) == 1, 180, "outbound held")
            print("old release: state made", flush=True)
    finally:
        internet.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
