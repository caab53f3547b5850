"""The inner agent's side of the lease (inner_agent.standby): taken before the state opens,
refused while another host holds it, a restart on the same host at once, and ``took_over``
audited only when the lease came from another host."""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentkit.audit import AuditLog
from agentkit.leasekeeper import LeaseRefused, LeaseStore
from agentkit.settings import load_config
from inner_agent.config import InnerConfig
from inner_agent.preflight import preflight
from inner_agent.standby import HeldLease, claimant_of, free_addresses, take_lease
from maildiode.trial.layout import TrialPorts, make_folders, make_keys, write_configs
from maildiode.trial.stack import set_key

DEAD_PID = 2**22 + 12345  # above the kernel's pid_max default: no process has it


def config_as(folder: Path, holder: str) -> InnerConfig:
    path = folder / "inner.toml"
    text = set_key(path.read_text(encoding="utf-8"), "lease", "holder", f'"{holder}"')
    (folder / f"{holder}.toml").write_text(text, encoding="utf-8")
    return load_config(folder / f"{holder}.toml", InnerConfig)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    make_folders(tmp_path)
    make_keys(tmp_path / "keys")
    ports = TrialPorts(
        smtp_port=2525, outbound_port=2527, web_port=8025, internal_smtp="127.0.0.1:2526"
    )
    write_configs(tmp_path, ["corp.example"], ports)
    return tmp_path


def take(
    config: InnerConfig, *, standby: bool = False, stop: threading.Event | None = None
) -> HeldLease | None:
    return take_lease(config, standby=standby, stop=stop or threading.Event(),
                      on_lost=lambda why: None)  # fmt: skip


def test_the_example_holds_the_host_name_and_twenty_seconds(folder: Path) -> None:
    config = load_config(folder / "inner.toml", InnerConfig)
    assert config.lease.holder == ""
    assert config.lease.ttl_s == 20
    assert claimant_of(config).holder  # the host's name


def test_another_host_is_refused_and_a_standby_asked_to_stop_gives_up(folder: Path) -> None:
    held = take(config_as(folder, "intra-a"))
    assert held is not None
    try:
        with pytest.raises(LeaseRefused, match="held by intra-a"):
            take(config_as(folder, "intra-b"))
        stopped = threading.Event()
        stopped.set()
        assert take(config_as(folder, "intra-b"), standby=True, stop=stopped) is None
    finally:
        held.stop()


def test_a_takeover_from_another_host_is_audited_a_restart_on_the_same_host_is_not(
    folder: Path,
) -> None:
    a, b = config_as(folder, "intra-a"), config_as(folder, "intra-b")
    store = LeaseStore(a.state.dir, clock=lambda: 0.0)  # A's lease: expired long ago
    store.attempt(claimant_of(a))
    store.close()
    audit = AuditLog(folder / "audit.db", agent="inner")
    held = take(b)
    assert held is not None
    held.record_takeover(audit)
    held.stop()  # released: B's own restart comes next
    with contextlib.closing(sqlite3.connect(b.state.dir / "lease.db")) as db, db:
        db.execute("UPDATE lease SET pid = ?, expires = 9e18", (DEAD_PID,))  # B died holding it
    again = take(b)
    assert again is not None
    assert again.taken.lease.token == 3
    again.record_takeover(audit)
    again.stop()
    events = audit.query(step="took_over")
    assert len(events) == 1
    assert events[0].details["previous_holder"] == "intra-a"
    assert events[0].details["holder"] == "intra-b"


def config_listening_on(folder: Path, port: int) -> InnerConfig:
    """The example's config with its outbound intake on ``port`` (its web pages on a free one)."""
    from maildiode.trial.stack import free_port

    path = folder / "inner.toml"
    text = set_key(path.read_text(encoding="utf-8"), "outbound", "listen", f'"127.0.0.1:{port}"')
    text = set_key(text, "outbound.web", "listen", f'"127.0.0.1:{free_port()}"')
    (folder / "listening.toml").write_text(text, encoding="utf-8")
    return load_config(folder / "listening.toml", InnerConfig)


@contextlib.contextmanager
def held_port() -> Iterator[tuple[socket.socket, int]]:
    """A port another process (the active agent, on this host) listens on."""
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder, holder.getsockname()[1]


def test_a_standby_starts_although_the_holder_listens_on_its_addresses(folder: Path) -> None:
    """On one host the active agent listens where the standby will: only the standby's start
    lets that pass; any other problem with the address is still refused."""
    with held_port() as (_, port):
        config = config_listening_on(folder, port)
        as_active = preflight(config, "inner.toml", probes=False)
        as_standby = preflight(config, "inner.toml", probes=False, standby=True)
    assert [f.key for f in as_active if f.address_in_use] == ["outbound.listen"]
    assert not any(f.address_in_use for f in as_standby)
    assert [f for f in as_active if not f.address_in_use] == as_standby
    elsewhere = set_key((folder / "listening.toml").read_text(encoding="utf-8"), "outbound",
                        "listen", '"192.0.2.7:2527"')  # fmt: skip
    (folder / "elsewhere.toml").write_text(elsewhere, encoding="utf-8")
    foreign = load_config(folder / "elsewhere.toml", InnerConfig)
    problems = preflight(foreign, "inner.toml", probes=False, standby=True)
    assert any("not an address of this host" in f.problem for f in problems)


def test_a_standby_that_took_over_waits_for_the_old_holder_to_let_go(folder: Path) -> None:
    with held_port() as (holder, port):
        config = config_listening_on(folder, port)
        stop = threading.Event()
        threading.Timer(0.5, holder.close).start()  # the old holder's process ends
        started = time.monotonic()
        assert free_addresses(config, stop) is True
        waited = time.monotonic() - started
    assert waited >= 0.4


def test_a_standby_asked_to_stop_while_it_waits_for_its_addresses_gives_up(
    folder: Path,
) -> None:
    with held_port() as (_, port):
        config = config_listening_on(folder, port)
        stop = threading.Event()
        threading.Timer(0.3, stop.set).start()
        assert free_addresses(config, stop) is False
