"""The outer agent's spool disk fills up. A mail is either refused before the 250 (452/451, the
sender tries again) or, once answered 250, delivered exactly once after space is freed; the
agent never dies of it. Real parts: the whole inbound path with a real Postfix; the outer
agent's spool on a small tmpfs we fill."""

from __future__ import annotations

import smtplib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from maildiode.trial.stack import wait_for
from tests.support.inbound import DOMAIN, InboundStack, simple_mail
from tests.support.smalldisk import fill, free
from tests.support.smalldisk import small_disk as mounted

pytestmark = pytest.mark.e2e

SPOOL_FS_BYTES = 16 << 20
MIN_FREE_BYTES = 1 << 20  # intake answers 452 below this much free space


@pytest.fixture
def spool_disk(tmp_path: Path) -> Iterator[Path]:
    with mounted(tmp_path / "stack" / "outer" / "spool", SPOOL_FS_BYTES) as mount_point:
        yield mount_point


def _try_send(stack: InboundStack, token: str) -> int:
    """The SMTP code the outer agent ended the transaction with (250 = it has the mail)."""
    try:
        with smtplib.SMTP("127.0.0.1", stack.ports.smtp, timeout=60) as client:
            client.send_message(simple_mail(token), "sender@partner.example", [f"user@{DOMAIN}"])
    except smtplib.SMTPResponseException as exc:
        return exc.smtp_code
    except smtplib.SMTPRecipientsRefused as exc:
        return next(iter(exc.recipients.values()))[0]
    return 250


def test_full_spool_refuses_before_250_and_loses_nothing_after(spool_disk: Path) -> None:
    stack = InboundStack(
        spool_disk.parents[1],
        outer={("spool", "min_free_bytes"): str(MIN_FREE_BYTES)},
    )
    with stack:
        stack.send(simple_mail("spool-warmup"))
        stack.wait_tokens(["spool-warmup"], "spool-", 60)

        fill(spool_disk)  # no room at all: nothing may be accepted
        time.sleep(1)  # the intake's free-space figure is at most half a second old
        refused = [f"spool-refused-{n}" for n in range(3)]
        codes = {token: _try_send(stack, token) for token in refused}
        assert all(400 <= code < 500 for code in codes.values()), codes

        # Room to accept a few mails, then none for rendering them: the pipeline meets ENOSPC.
        free(spool_disk)
        fill(spool_disk, leave=3 * MIN_FREE_BYTES)
        time.sleep(1)
        tried = [f"spool-{n:02d}" for n in range(6)]
        codes.update({token: _try_send(stack, token) for token in tried})
        fill(spool_disk)
        time.sleep(6)
        assert stack.outer.process is not None
        assert stack.outer.process.poll() is None, "the outer agent must not die of a full disk"

        free(spool_disk)
        accepted = [token for token, code in codes.items() if code == 250]
        assert accepted, f"some mails should have been accepted: {codes}"
        counts = stack.wait_tokens(accepted, "spool-", 120)
        wait_for(lambda: stack.queue_stats().get("queued", 0) == 0, 60, "the inner queue to empty")
        counts = stack.tokens("spool-")
    assert {t: counts[t] for t in accepted} == dict.fromkeys(accepted, 1)
    assert all(counts[t] == 0 for t, code in codes.items() if code != 250)
