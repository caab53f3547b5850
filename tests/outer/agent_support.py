"""A real outer agent in a child process, its config folder, and the inner side of its links."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from maildiode.trial.layout import make_folders
from maildiode.trial.stack import free_port
from outer_agent.config import example_toml

ROOT = Path(__file__).resolve().parents[2]


def set_key(text: str, section: str, key: str, value: str) -> str:
    """Set ``key = value`` inside ``[section]`` of a TOML text (adding the line if absent)."""
    head = f"[{section}]\n"
    start = text.index(head) + len(head)
    end = text.find("\n[", start)
    end = len(text) if end < 0 else end + 1
    body = text[start:end]
    line = re.compile(rf"^#?\s*{re.escape(key)}\s*=.*$", re.M)
    body = (
        line.sub(f"{key} = {value}", body, count=1)
        if line.search(body)
        else f"{key} = {value}\n" + body
    )
    return text[:start] + body + text[end:]


@dataclass
class AgentDir:
    root: Path
    port: int
    config: Path
    inner_key: object  # protocol.SigningKey of the inner side
    outer_verify: object  # protocol.VerifyKey of the outer agent

    @property
    def send_dir(self) -> Path:
        return self.root / "link" / "in" / "send"

    @property
    def recv_dir(self) -> Path:
        return self.root / "link" / "out" / "recv"

    @property
    def audit_path(self) -> Path:
        return self.root / "outer" / "audit.db"

    def edit(self, section: str, key: str, value: str) -> None:
        self.config.write_text(set_key(self.config.read_text(), section, key, value))


def make_agent_dir(root: Path, *, relay: str | None = None, processes: int = 2) -> AgentDir:
    from protocol import SigningKey

    make_folders(root)  # as maildiode init does: the agent refuses a folder that is not there
    keys = root / "keys"
    outer, inner = SigningKey.generate(), SigningKey.generate()
    outer.save(keys / "outer.key")
    outer.verify_key.save(keys / "outer.pub")
    inner.verify_key.save(keys / "inner.pub")
    port = free_port()
    text = example_toml(domains=["corp.example"], smtp_listen=f"127.0.0.1:{port}", relay=relay)
    text = set_key(text, "render", "processes", str(processes))
    text = set_key(text, "link", "settle_s", "0")
    text = set_key(text, "link", "rescan_s", "0.2")
    text = set_key(text, "delivery", "poll_s", "0.2")
    text = set_key(text, "delivery", "retry_initial_s", "0.5")
    text = set_key(text, "delivery", "starttls", '"off"')
    text = set_key(text, "spool", "min_free_bytes", "0")
    config = root / "outer.toml"
    config.write_text(text)
    return AgentDir(root, port, config, inner, outer.verify_key)


@dataclass
class AgentProcess:
    agent: AgentDir
    proc: subprocess.Popen | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.agent.root / "agent.log"

    def start(self, timeout: float = 60.0) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "maildiode", "outer", "-c", str(self.agent.config)],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"agent exited {self.proc.returncode}: {self.log.read_text()[-3000:]}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.agent.port), timeout=1) as sock:
                    if sock.recv(3) == b"220":
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("agent did not start listening")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._reap_workers()

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self._reap_workers()
        return code

    def _reap_workers(self) -> None:
        """Render workers of a killed agent notice the closed pipe and exit; wait for that."""
        assert self.proc is not None
        pid = self.proc.pid
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _children_of(pid):
            time.sleep(0.05)


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


@dataclass
class InnerSide:
    """Plays the linkage product and the inner agent: reads what the outer agent published."""

    agent: AgentDir
    state: Path

    def __post_init__(self) -> None:
        from protocol import FolderIntake, Keyring, LinkReader, Receiver

        self.reader = LinkReader(
            intake=FolderIntake(
                self.agent.send_dir,
                self.state / "work",
                self.state / "quarantine",
                settle_s=0,
                watch=False,
            ),
            receiver=Receiver(self.state / "recv", "inbound", Keyring([self.agent.outer_verify])),
        )
        self.bundles: list = []  # mail (DATA bundles)
        self.controls: list = []  # the outer agent's status reports (CONTROL bundles)

    def poll(self) -> list:
        """The mail bundles received so far; status reports go to ``controls``."""
        from protocol import Kind

        def keep(bundle) -> None:
            (self.bundles if bundle.kind == Kind.DATA else self.controls).append(bundle)

        self.reader.poll(keep)
        return self.bundles

    def packages(self):
        from mailsafe.payload import decode_package

        return [(b, decode_package(b.data)) for b in self.bundles]

    def publish_outbound(self, mail, bundle_id: bytes) -> None:
        from mailsafe.payload import encode_outbound
        from protocol import FolderTransport, Sender

        sender = Sender(
            self.state / "send",
            "outbound",
            self.agent.inner_key,
            FolderTransport(self.agent.recv_dir),
        )
        sender.publish(encode_outbound(mail), bundle_id)
        sender.close()


def wait_for(condition, timeout: float = 60.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError("condition not reached in time")
