"""Render in separate worker processes with CPU, memory and wall-clock limits.

Only bytes cross: the raw mail goes in, an encoded package (or a short error code) comes out,
and the parent decodes that package with :func:`mailsafe.payload.decode_package`, as it would
decode anything from a process that handled hostile input. A worker that crashes, is killed by
a limit, or runs out of time is replaced; the mail becomes a "not displayable" notice carrying
its headers, attachment list and a reason code, and the pool goes on.

Workers are ``python -m mailsafe.render.pool`` subprocesses (no multiprocessing: nothing is
pickled, and the parent's ``__main__`` is never re-imported). Frames on the worker's stdin and
stdout are a 4-byte big-endian length, then the payload::

    parent -> worker   b"R" + raw mail     render it
                       b"S" + raw mail     summary only: parse, list, no rendering
                       b"M" + b"R"|b"S" + types + b"\n" + raw mail
                                           the same, masking personal data of the types
                                           (comma-separated mailsafe.pii names) for this mail
                       b"K" + head + raw   render it masking as ``head`` says (4-byte length,
                                           JSON {"types": [...], "known": [[type, digits]],
                                           "positions": [[type, {...}]], "values":
                                           [[type, characters]]}:
                                           an approval preview, RenderPool.render(known=...))
                       b"F" + head + raw   receive filters, then render each part (head: a
                                           4-byte big-endian length and that many bytes of
                                           mailsafe.inbound_filter.encode_job's JSON)
    worker -> parent   b"P" + package      encoded RenderedMail
                       b"V" + reply        the filter's decisions and packages
                                           (mailsafe.inbound_filter.encode_reply)
                       b"E" + code         a named failure (e.g. memory_limit)

A worker keeps the rules of the last policy it was sent; the parent sends a policy's text only
to a worker that has not had it (``_Worker.policy``).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import email.parser
import email.policy
import json
import logging
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

from mailsafe.errors import MailsafeError
from mailsafe.inbound_filter import (
    MAX_PACKAGES,
    FilterJob,
    FilterResult,
    RulesCache,
    RulesUnknown,
    decode_reply,
    encode_job,
    serve_job,
)
from mailsafe.limited import (
    FRAME_LENGTH,
    ChildFailed,
    exchange,
    kill_child,
    serve_frames,
    set_limits,
    widen_pipe,
)
from mailsafe.mime import ParseLimits, decode_header_text, raw_header_to_text
from mailsafe.notes import note, reason_words
from mailsafe.office.converter import ConverterLimits, DocumentConverter, OfficeConverter
from mailsafe.payload import (
    PACKAGE_VERSION,
    HeaderBlock,
    Manifest,
    PackageLimits,
    RenderedMail,
    decode_package,
    encode_package,
)
from mailsafe.pii import PiiType, detect, mask_text
from mailsafe.policy import MAX_RULES_FILE_BYTES, RulesError
from mailsafe.positions import Position
from mailsafe.render import render_message, summary_of
from mailsafe.render.options import (
    DEFAULT_CPU_SECONDS,
    DEFAULT_MEMORY_BYTES,
    DEFAULT_WALL_SECONDS,
    RenderOptions,
    checked_known,
    checked_mask_types,
    checked_positions,
    checked_values,
)

__all__ = ["REASONS", "RenderPool", "headers_only", "tune_allocator"]

log = logging.getLogger(__name__)

MIB = 1024 * 1024
# A summary (parse only) after a failure gets this share of the limits.
SUMMARY_SHARE = 0.5

# Reason codes a caller can see in Manifest.reason for failures of the worker itself.
WORKER_REASONS = ("timeout", "cpu_limit", "memory_limit", "worker_crash", "render_error",
                  "bad_package")  # fmt: skip
REASONS = {code: reason_words(code, "en") for code in WORKER_REASONS}


# --------------------------------------------------------------------------- framing

# A reply bigger than a package may be is refused before it is read.
MAX_REPLY_BYTES = PackageLimits().max_package_bytes + 1
# A filter reply carries a few packages and the decisions (a few KiB per recipient at most).
MAX_FILTER_REPLY_BYTES = MAX_PACKAGES * PackageLimits().max_package_bytes + (1 << 20)
# A job is a mail: the largest mail the parser accepts, plus the kind bytes and the mask types,
# and for a filter job the policy's rules and the envelope.
MAX_JOB_BYTES = ParseLimits().max_raw_bytes + 1 + MAX_RULES_FILE_BYTES + (256 << 10)
# Reason a worker gives when it lacks the policy of a filter job (the parent sends it again).
POLICY_UNKNOWN = "policy_unknown"


# --------------------------------------------------------------------------- worker side


# glibc mallopt() parameters (malloc.h) and the values a worker uses; see tune_allocator().
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
HEAP_MMAP_THRESHOLD_BYTES = 32 * MIB  # glibc's largest allowed value on 64-bit
HEAP_TRIM_THRESHOLD_BYTES = 64 * MIB


def tune_allocator() -> bool:
    """Keep a render process's big, short-lived buffers in the heap; False if not glibc.

    Every page is a pixmap of about 1 MB, plus its PNG and Pillow buffers. glibc serves blocks
    over its mmap threshold (128 KiB until a large block is freed) with a fresh mmap each time,
    and the kernel zeroes every page of it on first touch: measured, about 2300 page faults and
    4 ms of a 16 ms mail. (PyMuPDF's ML add-ons, no longer loaded, hid this by raising the
    threshold as a side effect.) A fixed threshold of 32 MiB and a trim threshold of 64 MiB
    let the next mail reuse the memory; a worker holds at most that much more than its peak,
    and RLIMIT_AS still bounds it."""
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, HEAP_MMAP_THRESHOLD_BYTES) == 1
    return bool(mallopt(_M_TRIM_THRESHOLD, HEAP_TRIM_THRESHOLD_BYTES) == 1 and ok)


def _job(
    kind: bytes,
    raw: bytes,
    mask_types: frozenset[str],
    *,
    known: tuple[tuple[PiiType, str], ...] = (),
    positions: tuple[tuple[PiiType, Position], ...] = (),
    values: tuple[tuple[PiiType, str], ...] = (),
) -> bytes:
    if known or positions or values:
        placed = [[kind, dataclasses.asdict(position)] for kind, position in positions]
        head = json.dumps({"types": sorted(mask_types), "known": known, "positions": placed,
                           "values": values})  # fmt: skip
        return _with_head(b"K", head.encode("utf-8"), kind + raw)
    if not mask_types:
        return kind + raw
    return b"M" + kind + ",".join(sorted(mask_types)).encode("ascii") + b"\n" + raw


def _split_head(body: bytes) -> tuple[bytes, bytes]:
    (length,) = FRAME_LENGTH.unpack_from(body)
    start = FRAME_LENGTH.size
    return body[start : start + length], body[start + length :]


def _with_head(kind: bytes, head: bytes, raw: bytes) -> bytes:
    return kind + FRAME_LENGTH.pack(len(head)) + head + raw


def _work(job: bytes, options: RenderOptions, cache: RulesCache,
          converter: DocumentConverter | None) -> bytes:  # fmt: skip
    kind, raw = job[:1], job[1:]
    if kind == b"F":
        head, raw = _split_head(raw)
        return b"V" + serve_job(head, raw, options, cache, converter)
    if kind == b"K":
        head, job = _split_head(raw)
        kind, raw = job[:1], job[1:]
        # The parent is trusted; RenderOptions still refuses what it does not know.
        masking = json.loads(head)
        options = dataclasses.replace(
            options,
            mask_types=frozenset(masking["types"]),
            mask_known=checked_known(masking["known"]),
            mask_positions=checked_positions(masking["positions"]),
            mask_values=checked_values(masking.get("values", ())),
        )
    if kind == b"M":
        kind, line = job[1:2], job[2:]
        types, _, raw = line.partition(b"\n")
        # The parent is trusted; RenderOptions still refuses a type it does not know.
        mask_types = frozenset(types.decode("ascii").split(","))
        options = dataclasses.replace(options, mask_types=mask_types)
    if kind == b"S":
        return b"P" + encode_package(summary_of(raw, options.mask_types))
    return b"P" + encode_package(render_message(raw, options, converter))


def _answer(job: bytes, options: RenderOptions, cache: RulesCache,
            converter: DocumentConverter | None) -> bytes:  # fmt: skip
    try:
        return _work(job, options, cache, converter)
    except RulesUnknown:
        return b"E" + POLICY_UNKNOWN.encode()
    except MemoryError:
        return b"Ememory_limit"
    except MailsafeError as exc:
        return b"E" + exc.code.encode("ascii", "replace")[:64]
    except Exception:  # noqa: BLE001 - a renderer bug on hostile input is a notice, not a dead pool
        return b"Erender_error"


def worker_main(options: RenderOptions, cpu_seconds: int, memory_bytes: int | None) -> None:
    """Loop of one worker process: frames on stdin, frames on stdout, until stdin closes."""
    set_limits(memory_bytes)
    tune_allocator()
    cache = RulesCache()
    converter = office_converter(options, memory_bytes)
    try:
        serve_frames(lambda job: _answer(job, options, cache, converter), cpu_seconds,
                     MAX_JOB_BYTES)  # fmt: skip
    finally:
        if converter is not None:
            converter.close()


def office_converter(options: RenderOptions, memory_bytes: int | None) -> OfficeConverter | None:
    """The worker's own warm LibreOffice (started at its first document), or None when office
    documents are not rendered. Its sandbox gets the worker's address-space limit per process
    (it cannot be given more) and its own wall-clock limit per document."""
    if not options.office_documents:
        return None
    limits = ConverterLimits(wall_seconds=options.office_wall_seconds)
    if memory_bytes:
        limits = dataclasses.replace(limits, memory_bytes=memory_bytes)
    return OfficeConverter(limits)


# --------------------------------------------------------------------------- parent side


@dataclass(eq=False)
class _Worker:
    process: subprocess.Popen[bytes]
    slot: int  # which of the pool's places it holds (a replacement takes over the same one)
    policy: int = 0  # the version of the inbound policy it was last sent (0: none)


def _cpu_for(slot: int) -> set[int] | None:
    """The one CPU worker ``slot`` is pinned to: the slot-th CPU this process may use, round
    robin; None where the platform cannot pin."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    return {allowed[slot % len(allowed)]}


