"""SIGHUP (`systemctl reload`) reads the configuration again (issue 22.4): what can change at
once is applied, what needs a restart is named, a file that no longer loads is refused, and
the agent keeps running and serving through all of it."""

from __future__ import annotations

import signal
import smtplib
import time
from pathlib import Path

import pytest

from agentkit.reload import changed_keys, classify
from maildiode.commands.check import load_agent_config
from maildiode.trial.stack import AgentProcess, Ports, prepare, set_key, wait_for

pytestmark = pytest.mark.e2e


def _edit(path: Path, section: str, key: str, value: str) -> None:
    path.write_text(set_key(path.read_text(encoding="utf-8"), section, key, value), "utf-8")


def test_changed_keys_are_split_into_applied_and_needing_a_restart(tmp_path: Path) -> None:
    prepare(tmp_path, Ports())
    before = load_agent_config(tmp_path / "outer.toml", "outer")
    _edit(tmp_path / "outer.toml", "log", "level", '"debug"')
    _edit(tmp_path / "outer.toml", "smtp", "max_sessions", "150")
    _edit(tmp_path / "outer.toml", "audit", "retention_days", "800")
    after = load_agent_config(tmp_path / "outer.toml", "outer")
    keys = changed_keys(before, after)
    assert sorted(keys) == ["audit.retention_days", "log.level", "smtp.max_sessions"]
    assert classify(keys) == (("log.level", "audit.retention_days"), ("smtp.max_sessions",))


@pytest.mark.parametrize("agent", ["outer", "inner"])
def test_sighup_applies_names_refuses_and_the_agent_keeps_serving(
    tmp_path: Path, agent: str
) -> None:
    ports = Ports()
    prepare(tmp_path, ports)
    config, log = tmp_path / f"{agent}.toml", tmp_path / f"{agent}.log"
    process = AgentProcess(agent, config, log)
    port = ports.smtp if agent == "outer" else ports.outbound
    process.start(wait_port=port)
    main_running = f"maildiode-{agent} INFO {agent}_agent.main: {agent} agent running"
    wait_for(lambda: main_running in log.read_text(), 60, "the agent's main process running")
    try:
        _edit(config, "log", "level", '"debug"')
        limit = ("smtp", "max_sessions") if agent == "outer" else ("inject", "workers")
        _edit(config, *limit, "3")
        assert process.process is not None
        process.process.send_signal(signal.SIGHUP)
        wait_for(lambda: "takes effect at the next restart" in log.read_text(), 30, "the reload")
        text = log.read_text()
        assert "reload: log.level changed and is in force" in text
        assert f"reload: {'.'.join(limit)} changed; it takes effect at the next restart" in text

        config.write_text(config.read_text() + "\n[smtp\nbroken = \n", encoding="utf-8")
        process.process.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload refused" in log.read_text(), 30, "the refused reload")
        assert process.process.poll() is None  # still running
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:  # and still serving
            assert client.noop()[0] == 250
    finally:
        process.stop()


@pytest.mark.parametrize("agent", ["outer", "inner"])
def test_retention_days_apply_at_once_over_the_running_agents_folders(
    tmp_path: Path, agent: str
) -> None:
    """[retention] is in force after a reload (the next daily prune uses it); the folders it
    prunes stay the running agent's even when the file names others (a restart moves them)."""
    import functools
    from types import SimpleNamespace

    from agentkit.reload import apply_reloaded
    from inner_agent import main as inner_main
    from outer_agent import main as outer_main

    prepare(tmp_path, Ports())
    path = tmp_path / f"{agent}.toml"
    running = load_agent_config(path, agent)
    _edit(path, "retention", "quarantine_days", "20")
    section, key = ("spool", "dir") if agent == "outer" else ("state", "dir")
    _edit(path, section, key, f'"{tmp_path / "elsewhere"}"')
    new = load_agent_config(path, agent)
    applied, restart = classify(changed_keys(running, new))
    assert applied == ("retention.quarantine_days",)
    assert restart == (f"{section}.{key}",)

    checkpointer = SimpleNamespace(retention=None, stores=[])
    made = (inner_main if agent == "inner" else outer_main)._reloaded_stores
    apply_reloaded(new, checkpointer=checkpointer, stores=functools.partial(made, running))
    quarantine = {s.store: s for s in checkpointer.stores}[f"{agent}_quarantine"]
    assert quarantine.days == 20
    folder = running.spool.dir / "inbound" if agent == "outer" else running.state.dir
    old_file = folder / "quarantine" / "old.eml"
    old_file.parent.mkdir(parents=True, exist_ok=True)
    old_file.write_bytes(b"kept past its days")
    assert quarantine.prune(time.time() + 1) == 1  # the running folder, not "elsewhere"
    assert not old_file.exists()
