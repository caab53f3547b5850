"""`make dist` → a host with no network installs both agents, passes `check`, carries mail
(issue 22.1).

The archive is built here (with the package index this machine has), unpacked into a fresh
folder, and everything after that runs in a network namespace of its own (`unshare -n`: no
route anywhere, loopback only): install.sh into a root folder, `maildiode init`, `maildiode
check` of both configs, and the demo — both agents, the carriers and an embedded mailbox on
loopback — until its notifications arrive.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT_S = 600
NOTIFICATIONS = 4  # the demo's four inbound samples

OFFLINE_SCRIPT = r"""
set -eu
ip link set lo up
if "$BASE_PYTHON" -c 'import socket; socket.create_connection(("pypi.org", 443), timeout=3)' 2>/dev/null; then
    echo "NETWORK REACHABLE"; exit 3
fi
sh "$ARCHIVE/install.sh" --root "$ROOT" --python "$BASE_PYTHON"
MAILDIODE="$ROOT/opt/maildiode/.venv/bin/maildiode"
"$MAILDIODE" init "$ROOT/trial"
"$MAILDIODE" check -c "$ROOT/trial/outer.toml"
status=0; "$MAILDIODE" check -c "$ROOT/trial/inner.toml" || status=$?
echo "INNER CHECK $status"
exec "$MAILDIODE" demo --dir "$ROOT/demo" --web-port 8080 --exit-after 120
"""


def _have_network_namespaces() -> bool:
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    return probe.returncode == 0


def test_the_offline_archive_installs_and_runs_without_a_network(tmp_path: Path) -> None:
    assert shutil.which("unshare"), "util-linux's unshare is needed (CI runs as root)"
    assert _have_network_namespaces(), "unshare -n needs root (CI runs as root)"
    built = subprocess.run(
        ["sh", str(REPO / "deploy/installer/build.sh"), str(tmp_path / "dist")],
        env=dict(os.environ, PYTHON=sys.executable), capture_output=True, text=True,
        timeout=BUILD_TIMEOUT_S,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    (archive_file,) = (tmp_path / "dist").glob("maildiode-*-offline.tar.gz")
    with tarfile.open(archive_file) as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
    (archive_dir,) = (tmp_path / "unpacked").iterdir()
    names = {p.name for p in (archive_dir / "wheels").iterdir()}
    assert any(n.startswith("maildiode-") for n in names)
    assert any(n.lower().startswith("pymupdf-") for n in names)
    _hashes_hold(archive_dir)

    root = tmp_path / "host"
    env = dict(os.environ, ARCHIVE=str(archive_dir), ROOT=str(root),
               BASE_PYTHON=sys._base_executable)  # fmt: skip
    log = tmp_path / "offline.log"
    with log.open("wb") as out:
        offline = subprocess.Popen(
            ["unshare", "-n", "sh", "-c", OFFLINE_SCRIPT], env=env, stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            mailbox = root / "demo" / "mailbox" / "new"
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and offline.poll() is None:
                if mailbox.is_dir() and len(list(mailbox.iterdir())) >= NOTIFICATIONS:
                    break
                time.sleep(1)
            delivered = len(list(mailbox.iterdir())) if mailbox.is_dir() else 0
        finally:
            offline.terminate()
            offline.wait(timeout=120)
    output = log.read_text(errors="replace")
    assert "NETWORK REACHABLE" not in output
    assert "INNER CHECK 1" in output  # warnings only: an empty directory, no internal server
    assert delivered >= NOTIFICATIONS, output[-4000:]
    _layout_is_right(root)


def _hashes_hold(archive_dir: Path) -> None:
    checked = subprocess.run(
        ["sha256sum", "--check", "--quiet", "SHA256SUMS"], cwd=archive_dir,
        capture_output=True, text=True,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _layout_is_right(root: Path) -> None:
    for unit in ("maildiode-outer.service", "maildiode-inner.service"):
        text = (root / "etc/systemd/system" / unit).read_text()
        assert "ProtectSystem=strict" in text
    assert (root / "etc/logrotate.d/maildiode").is_file()
    assert (root / "etc/maildiode/keys").stat().st_mode & 0o777 == 0o700
    assert (root / "var/lib/maildiode").stat().st_mode & 0o777 == 0o700
    assert (root / "etc/maildiode/examples/inner.toml").is_file()
    assert not (root / "etc/maildiode/inner.toml").exists()  # the config is the administrator's
