"""The converter's sandbox: a document that tries to fetch makes no request, and the same
documents in a converter without the network namespace do (so the trap can see one); a
document whose macro would fetch and write a file on open does neither, even with the network
open and a host folder writable."""

from __future__ import annotations

import email
import inspect
import resource
import subprocess
import sys
import time
from email.policy import compat32
from pathlib import Path

import pytest

from mailsafe.mupdf import pymupdf
from mailsafe.office import sandbox_child
from mailsafe.office.converter import OfficeConverter
from mailsafe.office.sandbox import child_script, sandbox_command
from tests.mailsafe.office.fetching import (
    FETCHING,
    docx_with_remote_picture,
    odt_with_macro_on_open,
)
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
    # LibreOffice opens a linked OLE object of an ODT; the other links (DOCX OLE, external
    # workbook, web query, linked section) it leaves alone even here (UpdateDocMode
    # NO_UPDATE): for them the sandboxed test above is the guard, not a proof of necessity.
    assert {"/docx-picture.png", "/odt-picture.png", "/odt-object.ods"} <= fetched


CORPUS = Path(__file__).resolve().parents[4] / "shared" / "corpus"


def _open_converter_command(host_folder: Path) -> list[str]:
    """The converter's command with the network open and ``host_folder`` writable inside."""
    command = ["--unshare-pid" if arg == "--unshare-all" else arg for arg in sandbox_command(20)]
    end_of_flags = command.index("--")
    command[end_of_flags:end_of_flags] = ["--bind", str(host_folder), str(host_folder)]
    return command


def _pdf_text(pdf: bytes) -> str:
    with pymupdf.open(stream=pdf, filetype="pdf") as document:
        return "".join(page.get_text() for page in document)


def _corpus_attachment(name: str) -> bytes:
    message = email.message_from_bytes((CORPUS / name).read_bytes(), policy=compat32)
    data = next(p for p in message.walk() if p.get_filename()).get_payload(decode=True)
    assert isinstance(data, bytes)
    return data


def test_macros_never_run_even_with_the_network_open(tmp_path: Path) -> None:
    """A Basic macro bound to the document's load event would fetch from the trap and write a
    file in a folder the converter can write; real macro-enabled workbooks (Auto_Open, read in
    place from the corpus) go through too. The remote picture of a DOCX converted in the same
    converter is fetched: the network was open, and nothing came from the macro."""
    marker = tmp_path / "macro-ran"
    with trap_server() as trap, OfficeConverter(command=_open_converter_command(tmp_path)) as open_:
        pdf = open_.convert(odt_with_macro_on_open(trap.base, str(marker)), "odt")
        for mail in ("sa-spam-macro.eml", "sa-spam-malicemacro.eml"):
            assert open_.convert(_corpus_attachment(mail), "xlsm").startswith(b"%PDF")
        open_.convert(docx_with_remote_picture(trap.base), "docx")
        time.sleep(SETTLE_SECONDS)
        fetched = {request.split()[1] for request in trap.requests}
    assert "MACRO TRAP" in _pdf_text(pdf)
    assert fetched == {"/docx-picture.png"}
    assert not marker.exists()


def test_documents_are_opened_with_macros_and_link_updates_off() -> None:
    """The load arguments are the guard wherever LibreOffice has a macro runtime (the
    -nogui packages installed here ship no Basic runtime or script provider at all)."""
    source = inspect.getsource(sandbox_child.convert)
    assert "MacroExecutionMode=NEVER_EXECUTE" in source
    assert "UpdateDocMode=NO_UPDATE" in source
    assert (sandbox_child.NEVER_EXECUTE, sandbox_child.NO_UPDATE) == (0, 0)


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
