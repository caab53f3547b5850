"""Render in separate worker processes with CPU, memory and wall-clock limits.

Only bytes cross: the raw mail goes in, an encoded package (or a short error code) comes out,
and the parent decodes that package with :func:`mailsafe.package.decode_package`, as it would
decode anything from a process that handled hostile input. A worker that crashes, is killed by
a limit, or runs out of time is replaced; the mail becomes a "not displayable" notice carrying
its headers, attachment list and a reason code, and the pool goes on.

Frames (``Connection.send_bytes``, no pickle)::

    parent -> worker   b"R" + raw mail     render it
                       b"S" + raw mail     summary only: parse, list, no rendering
    worker -> parent   b"P" + package      encoded RenderedMail
                       b"E" + code         a named failure (e.g. memory_limit)
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import logging
import multiprocessing
import os
import queue
import resource
import signal
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from mailsafe.errors import MailsafeError
from mailsafe.mime import ParseLimits, decode_header_text, parse_message, raw_header_to_text
from mailsafe.package import (
    PACKAGE_VERSION,
    HeaderBlock,
    Manifest,
    RenderedMail,
    decode_package,
    encode_package,
)
from mailsafe.render import not_displayable, render_message
from mailsafe.render.options import RenderOptions

__all__ = ["REASONS", "RenderPool"]

log = logging.getLogger(__name__)

MIB = 1024 * 1024
# CPU seconds one mail may use: a 10-page PDF plus 8 tiles takes ~1 s; 20 s is a runaway.
DEFAULT_CPU_SECONDS = 20
# Address space of a worker: PyMuPDF + Pillow for a 24 Mpx picture need ~400 MiB; 1 GiB cap.
DEFAULT_MEMORY_BYTES = 1024 * MIB
# Wall-clock seconds per mail (includes Chromium start-up, ~1-2 s).
DEFAULT_WALL_SECONDS = 30.0
# A summary (parse only) after a failure gets this share of the limits.
SUMMARY_SHARE = 0.5
# A worker still alive this long after being told to stop is killed.
STOP_GRACE_SECONDS = 2.0

# Reason codes a caller can see in Manifest.reason for failures of the worker itself.
REASONS = {
    "timeout": "rendering took longer than the wall-clock limit",
    "cpu_limit": "rendering used more CPU time than allowed",
    "memory_limit": "rendering needed more memory than allowed",
    "worker_crash": "the render worker died",
    "render_error": "the renderer failed on this mail",
    "bad_package": "the render worker returned a package that does not decode",
}


# --------------------------------------------------------------------------- worker side


def _set_limits(memory_bytes: int | None) -> None:
    os.setsid()  # own process group: a kill on timeout takes Chromium children with it
    if memory_bytes is not None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core files of hostile content


def _arm_cpu_limit(cpu_seconds: int) -> None:
    """RLIMIT_CPU counts the process's whole life: move the soft limit to now + budget."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    now = int(used.ru_utime + used.ru_stime) + 1
    _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(resource.RLIMIT_CPU, (now + cpu_seconds, hard))


def _work(job: bytes, options: RenderOptions) -> bytes:
    kind, raw = job[:1], job[1:]
    if kind == b"S":
        mail = parse_message(raw)
        return b"P" + encode_package(not_displayable(mail, "render_error"))
    return b"P" + encode_package(render_message(raw, options))


def worker_main(
    connection: Connection, options: RenderOptions, cpu_seconds: int, memory_bytes: int | None
) -> None:
    """Loop of one worker process: frames in, frames out, until the pipe closes."""
    _set_limits(memory_bytes)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    while True:
        try:
            job = connection.recv_bytes()
        except (EOFError, OSError):
            return
        _arm_cpu_limit(cpu_seconds)
        try:
            reply = _work(job, options)
        except MemoryError:
            reply = b"Ememory_limit"
        except MailsafeError as exc:
            reply = b"E" + exc.code.encode("ascii", "replace")[:64]
        except Exception:  # noqa: BLE001 - any renderer bug on hostile input is a notice, not a dead pool
            reply = b"Erender_error"
        try:
            connection.send_bytes(reply)
        except (OSError, ValueError):
            return


# --------------------------------------------------------------------------- parent side


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    connection: Connection


