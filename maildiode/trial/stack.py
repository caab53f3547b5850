"""A whole maildiode on one machine: configs, both agents as processes, loopback ports.

Used by ``maildiode demo``, the end-to-end tests and the end-to-end benchmark, so all three run
exactly what an administrator runs: ``python -m maildiode outer|inner -c FILE``.
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from maildiode.trial.layout import TrialPorts, make_folders, make_keys, write_configs

__all__ = [
    "AgentProcess",
    "Ports",
    "drop_section",
    "free_port",
    "port_open",
    "prepare",
    "set_key",
    "wait_for",
]

# How long an agent may take to start listening (imports PyMuPDF, starts render workers).
START_TIMEOUT_S = 60.0
# How long an agent may take to stop after SIGTERM before it is killed.
STOP_TIMEOUT_S = 30.0


# Ports already handed out by this process: a probe closes its socket, so without this two
# calls could return the same port before either is bound.
_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A loopback TCP port nobody listens on, from just below the kernel's ephemeral range.

    A port from ``bind(0)`` comes from the ephemeral range, which the kernel also gives to every
    outgoing connection on the machine: between the probe and the real bind, any ``connect()``
    may take it (a CI run failed with "Address already in use" that way). Below the range a
    port is only taken by someone binding it on purpose.
    """
    low = _ephemeral_range_start()
    chooser = random.SystemRandom()
    for _ in range(500):
        port = chooser.randrange(max(1024, low - 12000), low)
        if port not in _HANDED_OUT and _bindable(port):
            _HANDED_OUT.add(port)
            return port
    raise OSError(f"no free loopback port found below {low}")


def _ephemeral_range_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass(frozen=True)
class Ports:
    smtp: int = field(default_factory=free_port)  # outer agent's intake
    internal: int = field(default_factory=free_port)  # the internal mail server
    outbound: int = field(default_factory=free_port)  # inner agent's outbound intake
    web: int = field(default_factory=free_port)  # inner agent's approval web
    internet: int = field(default_factory=free_port)  # the demo's "internet": approved mail


def set_key(text: str, section: str, key: str, value: str) -> str:
    """Set ``key = value`` (value written as TOML) inside ``[section]`` of an example file."""
    start = text.index(f"[{section}]\n")
    end_match = re.compile(r"^\[", re.M).search(text, start + 1)
    end = end_match.start() if end_match else len(text)
    body = text[start:end]
    line = re.compile(rf"^#? ?{re.escape(key)} = .*$", re.M)
    if line.search(body):
        body = line.sub(lambda _: f"{key} = {value}", body, count=1)
    else:
        body = body.rstrip("\n") + f"\n{key} = {value}\n\n"
    return text[:start] + body + text[end:]


def drop_section(text: str, section: str) -> str:
    """Remove ``[section]`` and its sub-tables from an example file."""
    pattern = re.compile(rf"^\[{re.escape(section)}(\.[^\]]+)?\]\n(?:(?!^\[).*\n?)*", re.M)
    return pattern.sub("", text)


def prepare(
    root: Path,
    ports: Ports,
    *,
    domains: tuple[str, ...] = ("corp.example",),
    outbound: bool = True,
    relay: str | None = None,
    inner: dict[tuple[str, str], str] | None = None,
    outer: dict[tuple[str, str], str] | None = None,
) -> None:
    """``maildiode init`` into ``root``, then fast-link settings and any overrides.

    The carrier renames files into place atomically, so the agents need not wait for files to
    settle (``settle_s = 0``); a real linkage product may need the default of 1 s.
    """
    trial = TrialPorts(
        smtp_port=ports.smtp, outbound_port=ports.outbound, web_port=ports.web,
        internal_smtp=f"127.0.0.1:{ports.internal}", relay=relay,
    )  # fmt: skip
    root.mkdir(parents=True, exist_ok=True)
    make_folders(root)
    make_keys(root / "keys")
    write_configs(root, domains, trial)
    fast = {("link", "settle_s"): "0", ("link", "rescan_s"): "1"}
    for name, overrides in (
        ("inner", {**fast, **(inner or {})}),
        ("outer", {**fast, **(outer or {})}),
    ):
        path = root / f"{name}.toml"
        text = path.read_text(encoding="utf-8")
        if name == "inner" and not outbound:
            text = drop_section(text, "outbound")
        for (section, key), value in overrides.items():
            text = set_key(text, section, key, value)
        path.write_text(text, encoding="utf-8")


def wait_for(
    condition: Callable[[], bool], timeout_s: float, what: str, step_s: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(step_s)


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class AgentProcess:
    """``python -m maildiode AGENT -c FILE`` with its output in a log file."""

    def __init__(
        self, agent: str, config: Path, log_path: Path, args: tuple[str, ...] = ()
    ) -> None:
        """``args``: more options for the agent (``--standby``)."""
        self.agent, self.config, self.log_path, self.args = agent, config, log_path, args
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, wait_port: int | None = None) -> None:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "maildiode", self.agent, "-c", str(self.config), *self.args],
            stdout=self._log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        if wait_port is not None:
            wait_for(lambda: self._alive() and port_open(wait_port), START_TIMEOUT_S,
                     f"{self.agent} agent on port {wait_port} (log: {self.log_path})")  # fmt: skip

    def _alive(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"{self.agent} agent exited; see {self.log_path}")
        return True

    def stop(self) -> int | None:
        """SIGTERM and wait; kill after STOP_TIMEOUT_S. Returns the exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._close_log()
        return self.process.returncode

    def kill9(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
