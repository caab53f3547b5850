"""The converter's sandbox: a document that tries to fetch makes no request, and the same
documents in a converter without the network namespace do (so the trap can see one)."""

from __future__ import annotations

import resource
import subprocess
import sys
import time

import pytest

from mailsafe.office import sandbox_child
from mailsafe.office.converter import OfficeConverter
from mailsafe.office.sandbox import child_script, sandbox_command
from tests.mailsafe.office.fetching import FETCHING
from tests.support.trap import trap_server

# Time for a request LibreOffice started late to reach the trap.
SETTLE_SECONDS = 0.5


def _convert_all(converter: OfficeConverter, base: str) -> None:
    for name, make in FETCHING.items():
        pdf = converter.convert(make(base), name.rsplit(".", 1)[1])
        assert pdf.startswith(b"%PDF")


def test_documents_that_fetch_make_no_request(converter: OfficeConverter) -> None:
    with trap_server() as trap:
        _convert_all(converter, trap.base)
        time.sleep(SETTLE_SECONDS)
        assert trap.requests == []


def test_without_the_network_namespace_the_trap_sees_the_fetches() -> None:
    """The control: the same LibreOffice and documents, the sandbox less --unshare-all
    (PID namespace kept). LibreOffice fetches the linked pictures, so the test above would
    fail if the sandbox let it."""
    command = sandbox_command(20)
    assert "--unshare-all" in command
    open_command = ["--unshare-pid" if arg == "--unshare-all" else arg for arg in command]
    with trap_server() as trap, OfficeConverter(command=open_command) as unsandboxed:
        _convert_all(unsandboxed, trap.base)
        time.sleep(SETTLE_SECONDS)
        fetched = {request.split()[1] for request in trap.requests}
    assert {"/docx-picture.png", "/odt-picture.png"} <= fetched


@pytest.mark.parametrize(
    "flag", ["--unshare-all", "--die-with-parent", "--new-session", "--clearenv", "--cap-drop"]
)
def test_the_sandbox_has_its_isolating_flags(flag: str) -> None:
    assert flag in sandbox_command(20)


def test_the_sandbox_sees_no_host_directories() -> None:
    """Only /usr, two /etc directories and the child script are bound, read-only."""
    command = sandbox_command(20)
    bound = {command[i + 1] for i, arg in enumerate(command) if arg == "--ro-bind"}
    assert bound == {"/usr", "/etc/fonts", "/etc/libreoffice", str(child_script())}
    assert "--bind" not in command


def test_libreoffice_s_cpu_limit_is_re_armed_per_document() -> None:
    """RLIMIT_CPU counts a process's whole life: before each document the child moves the
    long-lived LibreOffice's soft limit to what it has used so far plus the budget."""
    busy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        sandbox_child.arm_cpu(busy)
        soft, _hard = resource.prlimit(busy.pid, resource.RLIMIT_CPU)
        assert 0 < soft <= sandbox_child.CPU_SECONDS + 2
    finally:
        busy.kill()
        busy.wait()
