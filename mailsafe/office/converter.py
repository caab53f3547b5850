"""Document bytes -> PDF bytes, or a named refusal: a warm LibreOffice in a sandbox child.

:class:`OfficeConverter` starts the sandbox (:func:`mailsafe.office.sandbox.sandbox_command`)
on first use and keeps it for the next documents: LibreOffice's start-up (1-3 s) is paid once
per render worker, a document then costs its own conversion (tens of milliseconds for a
page or two). A sandbox that does not answer within the wall-clock limit, dies, or answers
out of bounds is killed; that document is refused with a reason and the next one starts a
fresh sandbox. Only the document goes in and only a PDF (or a refusal code) comes out; the
PDF is as untrusted as any attachment and goes through the same PDF path.

:class:`DocumentConverter` is the seam the renderer (and, later, approval previews) use; tests
can pass any object with ``convert``.
"""

from __future__ import annotations

import resource
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from mailsafe.errors import HostileInput, InternalError
from mailsafe.limited import FRAME_LENGTH, ChildFailed, exchange, kill_child, read_until
from mailsafe.office.formats import OFFICE_KINDS
from mailsafe.office.sandbox import missing_tools, sandbox_command

__all__ = [
    "ConverterLimits",
    "DocumentConverter",
    "OfficeConverter",
    "OfficeRefused",
    "OfficeUnavailable",
]

MIB: Final = 1024 * 1024
READY: Final = b"ready"
# Refusal codes the child may answer with; anything else is "office_failed".
CHILD_REFUSALS: Final = {
    "cannot_open": "office_cannot_open",
    "export_failed": "office_failed",
    "too_large": "too_large",
    "cpu_limit": "office_cpu_limit",
    "memory_limit": "office_memory_limit",
}


class OfficeRefused(HostileInput):
    """The document could not be converted; ``code`` says why (a Withheld reason)."""

    code = "office_failed"


class OfficeUnavailable(InternalError):
    """The converter is not installed or does not start: our environment, not the mail."""

    code = "office_unavailable"


class DocumentConverter(Protocol):
    def convert(
        self, untrusted_document: bytes, kind: str, wall_seconds: float | None = None
    ) -> bytes:
        """The document as PDF bytes (untrusted still), within ``wall_seconds`` if given;
        OfficeRefused or OfficeUnavailable."""
        ...


@dataclass(frozen=True)
class ConverterLimits:
    """What the sandbox may spend; each limit with its reason."""

    # Address space of each sandboxed process: LibreOffice 7.4 needs about 700 MiB of
    # address space to start (measured: it fails at 600 MiB), documents a little more.
    memory_bytes: int = 1024 * MIB
    # CPU seconds LibreOffice may use per document (re-armed before each): a 10-page report
    # takes well under 1 s; a document that loops is cut here, if the wall clock has not.
    cpu_seconds: int = 20
    # Wall-clock seconds per document before the sandbox is killed and replaced.
    wall_seconds: float = 20.0
    # Wall-clock seconds for a fresh sandbox to answer "ready" (LibreOffice's start-up: 1-3 s
    # measured, several times that on a loaded host); with wall_seconds it must stay under
    # the render worker's own limit per mail ([render] wall_seconds, 60 by default).
    start_seconds: float = 20.0
    # Documents bigger than this are not sent (the mail parser's decoded-size cap is bigger).
    max_document_bytes: int = 50 * MIB
    # A PDF bigger than this is refused before it is read.
    max_pdf_bytes: int = 100 * MIB