class RenderPool:
    """``processes`` workers; ``render(raw)`` blocks, is thread-safe, and never raises on input."""

    def __init__(
        self,
        options: RenderOptions,
        processes: int = 2,
        cpu_seconds: int = DEFAULT_CPU_SECONDS,
        memory_bytes: int = DEFAULT_MEMORY_BYTES,
        wall_seconds: float = DEFAULT_WALL_SECONDS,
    ) -> None:
        self.options = options
        self.cpu_seconds = cpu_seconds
        # Chromium reserves terabytes of address space for its heap cage and will not start
        # under RLIMIT_AS; its worker relies on the wall-clock limit and the group kill.
        self.memory_bytes: int | None = memory_bytes if options.backend == "pymupdf" else None
        self.wall_seconds = wall_seconds
        self._context = multiprocessing.get_context("forkserver")
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        for _ in range(processes):
            self._idle.put(self._start())

    def _start(self) -> _Worker:
        parent_end, child_end = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=worker_main,
            args=(child_end, self.options, self.cpu_seconds, self.memory_bytes),
            name="mailsafe-render",
            daemon=True,
        )
        process.start()
        child_end.close()
        worker = _Worker(process, parent_end)
        with self._lock:
            self._all.add(worker)
        return worker

    def render(self, raw: bytes) -> RenderedMail:
        """Render ``raw`` in a worker; failures give a not-displayable notice with a reason."""
        reply, reason = self._run(b"R" + raw, self.wall_seconds)
        if reply is not None:
            return reply
        log.warning("render worker failed: %s", reason)
        summary, _ = self._run(b"S" + raw, self.wall_seconds * SUMMARY_SHARE)
        if summary is not None:
            return _with_reason(summary, reason)
        return headers_only(raw, reason)

    def _run(self, job: bytes, wall_seconds: float) -> tuple[RenderedMail | None, str]:
        if self._closed:
            raise RuntimeError("RenderPool is closed")
        worker = self._idle.get()
        try:
            untrusted_reply = self._exchange(worker, job, wall_seconds)
        except _WorkerFailed as failure:
            self._replace(worker)
            return None, failure.reason
        self._idle.put(worker)
        return _decode_reply(untrusted_reply)

    def _exchange(self, worker: _Worker, job: bytes, wall_seconds: float) -> bytes:
        try:
            worker.connection.send_bytes(job)
            if not worker.connection.poll(wall_seconds):
                raise _WorkerFailed("timeout")
            return worker.connection.recv_bytes()
        except (EOFError, OSError, BrokenPipeError) as exc:
            raise _WorkerFailed(self._death_reason(worker)) from exc

    def _death_reason(self, worker: _Worker) -> str:
        worker.process.join(STOP_GRACE_SECONDS)
        code = worker.process.exitcode
        if code == -signal.SIGXCPU or code == -signal.SIGKILL:
            return "cpu_limit"
        return "worker_crash"

    def _replace(self, worker: _Worker) -> None:
        self._kill(worker)
        with self._lock:
            self._all.discard(worker)
        if not self._closed:
            self._idle.put(self._start())

    @staticmethod
    def _kill(worker: _Worker) -> None:
        pid = worker.process.pid
        if pid is not None and worker.process.exitcode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        worker.process.join(STOP_GRACE_SECONDS)
        worker.connection.close()

    def close(self) -> None:
        """Stop every worker (and its Chromium children)."""
        self._closed = True
        with self._lock:
            workers = list(self._all)
            self._all.clear()
        for worker in workers:
            self._kill(worker)

    def __enter__(self) -> RenderPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _WorkerFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _decode_reply(untrusted_reply: bytes) -> tuple[RenderedMail | None, str]:
    kind, body = untrusted_reply[:1], untrusted_reply[1:]
    if kind == b"E":
        code = body[:64].decode("ascii", "replace")
        return None, code if code in REASONS or code.isidentifier() else "render_error"
    if kind != b"P":
        return None, "bad_package"
    try:
        return decode_package(body), ""
    except MailsafeError:
        return None, "bad_package"


def _with_reason(mail: RenderedMail, reason: str) -> RenderedMail:
    from dataclasses import replace

    note = REASONS.get(reason, reason)
    manifest = replace(mail.manifest, reason=reason, notes=(note, *mail.manifest.notes))
    return replace(mail, manifest=manifest)


def headers_only(raw: bytes, reason: str) -> RenderedMail:
    """Last resort in the parent: the header block only, bounded, when even a summary failed."""
    limit = ParseLimits().max_header_bytes
    try:
        headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(
            raw[:limit]
        )
        block = HeaderBlock(
            from_=decode_header_text(raw_header_to_text(headers.get("from", ""))),
            to=decode_header_text(raw_header_to_text(headers.get("to", ""))),
            date=decode_header_text(raw_header_to_text(headers.get("date", ""))),
            subject=decode_header_text(raw_header_to_text(headers.get("subject", ""))),
        )
    except (ValueError, TypeError, UnicodeError, LookupError, IndexError):
        block = HeaderBlock()
    manifest = Manifest(
        version=PACKAGE_VERSION,
        mail_id="",
        status="not_displayable",
        reason=reason,
        headers=block,
        notes=(REASONS.get(reason, reason), "the attachment list could not be read"),
    )
    return RenderedMail(manifest=manifest)