class RenderPool:
    """``processes`` workers; ``render(raw)`` blocks, is thread-safe, and never raises on input."""

    def __init__(
        self,
        options: RenderOptions,
        processes: int = 2,
        cpu_seconds: int = DEFAULT_CPU_SECONDS,
        memory_bytes: int = DEFAULT_MEMORY_BYTES,
        wall_seconds: float = DEFAULT_WALL_SECONDS,
        *,
        pin_cpus: bool = False,
    ) -> None:
        self.options = options
        # Each worker on a CPU of its own: on a busy host (the agents, the carrier and the mail
        # server share the cores) a worker that the scheduler moves between CPUs refills its
        # caches each time; pinned, rendering cost about 8 % less CPU per mail (performance.md).
        # Not Chromium: its browser processes would inherit the one CPU.
        self.pin_cpus = pin_cpus and options.backend == "pymupdf"
        self.cpu_seconds = cpu_seconds
        # Chromium reserves terabytes of address space for its heap cage and will not start
        # under RLIMIT_AS; its worker relies on the wall-clock limit and the group kill.
        self.memory_bytes = memory_bytes if options.backend == "pymupdf" else 0
        self.wall_seconds = wall_seconds
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        for slot in range(processes):
            self._idle.put(self._start(slot))

    def _start(self, slot: int) -> _Worker:
        settings = self.options.to_json()
        process = subprocess.Popen(
            [sys.executable, "-m", "mailsafe.render.pool", settings, str(self.cpu_seconds),
             str(self.memory_bytes)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,  # own process group: a kill takes Chromium children with it
        )  # fmt: skip
        widen_pipe(process.stdout)  # a package (~100 KB) crosses in one write and one read
        worker = _Worker(process, slot)
        cpus = _cpu_for(slot) if self.pin_cpus else None
        if cpus is not None:
            with contextlib.suppress(OSError):  # gone already, or a CPU set we may not use
                os.sched_setaffinity(process.pid, cpus)
        with self._lock:
            self._all.add(worker)
        return worker

    def render(
        self,
        raw: bytes,
        *,
        mask_types: frozenset[str] | None = None,
        known: tuple[tuple[PiiType, str], ...] = (),
        positions: tuple[tuple[PiiType, Position], ...] = (),
        values: tuple[tuple[PiiType, str], ...] = (),
    ) -> RenderedMail:
        """Render ``raw`` in a worker; failures give a not-displayable notice with a reason.
        ``mask_types`` (mailsafe.pii names) replaces the options' for this mail: personal
        data of those types is masked before it becomes pixels or text; ``known`` (type,
        digits) numbers found in it before are hidden wherever their digits are drawn;
        ``positions`` (type, position) found in its pictures before are painted over;
        ``values`` (type, characters) found in it before are hidden wherever they are drawn."""
        # A wrong name is refused here, before any worker: the caller's bug, not the mail's.
        types = self.options.mask_types if mask_types is None else checked_mask_types(mask_types)
        known = checked_known(known)
        positions = checked_positions(positions)
        values = checked_values(values)
        job = _job(b"R", raw, types, known=known, positions=positions, values=values)
        reply, reason = self._run(job, self.wall_seconds)
        if reply is not None:
            return reply
        log.warning("render worker failed: %s", reason)
        summary, _ = self._run(_job(b"S", raw, types), self.wall_seconds * SUMMARY_SHARE)
        if summary is not None:
            return _with_reason(summary, reason)
        return headers_only(raw, reason, types)

    def filter(self, raw: bytes, job: FilterJob) -> tuple[FilterResult | None, str]:
        """The receive filters and the parts' packages for ``raw`` (``job.rules``: the
        policy's text, sent only to a worker that has not had this version); (None, reason)
        when the worker failed (a reason code of WORKER_REASONS, or ``rules-invalid``)."""
        for _ in range(2):  # a worker that lost its rules (replaced meanwhile) gets them again
            untrusted, reason = self._exchange(
                lambda worker: self._filter_job(worker, raw, job),
                MAX_FILTER_REPLY_BYTES,
                job.policy_version,
            )
            if untrusted is None:
                return None, reason
            if untrusted[:1] == b"V":
                try:
                    return decode_reply(untrusted[1:], job.rcpts), ""
                except MailsafeError:
                    return None, "bad_package"
            code = untrusted[1:65].decode("ascii", "replace")
            if code != POLICY_UNKNOWN:
                return None, code if code in REASONS or code == RulesError.code else "render_error"
        return None, "render_error"

    @staticmethod
    def _filter_job(worker: _Worker, raw: bytes, job: FilterJob) -> bytes:
        rules = job.rules if worker.policy != job.policy_version else None
        head = encode_job(dataclasses.replace(job, rules=rules))
        return _with_head(b"F", head, raw)

    def _run(self, job: bytes, wall_seconds: float) -> tuple[RenderedMail | None, str]:
        untrusted, reason = self._exchange(lambda _worker: job, MAX_REPLY_BYTES, None,
                                           wall_seconds)  # fmt: skip
        if untrusted is None:
            return None, reason
        return _decode_reply(untrusted)

    def _exchange(
        self,
        job_for: Callable[[_Worker], bytes],
        max_reply: int,
        policy: int | None,
        wall_seconds: float | None = None,
    ) -> tuple[bytes | None, str]:
        """One job in an idle worker: its untrusted reply, or (None, reason) when it failed
        (and was replaced). ``policy``: the version the worker holds after this job."""
        if self._closed:
            raise RuntimeError("RenderPool is closed")
        worker = self._idle.get()
        try:
            job = job_for(worker)
            untrusted_reply = exchange(worker.process, job, wall_seconds or self.wall_seconds,
                                       max_reply)  # fmt: skip
        except ChildFailed as failure:
            self._replace(worker)
            return None, "bad_package" if failure.reason == "too_big" else failure.reason
        if policy is not None and untrusted_reply[:1] == b"V":
            worker.policy = policy
        self._idle.put(worker)
        return untrusted_reply, ""

    def _replace(self, worker: _Worker) -> None:
        self._kill(worker)
        with self._lock:
            self._all.discard(worker)
        if not self._closed:
            self._idle.put(self._start(worker.slot))

    @staticmethod
    def _kill(worker: _Worker) -> None:
        kill_child(worker.process)

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
    note = REASONS.get(reason, reason)
    manifest = dataclasses.replace(mail.manifest, reason=reason, notes=(note, *mail.manifest.notes))
    return dataclasses.replace(mail, manifest=manifest)


def headers_only(raw: bytes, reason: str, mask_types: frozenset[str] = frozenset()) -> RenderedMail:
    """Last resort in the parent: the header block only, bounded, when even a summary failed;
    the header fields masked for ``mask_types`` (text only: nothing is drawn here)."""
    limit = ParseLimits().max_header_bytes
    try:
        headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(
            raw[:limit]
        )

        def shown(name: str) -> str:
            value = decode_header_text(raw_header_to_text(headers.get(name, "")))
            found = [f for f in detect(value) if f.type in mask_types] if mask_types else []
            return mask_text(value, found) if found else value

        block = HeaderBlock(
            from_=shown("from"), to=shown("to"), date=shown("date"), subject=shown("subject")
        )
    except (ValueError, TypeError, UnicodeError, LookupError, IndexError):
        block = HeaderBlock()
    manifest = Manifest(
        version=PACKAGE_VERSION,
        mail_id="",
        status="not_displayable",
        reason=reason,
        headers=block,
        notes=(REASONS.get(reason, reason), note("attachment_list_unread")),
    )
    return RenderedMail(manifest=manifest)


def _main(argv: list[str]) -> None:
    settings, cpu_seconds, memory_bytes = argv
    options = RenderOptions.from_json(settings)
    worker_main(options, int(cpu_seconds), int(memory_bytes) or None)


if __name__ == "__main__":
    _main(sys.argv[1:])
