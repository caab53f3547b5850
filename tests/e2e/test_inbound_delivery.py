"""End to end, with real parts: outer agent -> carrier -> inner agent -> real Postfix (Maildir).

Duplicate bound under kill -9 (docs/inner-agent.md): a notification the internal server
accepted in the instant before the agent recorded it is sent again after restart, so at most
one duplicate per injection worker (``inject.workers``) and one from the link thread's direct
path (D16) per crash.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from maildiode.trial.stack import wait_for
from protocol.receiver import DEFAULT_MAX_BUNDLES_IN_FLIGHT
from tests.support.inbound import DOMAIN, HostileCarrier, InboundStack, simple_mail

pytestmark = pytest.mark.e2e

# How long the internal server stays down in the outage test: a full minute, as the issue
# asks (with retry_initial_s=1 doubling to retry_max_s=4 that is well over ten retry rounds).
DOWN_S = float(os.environ.get("MAILDIODE_E2E_DOWN_S", "60"))
INJECT_WORKERS = 4


def _send_all(stack: InboundStack, messages: list[EmailMessage], threads: int = 4) -> None:
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(stack.send, messages))


def test_hostile_linkage_every_mail_exactly_once_every_bad_file_quarantined(tmp_path: Path) -> None:
    root = tmp_path / "stack"
    (root / "link/in").mkdir(parents=True)
    carrier = HostileCarrier(root / "link/in/send", root / "link/in/recv", seed=7)
    tokens = [f"hostile-{n:03d}" for n in range(24)]
    with InboundStack(root, carrier=carrier) as stack:
        _send_all(stack, [simple_mail(t, html=n % 2 == 0) for n, t in enumerate(tokens)])
        stack.wait_tokens(tokens, "hostile-", timeout_s=120)
        wait_for(lambda: carrier.idle() and stack.recv_empty(), 60, "the carrier's replays")
        wait_for(lambda: stack.link_quarantined() >= carrier.mischief.bad, 30, "quarantine")
        time.sleep(2)  # a late duplicate would show up now
        counts = stack.tokens("hostile-")
        mischief = carrier.mischief
        assert mischief.bad >= 5
        assert mischief.duplicates >= 3
        assert mischief.replays >= 2
        assert {t: counts[t] for t in tokens} == dict.fromkeys(tokens, 1)
        assert len(stack.delivered()) == len(tokens)
        assert stack.link_quarantined() == mischief.bad
        # An auditor inside finds a mail by its subject and follows it to the internal server.
        trail = _audit(root / "inner.toml", "--search", "HOSTILE-007 견적", "--trail")
        assert {e["subject"] for e in trail if e["step"] == "received_inside"} == {
            "hostile-007 견적 요청드립니다"
        }  # fmt: skip
        inside = [e for e in trail if e["agent"] == "inner"]
        assert [e["step"] for e in inside] == ["received_inside", "injected"]
        assert inside[1]["reply"].startswith("250")
        # The outer agent's events of the same mail come inside with its status reports (D35):
        # whichever have arrived precede the inner ones in the trail.
        imported = [e for e in trail if e["agent"] == "outer"]
        assert trail[: len(imported)] == imported
        assert {e["step"] for e in imported} <= {"received", "rendered", "published"}
        # and on the internet side by the recipient and the client address
        outside = _audit(root / "outer.toml", "--search", "127.0.0.1", "--step", "received")
        assert len(outside) >= len(tokens)
        assert all(e["rcpts"] == [f"user@{DOMAIN}"] for e in outside)


def _audit(config: Path, *args: str) -> list[dict[str, object]]:
    """``maildiode audit -c CONFIG ARGS --format jsonl``, as an auditor would run it."""
    done = subprocess.run(
        [sys.executable, "-m", "maildiode", "audit", "-c", str(config), *args, "--format", "jsonl"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_internal_server_down_mails_wait_and_arrive_after(tmp_path: Path) -> None:
    inner = {("inject", "retry_initial_s"): "1", ("inject", "retry_max_s"): "4",
             ("inject", "attempts_per_pass"): "2"}  # fmt: skip
    tokens = [f"outage-{n:02d}" for n in range(6)]
    stack = InboundStack(tmp_path / "stack", inner=inner).start(postfix=False)
    try:
        _send_all(stack, [simple_mail(t) for t in tokens])
        wait_for(lambda: stack.queue_stats().get("queued", 0) == len(tokens), 60, "queued")
        time.sleep(DOWN_S)
        stats = stack.queue_stats()
        assert stats["queued"] == len(tokens)
        assert stats["queued_max_attempts"] >= 3  # several retry rounds while down
        stack.postfix.start()
        counts = stack.wait_tokens(tokens, "outage-", timeout_s=60)
        time.sleep(1)
        assert {t: stack.tokens("outage-")[t] for t in tokens} == dict.fromkeys(tokens, 1)
        assert counts.total() == len(tokens)
        assert stack.queue_stats().get("queued", 0) == 0
    finally:
        stack.stop()


def test_kill_9_of_inner_agent_mid_stream_loses_nothing(tmp_path: Path) -> None:
    tokens = [f"crash-{n:03d}" for n in range(30)]
    with InboundStack(tmp_path / "stack") as stack:
        _send_all(stack, [simple_mail(t) for t in tokens[:15]])
        wait_for(lambda: len(stack.delivered()) >= 3, 60, "the first notifications")
        stack.inner.kill9()
        _send_all(stack, [simple_mail(t) for t in tokens[15:]])
        stack.inner.start()
        counts = stack.wait_tokens(tokens, "crash-", timeout_s=120)
        time.sleep(2)
        counts = stack.tokens("crash-")
        assert all(counts[t] >= 1 for t in tokens)  # nothing lost
        duplicates = counts.total() - len(tokens)
        assert duplicates <= INJECT_WORKERS + 1  # the documented bound


def test_a_backlog_beyond_the_receivers_limit_after_the_inner_agent_was_down(
    tmp_path: Path,
) -> None:
    """More whole bundles wait in the receive folder than the receiver may hold partial ones
    (DEFAULT_MAX_BUNDLES_IN_FLIGHT): a restarted inner agent delivers every one, refuses none."""
    tokens = [f"backlog-{n:03d}" for n in range(DEFAULT_MAX_BUNDLES_IN_FLIGHT + 44)]
    with InboundStack(tmp_path / "stack") as stack:
        stack.inner.stop()
        _send_all(stack, [simple_mail(t) for t in tokens], threads=8)
        recv = stack.root / "link/in/recv"
        wait_for(lambda: len(list(recv.glob("*.mdc"))) >= len(tokens), 120, "the backlog")
        stack.inner.start()
        # (the audit log is cheap to poll; parsing the whole Maildir again each time is not)
        wait_for(lambda: stack.injected_count() >= len(tokens), 120,
                 "every notification accepted by Postfix")  # fmt: skip
        wait_for(lambda: len(stack.postfix.messages()) >= len(tokens), 60, "the Maildir")
        counts = stack.tokens("backlog-")
        assert {t: counts[t] for t in tokens} == dict.fromkeys(tokens, 1)
        assert stack.link_quarantined() == 0


def test_notification_headers_cannot_be_injected_and_spoofing_is_flagged(tmp_path: Path) -> None:
    evil_subject = base64.b64encode("inject-1 제목\r\nBcc: boss@corp.example\r\nX-Evil: 1".encode())
    injected = EmailMessage()
    injected["From"] = '"Mallory\r\nBcc: all@evil.example" <mallory@evil.example>'.replace(
        "\r\n", " "
    )
    injected["To"] = f"user@{DOMAIN}"
    injected.set_content("본문")
    del injected["Subject"]
    raw = injected.as_bytes().replace(
        b"\nTo:", b"\nSubject: =?UTF-8?B?" + evil_subject + b"?=\nTo:", 1
    )
    spoof = simple_mail("spoof-1", sender=f"ceo@{DOMAIN}")
    with InboundStack(tmp_path / "stack") as stack:
        import smtplib

        with smtplib.SMTP("127.0.0.1", stack.ports.smtp) as smtp:
            smtp.sendmail("mallory@evil.example", [f"user@{DOMAIN}"], raw)
        stack.send(spoof)
        wait_for(lambda: len(stack.delivered()) >= 2, 60, "two notifications")
        raws = [p.read_bytes() for p in stack.postfix.messages()]
    assert len(raws) == 2  # nobody else got a copy
    by_subject = {str(m["Subject"]): m for m in map(_parse, raws)}
    notice = next(m for s, m in by_subject.items() if "inject-1" in s)
    raw_notice = next(r for r in raws if "inject-1" in str(_parse(r)["Subject"]))
    header_block = raw_notice.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    header_names = [line.split(b":")[0].lower() for line in header_block.splitlines()
                    if line and not line[:1].isspace()]  # fmt: skip
    assert b"bcc" not in header_names
    assert b"x-evil" not in header_names
    assert header_names.count(b"subject") == 1
    assert header_names.count(b"from") == 1
    assert notice["Subject"].startswith("[외부메일]")
    assert "Bcc:" in str(notice["Subject"])  # kept as text inside the one Subject

    warning = next(m for s, m in by_subject.items() if "spoof-1" in s)
    assert "[사칭 의심]" in str(warning["Subject"])
    assert warning["From"].addresses[0].addr_spec != f"ceo@{DOMAIN}"
    html = warning.get_body(("html",)).get_content()
    assert "사칭" in html
    assert DOMAIN in html
    assert "사칭" not in notice.get_body(("html",)).get_content()


def _parse(raw: bytes) -> EmailMessage:
    return message_from_bytes(raw, policy=policy.default)  # type: ignore[return-value]
