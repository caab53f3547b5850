"""Backup mid-stream, destroy both agents' state, restore: nothing acknowledged before the
backup is lost (issue 22.5).

Mail flows through the real pair (Postfix as the internal server) while `maildiode backup`
copies each agent's state. Then both agents are killed with -9 and their state folders
deleted, as a dead disk would; `maildiode restore` puts the backups back and the agents start
again. Every mail that got its 250 before the backup began must reach the mailbox (a mail
delivered twice is allowed: the restored state predates some deliveries).
"""

from __future__ import annotations

import shutil
import smtplib
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from maildiode.commands.backup import plan_for
from maildiode.commands.check import load_agent_config
from maildiode.trial.stack import wait_for
from tests.support.inbound import InboundStack, simple_mail

pytestmark = pytest.mark.e2e


def maildiode(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "maildiode", *args], capture_output=True, text=True, timeout=300
    )


class Stream:
    """Sends numbered mails one after another until stopped; remembers each one's 250 time."""

    def __init__(self, stack: InboundStack) -> None:
        self.stack = stack
        self.acked: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            token = f"bk-{n:04d}"
            try:
                self.acked[token] = self.stack.send(simple_mail(token))
            except (OSError, smtplib.SMTPException):
                time.sleep(0.2)  # the outer agent is being killed: a real MTA retries later
            n += 1
            time.sleep(0.05)

    def __enter__(self) -> Stream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


def test_backup_mid_stream_then_loss_of_both_hosts_then_restore_loses_nothing_acknowledged(
    tmp_path: Path,
) -> None:
    root = tmp_path / "stack"
    with InboundStack(root) as stack:
        # The internal server is down all along, so nothing is delivered before the loss: every
        # mail acknowledged before the backup can only reach the mailbox from the backup.
        stack.postfix.stop()
        with Stream(stack) as stream:
            wait_for(lambda: len(stream.acked) >= 15, 120, "the first mails accepted")
            began = time.time()
            for agent in ("outer", "inner"):
                made = maildiode("backup", "-c", str(root / f"{agent}.toml"), str(tmp_path / agent))
                assert made.returncode == 0, made.stderr
                assert "keys NOT included" in made.stdout
            wait_for(lambda: len(stream.acked) >= 40, 120, "more mail after the backup")
        _every_store_is_in_the_plan(root)
        before = sorted(t for t, at in stream.acked.items() if at < began)
        assert len(before) >= 15

        stack.outer.kill9()
        stack.inner.kill9()
        for state in ("outer", "inner"):  # the disk is gone: every store with it
            shutil.rmtree(root / state)
        for agent in ("outer", "inner"):
            put = maildiode("restore", "-c", str(root / f"{agent}.toml"), str(tmp_path / agent))
            assert put.returncode == 0, put.stderr
        assert not stack.postfix.messages()
        stack.postfix.start()
        stack.inner.start()
        stack.outer.start(wait_port=stack.ports.smtp)

        counts = stack.wait_tokens(before, "bk-", timeout_s=180)
        assert all(counts[token] >= 1 for token in before)
        assert stack.link_quarantined() == 0


def _every_store_is_in_the_plan(root: Path) -> None:
    """No file the running pair wrote lies outside what backup copies (a store added later and
    forgotten by plan_for fails here), apart from the link folders, keys, configs and logs."""
    places = [
        item.path
        for agent in ("outer", "inner")
        for item in plan_for(
            agent, root / f"{agent}.toml", load_agent_config(root / f"{agent}.toml", agent)
        ).state
    ]
    outside = [
        path
        for path in root.rglob("*")
        if path.is_file()
        and path.relative_to(root).parts[0] not in ("link", "keys")
        and path.suffix not in (".toml", ".log")
        and not any(_database(path) == place or path.is_relative_to(place) for place in places)
    ]
    assert outside == []


def _database(path: Path) -> Path:
    """The database a SQLite companion file belongs to (its log is in the online backup)."""
    for companion in ("-wal", "-shm", "-journal"):
        if path.name.endswith(companion):
            return path.with_name(path.name.removesuffix(companion))
    return path


def test_restore_refuses_while_state_is_there_and_names_the_folder(tmp_path: Path) -> None:
    root = tmp_path / "stack"
    with InboundStack(root) as stack:
        stack.send(simple_mail("bk-one"))
        stack.wait_tokens(["bk-one"], "bk-", timeout_s=60)
        made = maildiode("backup", "-c", str(root / "outer.toml"), str(tmp_path / "b"))
        assert made.returncode == 0, made.stderr
    refused = maildiode("restore", "-c", str(root / "outer.toml"), str(tmp_path / "b"))
    assert refused.returncode == 2
    assert "is not empty" in refused.stderr
    assert str(root / "outer") in refused.stderr
    assert "Traceback" not in refused.stderr
