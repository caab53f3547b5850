"""A hand command on the active host that loses the lease while it runs writes nothing (D108),
checked with two real inner agents on one state folder (as tests/e2e/test_standby_policy):

``maildiode directory import`` is run with the active agent's config and reads its file from
a FIFO, so the real process waits there, past its start's check of the lease; the active agent
is frozen (SIGSTOP, its host hung) and the standby takes the lease; then the file arrives. The
command refuses (exit 4: the state's lease was taken while it ran, nothing written) and the
directory is as it was; the same import on the new active host is made. The old command looked
at the lease only at its start and imported from the host that had lost it."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentkit.readonly import query_read_only
from tests.e2e.test_signin_flood import fill_directory
from tests.e2e.test_standby_outbound import TAKEOVER_LIMIT_S
from tests.support.command import maildiode
from tests.support.ha import HaStack, wait_for_log

pytestmark = [pytest.mark.e2e, pytest.mark.ha]

HR_CSV = "email,name,department,role\nnew@corp.example,New,Sales,\nhead@corp.example,H,Sales,head\n"


def people(root: Path) -> set[str]:
    rows = query_read_only(root / "inner" / "directory.db", "SELECT email FROM users")
    return {str(email) for (email,) in rows}


def import_reading_a_fifo(config: Path, fifo: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "maildiode", "directory", "import", str(fifo), "-c", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def writer_once_read(fifo: Path, command: subprocess.Popen[str]) -> int:
    """The FIFO's writing end, once the command has opened it to read (past its check)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and command.poll() is None:
        try:
            writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # no reader yet
                raise
            time.sleep(0.05)
            continue
        os.set_blocking(writer, True)
        return writer
    raise AssertionError(f"the command never read its file: {command.communicate()}")


def test_an_import_on_the_host_that_lost_the_lease_meanwhile_writes_nothing(
    tmp_path: Path,
) -> None:
    running = HaStack(tmp_path, outbound=True)
    fill_directory(tmp_path / "inner" / "directory.db")
    before = people(tmp_path)
    running.start()
    fifo = tmp_path / "hr.csv"
    os.mkfifo(fifo)
    command = import_reading_a_fifo(tmp_path / "inner.toml", fifo)  # on the active host
    active = running.active.process
    assert active is not None
    try:
        writer = writer_once_read(fifo, command)
        active.send_signal(signal.SIGSTOP)  # the active host hangs, the command waits
        wait_for_log(tmp_path / "inner-b.log", "took_over", TAKEOVER_LIMIT_S)
        with os.fdopen(writer, "w") as file:
            file.write(HR_CSV)
        _, err = command.communicate(timeout=60)
        assert command.returncode == 4, err
        assert "this host (inner-a) is a standby" in err
        assert "held by inner-b (it was taken while this command ran)" in err
        assert "Nothing was written." in err
        assert people(tmp_path) == before
        active.send_signal(signal.SIGCONT)  # wakes fenced, stops (D80)
        assert active.wait(30) == 4
        (tmp_path / "hr-b.csv").write_text(HR_CSV, encoding="utf-8")
        done = maildiode("directory", "import", str(tmp_path / "hr-b.csv"), "-c",
                         str(tmp_path / "inner-b.toml"))  # fmt: skip
        assert done.returncode == 0, done.stderr  # the new active host, its agent renewing
        assert "new@corp.example" in people(tmp_path)
    finally:
        command.kill()
        if active.poll() is None:
            active.send_signal(signal.SIGCONT)
        running.stop()