class OfficeConverter:
    """One sandboxed LibreOffice, kept warm; ``convert`` is thread-safe (one at a time)."""

    def __init__(
        self, limits: ConverterLimits | None = None, command: Sequence[str] | None = None
    ) -> None:
        self.limits = limits or ConverterLimits()
        self._command = list(command) if command else None
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self.started = 0  # sandboxes started so far (a test reads it)

    def convert(
        self, untrusted_document: bytes, kind: str, wall_seconds: float | None = None
    ) -> bytes:
        """The PDF of the document; ``wall_seconds`` (at most the limits') for this one."""
        wall = min(wall_seconds or self.limits.wall_seconds, self.limits.wall_seconds)
        if kind not in OFFICE_KINDS:
            raise InternalError(f"not an office document kind: {kind!r}", code="bad_kind")
        if len(untrusted_document) > self.limits.max_document_bytes:
            raise OfficeRefused("document larger than the converter's limit", code="too_large")
        job = b"C" + kind.encode("ascii") + b"\n" + untrusted_document
        deadline = time.monotonic() + wall
        try:
            return _pdf_of(self._exchange(job, wall))
        except OfficeRefused as refusal:
            # A sandbox near its memory limit answers no PDF and ends (its PDF could lack what
            # it failed to load); the memory may be the earlier documents': once more, fresh.
            remaining = deadline - time.monotonic()
            if refusal.code != "office_memory_limit" or remaining <= 0:
                raise
        return _pdf_of(self._exchange(job, remaining))

    def _exchange(self, job: bytes, wall: float) -> bytes:
        with self._lock:
            process = self._running()
            try:
                untrusted_reply = exchange(process, job, wall, self.limits.max_pdf_bytes + 1)
            except ChildFailed as failure:
                self._stop()
                raise OfficeRefused(
                    f"the converter failed on this document ({failure.reason})",
                    code="office_timeout" if failure.reason == "timeout" else "office_failed",
                ) from None
            if untrusted_reply.startswith(b"Ememory_limit"):
                self._stop()  # it is ending; the next document starts a fresh one
        return untrusted_reply

    def _running(self) -> subprocess.Popen[bytes]:
        if self._process is not None and self._process.poll() is None:
            return self._process
        self._stop()
        self._process = self._start()
        return self._process

    def _start(self) -> subprocess.Popen[bytes]:
        command = self._command
        if command is None:
            missing = missing_tools()
            if missing:
                raise OfficeUnavailable(f"not installed: {', '.join(missing)} (make deps)")
            command = sandbox_command(self.limits.cpu_seconds)
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,  # its own group: a kill takes LibreOffice with it
            preexec_fn=_limit_memory(self.limits.memory_bytes),  # noqa: PLW1509 - setrlimit only
        )
        self.started += 1
        try:
            untrusted_ready = _read_frame(process, time.monotonic() + self.limits.start_seconds)
        except (TimeoutError, EOFError, OSError, ValueError):
            kill_child(process)
            raise OfficeUnavailable("the converter sandbox did not start") from None
        if untrusted_ready != READY:
            kill_child(process)
            raise OfficeUnavailable("the converter sandbox answered out of turn")
        return process

    def _stop(self) -> None:
        if self._process is not None:
            kill_child(self._process)
            self._process = None

    def close(self) -> None:
        with self._lock:
            self._stop()

    def __enter__(self) -> OfficeConverter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _limit_memory(memory_bytes: int) -> Callable[[], None]:
    def apply() -> None:
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core files of hostile content

    return apply


def _read_frame(process: subprocess.Popen[bytes], deadline: float) -> bytes:
    if process.stdout is None:
        raise EOFError("no pipe")
    (size,) = FRAME_LENGTH.unpack(read_until(process.stdout, FRAME_LENGTH.size, deadline))
    if size > len(READY):
        raise ValueError("first frame too long")
    return read_until(process.stdout, size, deadline)


def _pdf_of(untrusted_reply: bytes) -> bytes:
    kind, body = untrusted_reply[:1], untrusted_reply[1:]
    if kind == b"P" and body.startswith(b"%PDF"):
        return body
    if kind == b"E":
        code = CHILD_REFUSALS.get(body[:32].decode("ascii", "replace"), "office_failed")
        raise OfficeRefused(f"the converter refused the document ({code})", code=code)
    raise OfficeRefused("the converter answered with something else", code="office_failed")
