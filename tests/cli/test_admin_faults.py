"""Issue 22: an administrator's mistake is found and said in one line, never a traceback.

``maildiode check`` reports every mistake at once (six mistakes, six lines, exit 2); each agent,
started for real (``python -m maildiode outer|inner -c ...``) under each start-up fault, prints
one line naming the file and key, exits 2, and writes the same line to its log file.

Run as root, the agents and ``check`` run as ``nobody`` (setpriv) over a layout that user owns: root may
write anywhere, so an unwritable folder is only unwritable to another user.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme

from agentkit.audit import VERSIONS as AUDIT_VERSIONS
from maildiode.trial.stack import free_port
from tests.support.greeter import smtp_greeter

NOBODY = 65534
AS_ROOT = os.geteuid() == 0
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def internal_smtp() -> Iterator[str]:
    with smtp_greeter() as address:
        yield address


@pytest.fixture
def layout(internal_smtp: str) -> Iterator[Path]:
    """A fresh ``maildiode init`` layout with log files, owned by the user the agents run as,
    in a folder that user can reach (pytest's own folder is root's alone)."""
    base = Path(tempfile.mkdtemp(prefix="maildiode-faults-"))
    base.chmod(0o755)
    root = base / "trial"
    ports = [str(free_port()) for _ in range(3)]
    init = run_maildiode("init", str(root), "--smtp-port", ports[0], "--outbound-port", ports[1],
                         "--web-port", ports[2], "--internal-smtp", internal_smtp, as_nobody=False)  # fmt: skip
    assert init.returncode == 0, init.stderr
    for agent in ("outer", "inner"):
        config = root / f"{agent}.toml"
        text = config.read_text(encoding="utf-8")
        logged = text.replace(f'# file = "{agent}.log"', f'file = "{agent}/{agent}.log"', 1)
        config.write_text(logged, encoding="utf-8")
    if AS_ROOT:
        for path in [root, *root.rglob("*")]:
            os.chown(path, NOBODY, NOBODY)
    try:
        yield root
    finally:
        for path in [root, *root.rglob("*")]:
            path.chmod(0o700 if path.is_dir() else 0o600)
        shutil.rmtree(base)


def run_maildiode(*args: str, as_nobody: bool = True) -> subprocess.CompletedProcess[str]:
    become = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    command = [*(become if AS_ROOT and as_nobody else []), sys.executable, "-m", "maildiode"]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=60, cwd=ROOT)


def listen_port(root: Path, agent: str) -> int:
    section = "[smtp]" if agent == "outer" else "[outbound]"
    text = (root / f"{agent}.toml").read_text(encoding="utf-8")
    after = text[text.index(section) :]
    line = next(x for x in after.splitlines() if x.startswith("listen = "))
    return int(line.split('"')[1].rpartition(":")[2])


def garbage(path: Path) -> None:
    path.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot a key at all\n")


Fault = Callable[[Path], None]

# (agent, fault, the key its one line names)
FAULTS: list[tuple[str, str, Fault, str]] = [
    ("outer", "garbage key file", lambda r: garbage(r / "keys/outer.key"), "keys.signing_key"),
    ("outer", "missing spool", lambda r: (r / "outer/spool").rmdir(), "spool.dir"),
    ("outer", "unwritable spool", lambda r: (r / "outer/spool").chmod(0o500), "spool.dir"),
    ("inner", "garbage key file", lambda r: garbage(r / "keys/inner.key"), "keys.signing_key"),
    ("inner", "missing spool", lambda r: (r / "inner/outbound").rmdir(), "outbound.spool_dir"),
    ("inner", "unwritable spool", lambda r: (r / "inner/outbound").chmod(0o500),
     "outbound.spool_dir"),
    ("inner", "read-only keys folder, no web.secret yet", lambda r: (r / "keys").chmod(0o500),
     "outbound.web.secret_key_file"),
    ("inner", "unreadable web.secret", lambda r: _secret(r, 0o000), "outbound.web.secret_key_file"),
    ("inner", "web.secret readable by others", lambda r: _secret(r, 0o644),
     "outbound.web.secret_key_file"),
]  # fmt: skip


def _secret(root: Path, mode: int) -> None:
    path = root / "keys/web.secret"
    path.write_bytes(os.urandom(32))
    if AS_ROOT:
        os.chown(path, NOBODY, NOBODY)
    path.chmod(mode)


def assert_one_line(result: subprocess.CompletedProcess[str], head: str) -> str:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith(head), output
    assert " — " in lines[0], output  # the fix is said
    return lines[0]


@pytest.mark.parametrize(
    ("agent", "what", "fault", "key"), FAULTS, ids=[f"{a}: {w}" for a, w, _, _ in FAULTS]
)
def test_each_start_up_fault_ends_in_one_line_without_a_traceback(
    layout: Path, agent: str, what: str, fault: Fault, key: str
) -> None:
    fault(layout)
    result = run_maildiode(agent, "-c", str(layout / f"{agent}.toml"))
    assert result.returncode == 2, (what, result.stdout + result.stderr)
    line = assert_one_line(result, f"{agent}.toml: {key}: ")
    log = (layout / agent / f"{agent}.log").read_text(encoding="utf-8")
    assert line in log  # the same line, in the agent's log


@pytest.mark.parametrize("agent", ["outer", "inner"])
def test_a_port_in_use_ends_in_one_line_without_a_traceback(layout: Path, agent: str) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", listen_port(layout, agent)))
        blocker.listen()
        result = run_maildiode(agent, "-c", str(layout / f"{agent}.toml"))
    assert result.returncode == 2, result.stdout + result.stderr
    key = "smtp.listen" if agent == "outer" else "outbound.listen"
    line = assert_one_line(result, f"{agent}.toml: {key}: ")
    assert "address already in use" in line


def test_check_reports_six_mistakes_in_six_lines(layout: Path) -> None:
    config = layout / "outer.toml"
    text = config.read_text(encoding="utf-8")
    text = text.replace("[render]\n", "[render]\nproceses = 2\n", 1)  # 1: a misspelt key
    text = text.replace('"link/out/recv"', '"link/out/recieve"', 1)  # 2: a misspelt folder
    text = text.replace('# tls_cert = "tls/outer.crt"', 'tls_cert = "tls/outer.crt"', 1)
    text = text.replace('# tls_key = "tls/outer.key"', 'tls_key = "tls/outer.key"', 1)
    config.write_text(text, encoding="utf-8")
    _mismatched_tls_pair(layout / "tls")  # 3: a certificate that is not its key's
    garbage(layout / "keys/inner.pub")  # 4: a peer key that is no key
    (layout / "outer/spool").chmod(0o500)  # 5: a spool the service user cannot write
    with socket.socket() as blocker:  # 6: the intake port taken
        blocker.bind(("127.0.0.1", listen_port(layout, "outer")))
        blocker.listen()
        result = run_maildiode("check", "-c", str(config))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    keys = [line.split(": ")[1] for line in lines]
    assert all(line.startswith("outer.toml: ") for line in lines), result.stderr
    assert sorted(keys) == sorted(["render.proceses", "link.recv_dir", "smtp.tls_cert",
                                   "keys.peer_keys", "spool.dir", "smtp.listen"]), result.stderr  # fmt: skip
    assert 'did you mean "processes"' in result.stderr
    assert "recieve does not exist" in result.stderr
    assert "does not match the key" in result.stderr
    assert "not writable by" in result.stderr
    assert "outer.toml: 6 error(s), 0 warning(s)" in result.stdout


def _mismatched_tls_pair(folder: Path) -> None:
    folder.mkdir()
    ca = trustme.CA()
    ca.issue_cert("a.test").cert_chain_pems[0].write_to_path(str(folder / "outer.crt"))
    ca.issue_cert("b.test").private_key_pem.write_to_path(str(folder / "outer.key"))
    for path in (folder, *folder.iterdir()):
        if AS_ROOT:
            os.chown(path, NOBODY, NOBODY)


def test_check_warns_of_a_relay_that_does_not_answer_and_an_empty_directory(
    layout: Path,
) -> None:
    """Warnings only: exit 1, each naming file, key and the address or the folder."""
    dead = f"127.0.0.1:{free_port()}"
    config = layout / "outer.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('# smarthost = "relay.example:25"', f'smarthost = "{dead}"'),
                      encoding="utf-8")  # fmt: skip
    outer = run_maildiode("check", "-c", str(config))
    assert outer.returncode == 1, outer.stderr
    assert outer.stderr.startswith(
        f"outer.toml: delivery.smarthost: no SMTP server answers at {dead}"
    )
    inner = run_maildiode("check", "-c", str(layout / "inner.toml"))
    assert inner.returncode == 1, inner.stderr
    assert "inner.toml: outbound.directory_db: the directory" in inner.stderr
    assert "is empty" in inner.stderr


def test_check_finds_link_folders_that_are_the_same_or_swapped(layout: Path) -> None:
    config = layout / "outer.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('"link/out/recv"', '"link/in/send"', 1), encoding="utf-8")
    same = run_maildiode("check", "-c", str(config))
    assert same.returncode == 2
    assert same.stderr.startswith("outer.toml: link.recv_dir: ")
    assert "this agent would read what it publishes" in same.stderr
    # swapped: the outer agent's own chunks wait where it reads
    swapped = text.replace('"link/out/recv"', '"link/SEND"', 1).replace(
        '"link/in/send"', '"link/out/recv"', 1
    )
    swapped = swapped.replace('"link/SEND"', '"link/in/send"', 1)
    config.write_text(swapped, encoding="utf-8")
    _own_chunk(layout / "keys/outer.key", layout / "link/in/send")
    found = run_maildiode("check", "-c", str(config))
    assert found.returncode == 2, found.stderr
    assert "holds chunks signed by this agent's own key" in found.stderr
    assert "look swapped" in found.stderr


def _own_chunk(key_file: Path, folder: Path) -> None:
    from protocol import SigningKey
    from protocol.chunk import PREFIX_STRUCT
    from protocol.limits import MAGIC

    key = SigningKey.load(key_file)
    (folder / "000001.mdc").write_bytes(PREFIX_STRUCT.pack(MAGIC, 1, 0, 0, 0, key.key_id))


@pytest.mark.parametrize("agent", ["outer", "inner"])
def test_state_from_a_newer_release_is_refused_in_one_line(layout: Path, agent: str) -> None:
    """Issue 22.6: an audit log whose schema version is newer than this release's is not
    touched; the agent names the file and both versions and exits 2."""
    audit = layout / agent / "audit.db"
    db = sqlite3.connect(audit)
    db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY)")
    db.execute("PRAGMA user_version = 99")
    db.commit()
    db.close()
    if AS_ROOT:
        os.chown(audit, NOBODY, NOBODY)
    result = run_maildiode(agent, "-c", str(layout / f"{agent}.toml"))
    assert result.returncode == 2, result.stdout + result.stderr
    line = assert_one_line(result, f"{agent}.toml: refused to start: {audit}: ")
    assert f"audit schema version 99 is newer than this release's {AUDIT_VERSIONS.version}" in line
    assert line in (layout / agent / f"{agent}.log").read_text(encoding="utf-8")
    with sqlite3.connect(audit) as after:
        assert after.execute("PRAGMA user_version").fetchone() == (99,)


def test_a_fault_the_checks_did_not_foresee_is_one_line_too(layout: Path) -> None:
    """The spool folder is the service user's, but a folder inside it is not (someone ran the
    agent as root once): the start fails in one line naming that folder, exit 3, and the
    traceback comes only with --debug."""
    inside = layout / "outer/spool/inbound"
    inside.mkdir()
    if AS_ROOT:
        os.chown(inside, 0, 0)
    inside.chmod(0o500 if not AS_ROOT else 0o700)
    config = str(layout / "outer.toml")
    result = run_maildiode("outer", "-c", config)
    assert result.returncode == 3, result.stdout + result.stderr
    line = assert_one_line(result, "outer.toml: ")
    assert str(inside) in line
    assert "Permission denied" in line
    assert line in (layout / "outer/outer.log").read_text(encoding="utf-8")
    debug = run_maildiode("outer", "-c", config, "--debug")
    assert debug.returncode != 0
    assert "Traceback" in debug.stderr
