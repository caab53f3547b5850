"""Hand commands that write the inner agent's shared state, run on a standby host (D98):
refused with exit 4 and a message naming the lease's holder; allowed on the active host and
on a state no agent holds."""

from __future__ import annotations

from pathlib import Path

from agentkit.lease import Claimant
from agentkit.leasekeeper import LeaseStore
from inner_agent.config import LeaseSection
from maildiode.commands.standby_guard import standby_refusal
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
