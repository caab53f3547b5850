"""Hand commands that write the inner agent's shared state, run on a standby host (D98):
refused with exit 4 and a message naming the lease's holder; allowed on the active host and
on a state no agent holds."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentkit.lease import Claimant, Taken
from agentkit.leasekeeper import LeaseStore
from inner_agent.config import LeaseSection
from maildiode.commands.standby_guard import StandbyRefused, standby_refusal
from tests.support.command import maildiode

CSV = "email,name,department,role\nkim@corp.example,Kim,Sales,\nlee@corp.example,Lee,Sales,head\n"


def _held_by(state: Path, holder: str, *, expires_in_s: float = 600.0) -> None:
    state.mkdir(parents=True, exist_ok=True)
    lease = LeaseStore(state)
    lease.attempt(Claimant(holder, 4242, expires_in_s))
    lease.close()


def test_the_role_decides_who_may_write(tmp_path: Path) -> None:
    here = LeaseSection(holder="host-b")
    assert standby_refusal("x", tmp_path, here) is None  # unheld: never taken
    _held_by(tmp_path, "host-b")
    assert standby_refusal("x", tmp_path, here) is None  # active: this host's agent
    refusal = standby_refusal("x", tmp_path / "other", here)
    assert refusal is None
    _held_by(tmp_path / "other", "host-a")
    refusal = standby_refusal("directory import", tmp_path / "other", here)
    assert refusal is not None
    assert refusal.startswith("directory import: refused: this host (host-b) is a standby")
    assert "Run it on host-a" in refusal
    later = standby_refusal("x", tmp_path / "other", here, now=10**10)  # its lease expired
    assert later is None


def test_directory_import_on_a_standby_host_is_refused_and_changes_nothing(
    tmp_path: Path,
) -> None:
    """The old command imported (exit 0, two people added) from the standby host."""
    config = tmp_path / "inner.toml"
    config.write_text('[state]\ndir = "inner"\n[lease]\nholder = "host-b"\n'
                      '[outbound]\ndirectory_db = "dir.db"\n')  # fmt: skip
    (tmp_path / "hr.csv").write_text(CSV)
    _held_by(tmp_path / "inner", "host-a")
    refused = maildiode("directory", "import", str(tmp_path / "hr.csv"), "-c", str(config))
    assert refused.returncode == 4
    assert "held by host-a" in refused.stderr
    assert maildiode("directory", "list", "-c", str(config)).stdout == ""
    dry = maildiode("directory", "import", str(tmp_path / "hr.csv"), "--dry-run", "-c",
                    str(config))  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    config.write_text(config.read_text().replace('holder = "host-b"', 'holder = "host-a"'))
    done = maildiode("directory", "import", str(tmp_path / "hr.csv"), "-c", str(config))
    assert done.returncode == 0, done.stderr  # on the active host it imports
    assert "kim@corp.example" in maildiode("directory", "list", "-c", str(config)).stdout


def test_a_standby_taking_over_while_import_reads_its_file_stops_the_import(
    tmp_path: Path,
) -> None:
    """A real command frozen between its check and its write: ``import`` reads its file from
    a FIFO, so it waits there, past its start's check, until the test writes the file. This
    host's agent held the lease at the check; meanwhile its lease expired and the standby
    (host-a) took it. The old command imported anyway (exit 0, two people added): it had
    looked at the lease only at its start. Now: exit 4, the directory untouched."""
    config = tmp_path / "inner.toml"
    config.write_text('[state]\ndir = "inner"\n[lease]\nholder = "host-b"\n'
                      '[outbound]\ndirectory_db = "dir.db"\n')  # fmt: skip
    fifo = tmp_path / "hr.csv"
    os.mkfifo(fifo)
    _held_by(tmp_path / "inner", "host-b", expires_in_s=1.0)  # this host: active
    command = subprocess.Popen(
        [sys.executable, "-m", "maildiode", "directory", "import", str(fifo), "-c", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        writer = _open_when_read(fifo, command)  # the command passed its check: it reads now
        time.sleep(1.1)  # host-b's lease expires...
        _held_by(tmp_path / "inner", "host-a")  # ...and the standby takes over
        with os.fdopen(writer, "w") as file:
            file.write(CSV)
        _, err = command.communicate(timeout=60)
    finally:
        command.kill()
    assert command.returncode == 4, err
    assert "refused: this host (host-b) is a standby" in err
    assert "held by host-a (it was taken while this command ran)" in err
    assert maildiode("directory", "list", "-c", str(config)).stdout == ""


def _open_when_read(fifo: Path, command: subprocess.Popen[str]) -> int:
    """The FIFO's writing end, once the command has opened it for reading."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and command.poll() is None:
        try:
            writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
            time.sleep(0.05)
            continue
        os.set_blocking(writer, True)
        return writer
    raise AssertionError(f"the command never read its file: {command.communicate()}")


def test_the_fenced_write_holds_the_lease_still_through_the_write(tmp_path: Path) -> None:
    """While the block runs, no agent can take or renew the lease (it waits for the lock);
    on the active host and on an unheld state the block runs; on a state with no lease.db
    nothing is locked (nothing to fence)."""
    from maildiode.commands.standby_guard import fenced_write  # new: the old code had none

    here = LeaseSection(holder="host-b")
    with fenced_write("x", tmp_path, here):
        pass  # no lease.db: runs, creates nothing
    assert not (tmp_path / "lease.db").exists()
    _held_by(tmp_path, "host-b", expires_in_s=0.0)  # expired at once: unheld
    taker = sqlite3.connect(tmp_path / "lease.db", timeout=0.2, isolation_level=None)
    with fenced_write("x", tmp_path, here):  # a take's first step is this, and it waits
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            taker.execute("BEGIN IMMEDIATE")
    taker.close()
    store = LeaseStore(tmp_path)
    assert isinstance(store.attempt(Claimant("host-a", 5353, 600.0)), Taken)  # after: free
    store.close()
    with pytest.raises(StandbyRefused, match="held by host-a"), fenced_write("x", tmp_path, here):
        raise AssertionError("the block must not run on a standby host")
