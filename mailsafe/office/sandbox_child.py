"""The converter child: a warm LibreOffice turning one document at a time into PDF.

Runs INSIDE the sandbox (:mod:`mailsafe.office.sandbox`) under Debian's ``/usr/bin/python3``,
which has LibreOffice's ``uno`` module; it sees only ``/usr``, a few files of ``/etc``, its own
empty ``/tmp`` and no network. It imports nothing of ours (our packages are not in the
sandbox), so it is self-contained: standard library and ``uno`` only. It is type-checked, but
strictly where ``uno`` is involved (it has no types: ``Any``); keep it small.

Frames on stdin/stdout as in :mod:`mailsafe.limited` (4-byte big-endian length, payload):

    child -> parent   b"ready"                     once, when LibreOffice answers on its pipe
    parent -> child   b"C" + ext + b"\\n" + bytes   convert this document (ext: "docx", ...)
    child -> parent   b"P" + pdf                   the PDF
                      b"E" + code                  a named refusal (see REFUSALS)

LibreOffice listens on a named pipe in /tmp (never a TCP port) and is driven over UNO. A
LibreOffice that dies takes this child with it (the parent starts a fresh sandbox).
"""

import contextlib
import importlib
import os
import resource
import struct
import subprocess
import sys
import time
from typing import Any, BinaryIO

FRAME = struct.Struct(">I")
SOFFICE = "/usr/lib/libreoffice/program/soffice.bin"
# The sandbox's /tmp is its own empty tmpfs (mailsafe.office.sandbox), not the host's.
# MAILDIODE_OFFICE_ROOT moves it for the benchmark's bare converters, which run unsandboxed.
ROOT = os.environ.get("MAILDIODE_OFFICE_ROOT", "/tmp")  # noqa: S108 - the sandbox's own tmpfs
PROFILE = f"{ROOT}/profile"  # an empty LibreOffice profile, new with every sandbox
WORK = f"{ROOT}/work"  # the document being converted
# LibreOffice's pipe lives in /tmp: a name of its own per child (the bare converters share /tmp).
PIPE_NAME = f"maildiode_office_{os.getpid()}"
# Seconds LibreOffice may take to answer on its pipe after start (about 1-3 s unloaded).
START_SECONDS = 60.0
# A document larger than this is not converted (the parser's mail cap is larger).
MAX_DOCUMENT_BYTES = 50 * 1024 * 1024
# Extensions LibreOffice is told the document has (its type detection reads the content too).
EXTENSIONS = frozenset(
    ("docx", "docm", "xlsx", "xlsm", "pptx", "pptm", "doc", "xls", "ppt", "odt", "ods", "odp",
     "rtf")
)  # fmt: skip
# PDF export filter per kind of document LibreOffice opened it as.
EXPORT_FILTERS = (
    ("com.sun.star.sheet.SpreadsheetDocument", "calc_pdf_Export"),
    ("com.sun.star.presentation.PresentationDocument", "impress_pdf_Export"),
    ("com.sun.star.drawing.DrawingDocument", "draw_pdf_Export"),
    ("com.sun.star.text.TextDocument", "writer_pdf_Export"),
)
# Named refusals (the parent maps any other reply to "converter_error").
REFUSALS = ("cannot_open", "export_failed", "too_large", "bad_job", "cpu_limit", "memory_limit")
# com.sun.star.document.MacroExecMode.NEVER_EXECUTE / UpdateDocMode.NO_UPDATE
NEVER_EXECUTE = 0
NO_UPDATE = 0
# LibreOffice's peak address space this close to its limit makes the PDF suspect: an
# allocation refused near the limit (a font, a picture) is left out without an error
# (measured: a table's Korean words missing). Such a PDF is not answered; the sandbox ends.
MEMORY_MARGIN = 64 * 1024 * 1024
# Extra CPU seconds LibreOffice may use per document (re-armed before each one).
CPU_SECONDS = int(os.environ.get("MAILDIODE_OFFICE_CPU_SECONDS", "20"))


def write_frame(stream: BinaryIO, payload: bytes) -> None:
    stream.write(FRAME.pack(len(payload)) + payload)
    stream.flush()


def read_frame(stream: BinaryIO) -> bytes | None:
    head = stream.read(FRAME.size)
    if len(head) != FRAME.size:
        return None
    (size,) = FRAME.unpack(head)
    if size > MAX_DOCUMENT_BYTES + 64:
        return None
    body = stream.read(size)
    return body if len(body) == size else None


# soffice.bin's exit status asking to be started again (after it created a new profile).
RESTART_REQUESTED = 81


def start_office() -> subprocess.Popen[bytes]:
    os.makedirs(PROFILE, exist_ok=True)
    os.makedirs(WORK, exist_ok=True)
    office = launch()
    time.sleep(0.05)
    while office.poll() is None and not os.listdir(PROFILE):
        time.sleep(0.05)
    return office


def launch() -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            SOFFICE,
            "--headless",
            "--invisible",
            "--nologo",
            "--norestore",
            "--nodefault",
            "--nolockcheck",
            "--nofirststartwizard",
            "-env:UserInstallation=file://" + PROFILE,
            f"--accept=pipe,name={PIPE_NAME};urp;StarOffice.ComponentContext",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def connect(office: subprocess.Popen[bytes]) -> tuple[subprocess.Popen[bytes], Any]:
    local = _uno().getComponentContext()
    resolver = local.ServiceManager.createInstanceWithContext(
        "com.sun.star.bridge.UnoUrlResolver", local
    )
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            context = resolver.resolve(f"uno:pipe,name={PIPE_NAME};urp;StarOffice.ComponentContext")
            break
        except Exception:  # noqa: BLE001 - NoConnectException until LibreOffice listens
            if office.poll() == RESTART_REQUESTED:
                office = launch()  # the first start only creates the profile
            elif office.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(3) from None
            time.sleep(0.1)
    desktop = context.ServiceManager.createInstanceWithContext(
        "com.sun.star.frame.Desktop", context
    )
    return office, desktop


