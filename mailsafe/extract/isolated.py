"""Read a mail's attachments in a child process with memory, CPU and wall-clock limits.

The outbound scan opens whatever employees attach: PDFs through MuPDF, ZIP archives, Office
and HWP containers. ``ExtractLimits`` bound the work between steps, but a decoder stuck inside
one C call, or one that allocates gigabytes, would take the inner agent down with it, and
after a restart the same mail would be read again: one crafted file would stop inbound and
outbound mail alike. So the reading runs in a child, as rendering does on the outer side
(:mod:`mailsafe.render.pool`), and a child that dies or is killed by a limit costs one mail's
attachments, which become ``Unreadable`` findings (``timeout`` or ``reader-failed``) that the
policy holds like any unreadable attachment. The subject, bodies and attachment names are
still scanned.

The parent parses the mail; only the attachments' bytes cross. (A child that parsed the mail
itself could, short of memory, fall back to a degraded parse and report fewer attachments:
a way past the scan. The parent's parse is the one truth.) Frames (see :mod:`mailsafe.limited`)::

    parent -> child   msgpack list of [name, bytes], one per attachment, in the order
                      mail_locations reads them
    child -> parent   msgpack list, one per attachment, of lists of
                      ["L", where, text, pages, pictures] and ["U", where, reason, detail];
                      or b"E" + reason code. ``pages``: where each page starts in ``text``;
                      ``pictures``: [page, width, height, [start, end, left, top, right,
                      bottom, ...]] per picture read by OCR (mailsafe.positions.TextLayout)

The parent checks every item of the reply (shape, count, reason codes, lengths) first.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys
import threading
from typing import Any, Final

import msgpack

from mailsafe.extract import (
    ExtractLimits,
    Found,
    attachments_to_read,
    mail_locations,
    surface_locations,
)
from mailsafe.extract.attachments import attachment_locations
from mailsafe.extract.limits import Budget
from mailsafe.extract.ocr import MAX_DECODED_PIXELS, MAX_OCR_WORDS
from mailsafe.extract.types import UNREADABLE_REASONS, Location, Unreadable
from mailsafe.limited import ChildFailed, exchange, kill_child, serve_frames, set_limits
from mailsafe.mime import ParsedMail, ParseLimits
from mailsafe.positions import PictureLayout, PlacedWord, TextLayout

__all__ = ["AttachmentReader"]

log = logging.getLogger(__name__)

MIB = 1 << 20
# Address space of the child: Python and MuPDF take ~300 MiB of it; the extraction limits allow
# a 64 MiB mail, 200 MiB unpacked from its archives and the text read from them.
DEFAULT_MEMORY_BYTES: Final = 2048 * MIB
# Beyond ExtractLimits.max_seconds (checked between steps, a clean "timeout" finding), the
# child gets this much more before it is killed: only a decoder stuck in one call gets there.
HARD_LIMIT_GRACE_SECONDS: Final = 15.0
# A child just started imports Python, MuPDF and the readers before it reads its first job.
STARTUP_SECONDS: Final = 10.0
# The attachments of one mail are at most what the parser keeps decoded, plus framing.
MAX_JOB_BYTES: Final = ParseLimits().max_decoded_bytes + MIB
# Longest place name and detail the parent takes (archive paths nest; details are one line).
MAX_WHERE_CHARS: Final = 64 * 1024
MAX_DETAIL_CHARS: Final = 4096
# Reason codes of the child itself, as the policy sees them.
_CHILD_REASONS: Final = {"timeout": "timeout", "cpu_limit": "timeout"}
_FAILED: Final = "reader-failed"
# Pictures one place's text is read from: a PDF's scanned pages (at most max_pdf_pages), or
# one attached picture.
MAX_PICTURES_PER_PLACE: Final = 10_000
# Page numbers the parent takes (a PDF's pages past max_pdf_pages are not read).
MAX_PAGE_NUMBER: Final = 100_000


class AttachmentReader:
    """``read(parsed)``: the locations of one mail, its attachments read in the child;
    thread-safe (one mail at a time); never raises on input. ``close()`` stops the child."""

    def __init__(
        self,
        limits: ExtractLimits | None = None,
        *,
        memory_bytes: int = DEFAULT_MEMORY_BYTES,
        grace_seconds: float = HARD_LIMIT_GRACE_SECONDS,
    ) -> None:
        self.limits = limits or ExtractLimits()
        self.memory_bytes = memory_bytes
        self.wall_seconds = self.limits.max_seconds + grace_seconds
        self.cpu_seconds = int(self.wall_seconds) + 1
        self._child: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def read(self, parsed: ParsedMail) -> list[Found]:
        files = attachments_to_read(parsed)
        if not files:
            return mail_locations(parsed, _nothing_to_read)
        with self._lock:
            try:
                results = iter(self._read_retrying(files))
            except ChildFailed as failure:
                reason = _CHILD_REASONS.get(failure.reason, _FAILED)
                log.warning("attachment reader failed (%s): attachments held as unreadable",
                            reason)  # fmt: skip
                return surface_locations(parsed, reason, _detail(reason))
        return mail_locations(parsed, lambda _name, _data: next(results))

    def _read_retrying(self, files: list[tuple[str, bytes]]) -> list[list[Found]]:
        """One try; a second with a new child when one that had already read other mail
        died (killed from outside, or gone while idle: not this mail's doing, as far as can
        be told). A file that kills its reader kills the new one too, and is unreadable."""
        fresh = self._child is None or self._child.poll() is not None
        try:
            return self._read(files)
        except ChildFailed as failure:
            self._stop_child()
            if fresh or failure.reason != "worker_crash":
                raise
        log.info("attachment reader died; trying the mail once more with a new one")
        try:
            return self._read(files)
        except ChildFailed:
            self._stop_child()
            raise

    @property
    def child_pid(self) -> int | None:
        """The running child's process id (None before the first mail and after a failure)."""
        return self._child.pid if self._child is not None else None

    def _read(self, files: list[tuple[str, bytes]]) -> list[list[Found]]:
        job = bytes(msgpack.packb([[name, data] for name, data in files]))
        wall_seconds = self.wall_seconds
        if self._child is None or self._child.poll() is not None:
            self._child = self._start()
            wall_seconds += STARTUP_SECONDS
        max_reply = 4 * (self.limits.max_unpacked_bytes + MAX_JOB_BYTES)
        untrusted_reply = exchange(self._child, job, wall_seconds, max_reply)
        if untrusted_reply[:1] == b"E":
            code = untrusted_reply[1:65].decode("ascii", "replace")
            raise ChildFailed(code if code in _CHILD_REASONS else _FAILED)
        return _decode(untrusted_reply, self.limits, len(files))

    def _start(self) -> subprocess.Popen[bytes]:
        settings = json.dumps(dataclasses.asdict(self.limits))
        return subprocess.Popen(
            [sys.executable, "-m", "mailsafe.extract.isolated", settings, str(self.cpu_seconds),
             str(self.memory_bytes)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )  # fmt: skip

    def _stop_child(self) -> None:
        if self._child is not None:
            kill_child(self._child)
            self._child = None

    def close(self) -> None:
        with self._lock:
            self._stop_child()

    def __enter__(self) -> AttachmentReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _nothing_to_read(_name: str, _data: bytes) -> list[Found]:
    raise AssertionError("attachments_to_read found none")  # pragma: no cover


def _detail(reason: str) -> str:
    if reason == "timeout":
        return "reading the attachments ran over its time or CPU limit and was stopped"
    return "the process reading the attachments crashed or ran out of memory"


def _decode(untrusted_reply: bytes, limits: ExtractLimits, files: int) -> list[list[Found]]:
    """The child's reply, every item checked; ChildFailed("reader-failed") if anything is off."""
    longest_text = limits.max_text_chars
    try:
        per_file = msgpack.unpackb(
            untrusted_reply, raw=False, unicode_errors="surrogatepass",
            max_str_len=4 * longest_text, max_bin_len=0,
            max_array_len=max(4 * limits.max_files, files, 6 * MAX_OCR_WORDS),
            max_map_len=0, max_ext_len=0,
        )  # fmt: skip
        if not isinstance(per_file, list) or len(per_file) != files:
            raise ValueError("not one answer per attachment")
        return [[_item(untrusted, longest_text) for untrusted in found] for found in per_file]
    except Exception as exc:
        raise ChildFailed(_FAILED) from exc


def _item(untrusted: Any, longest_text: int) -> Found:
    match untrusted:
        case ["L", str(where), str(text), list(pages), list(pictures)] if (
            len(where) <= MAX_WHERE_CHARS
        ):
            if len(text) > longest_text:
                raise ValueError("text longer than the limits allow")
            return Location(where, text, _layout(pages, pictures, len(text)))
        case ["L", str(where), str(text)] if len(where) <= MAX_WHERE_CHARS:  # no layout
            if len(text) > longest_text:
                raise ValueError("text longer than the limits allow")
            return Location(where, text)
        case ["U", str(where), str(reason), str(detail)] if reason in UNREADABLE_REASONS:
            if len(where) > MAX_WHERE_CHARS or len(detail) > MAX_DETAIL_CHARS:
                raise ValueError("place or detail too long")
            return Unreadable(where, reason, detail)
    raise ValueError("not a location")


# --------------------------------------------------------------------------- child side


def _answer(job: bytes, limits: ExtractLimits) -> bytes:
    try:
        files = msgpack.unpackb(job, raw=False, max_map_len=0, max_ext_len=0)
        budget = Budget(limits)  # one budget for the mail, as in-process reading has
        per_file = [
            [_encoded(item) for item in attachment_locations(str(name), bytes(data), budget)]
            for name, data in files
        ]
        # surrogatepass: text decoded with surrogateescape crosses unchanged.
        return bytes(msgpack.packb(per_file, unicode_errors="surrogatepass"))
    except MemoryError:
        return b"Ememory_limit"
    except Exception:  # noqa: BLE001 - a reader bug on hostile input costs this mail's attachments
        return b"Ereader_error"


def _layout(untrusted_pages: list[Any], untrusted_pictures: list[Any], length: int) -> TextLayout:
    """A location's layout as the child sent it, every number checked: offsets inside the
    text, boxes inside their picture (ValueError otherwise)."""
    if len(untrusted_pictures) > MAX_PICTURES_PER_PLACE:
        raise ValueError("more pictures than one place can hold")
    pages = tuple(_count(start, length) for start in untrusted_pages)
    return TextLayout(pages, tuple(_picture(p, length) for p in untrusted_pictures))


def _picture(untrusted: Any, length: int) -> PictureLayout:
    match untrusted:
        case [int(page), int(width), int(height), list(flat)] if len(flat) % 6 == 0:
            pixels = (_count(width, MAX_DECODED_PIXELS), _count(height, MAX_DECODED_PIXELS))
            words = []
            for index in range(0, min(len(flat), 6 * MAX_OCR_WORDS), 6):
                start, end, left, top, right, bottom = flat[index : index + 6]
                if _count(start, length) > _count(end, length):
                    raise ValueError("a word ends before it starts")
                box = (_count(left, pixels[0]), _count(top, pixels[1]),
                       _count(right, pixels[0]), _count(bottom, pixels[1]))  # fmt: skip
                words.append(PlacedWord(start, end, box))
            return PictureLayout(_count(page, MAX_PAGE_NUMBER), pixels, tuple(words))
    raise ValueError("not a picture's words")


def _count(untrusted: Any, most: int) -> int:
    """A whole number from 0 to ``most`` (ValueError otherwise; bool is no number here)."""
    if type(untrusted) is not int or not 0 <= untrusted <= most:
        raise ValueError("number out of bounds")
    return untrusted


def _encoded(item: Found) -> list[Any]:
    if isinstance(item, Location):
        pictures = [
            [p.page, *p.pixels, [n for w in p.words for n in (w.start, w.end, *w.box)]]
            for p in item.layout.pictures
        ]
        return ["L", item.where, item.text, list(item.layout.pages), pictures]
    return ["U", item.where, item.reason, item.detail[:MAX_DETAIL_CHARS]]


def _main(argv: list[str]) -> None:
    settings, cpu_seconds, memory_bytes = argv
    limits = ExtractLimits(**json.loads(settings))
    set_limits(int(memory_bytes) or None)
    serve_frames(lambda job: _answer(job, limits), int(cpu_seconds), MAX_JOB_BYTES)


if __name__ == "__main__":
    _main(sys.argv[1:])