def _uno() -> Any:
    """Debian's ``uno`` module (python3-uno), importable only by /usr/bin/python3, which is
    what runs this child; a system package, not a dependency of ours (tests/test_dependencies)."""
    return importlib.import_module("uno")


def props(**values: object) -> tuple[Any, ...]:
    uno = _uno()
    found: list[Any] = []
    for name, value in values.items():
        prop = uno.createUnoStruct("com.sun.star.beans.PropertyValue")
        prop.Name, prop.Value = name, value
        found.append(prop)
    return tuple(found)


def arm_cpu(office: subprocess.Popen[bytes]) -> None:
    """LibreOffice's CPU limit moved to what it has used + CPU_SECONDS (RLIMIT_CPU counts a
    process's whole life, and this one lives for many documents)."""
    with open(f"/proc/{office.pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    used = (int(fields[11]) + int(fields[12])) // os.sysconf("SC_CLK_TCK") + 1
    _soft, hard = resource.prlimit(office.pid, resource.RLIMIT_CPU)
    soft = used + CPU_SECONDS
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)  # the soft limit may not pass the hard one we inherited
    resource.prlimit(office.pid, resource.RLIMIT_CPU, (soft, hard))


def near_memory_limit(office: subprocess.Popen[bytes]) -> bool:
    """Whether LibreOffice's peak address space came within MEMORY_MARGIN of its limit."""
    soft, _hard = resource.prlimit(office.pid, resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return False
    with open(f"/proc/{office.pid}/status") as status:
        for line in status:
            if line.startswith("VmPeak:"):
                return int(line.split()[1]) * 1024 >= soft - MEMORY_MARGIN
    return False


def fit_sheets(document: Any) -> None:
    """Every sheet prints its used range one page wide (long sheets go on over pages),
    instead of a wide sheet becoming many pages of a few columns each."""
    styles = document.StyleFamilies.getByName("PageStyles")
    for sheet in document.Sheets:
        style = styles.getByName(sheet.PageStyle)
        style.ScaleToPagesX = 1
        style.ScaleToPagesY = 0


def export_filter(document: Any) -> str | None:
    for service, name in EXPORT_FILTERS:
        if document.supportsService(service):
            return name
    return None


def convert(desktop: Any, ext: str, data: bytes) -> bytes:
    source = f"{WORK}/in.{ext}"
    target = f"{WORK}/out.pdf"
    with open(source, "wb") as handle:
        handle.write(data)
    document = None
    try:
        try:
            document = desktop.loadComponentFromURL(
                "file://" + source,
                "_blank",
                0,
                props(
                    Hidden=True,
                    ReadOnly=True,
                    MacroExecutionMode=NEVER_EXECUTE,
                    UpdateDocMode=NO_UPDATE,
                ),
            )
        except Exception:  # noqa: BLE001 - IllegalArgumentException, IOException: unreadable
            document = None
        if document is None:
            return b"Ecannot_open"
        name = export_filter(document)
        if name is None:
            return b"Ecannot_open"
        if name == "calc_pdf_Export":
            fit_sheets(document)
        try:
            document.storeToURL("file://" + target, props(FilterName=name))
        except Exception:  # noqa: BLE001 - an export error of LibreOffice
            return b"Eexport_failed"
        with open(target, "rb") as handle:
            return b"P" + handle.read()
    finally:
        if document is not None:
            with contextlib.suppress(Exception):  # closing a broken document
                document.close(True)
        for path in (source, target):
            if os.path.exists(path):
                os.unlink(path)


def answer(desktop: Any, office: subprocess.Popen[bytes], job: bytes) -> bytes:
    if job[:1] != b"C" or b"\n" not in job:
        return b"Ebad_job"
    head, _, data = job[1:].partition(b"\n")
    ext = head.decode("ascii", "replace")
    if ext not in EXTENSIONS:
        return b"Ebad_job"
    if len(data) > MAX_DOCUMENT_BYTES:
        return b"Etoo_large"
    arm_cpu(office)
    return convert(desktop, ext, data)


def main() -> None:
    stdin = sys.stdin.buffer
    # Only frames on the parent's pipe: the pipe gets a descriptor of its own and descriptor 1
    # points at stderr, so neither pyuno's C code nor a held sys.stdout can write into a frame
    # (as mailsafe.limited.frames_only_stdout; this child imports nothing of ours).
    stdout = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    office = start_office()
    office, desktop = connect(office)
    write_frame(stdout, b"ready")
    while True:
        job = read_frame(stdin)
        if job is None:
            break
        reply = answer(desktop, office, job)
        if office.poll() is not None:  # died on this document (e.g. its CPU limit)
            write_frame(stdout, b"Ecpu_limit" if office.returncode == -24 else b"Ecannot_open")
            break
        if near_memory_limit(office):  # the reply may lack what LibreOffice could not load
            write_frame(stdout, b"Ememory_limit")
            break
        write_frame(stdout, reply)
    office.kill()


if __name__ == "__main__":
    main()
