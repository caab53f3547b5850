"""Limits on reading attachments, and the budget one mail spends against them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mailsafe.errors import LimitExceeded

MIB = 1 << 20


@dataclass(frozen=True)
class ExtractLimits:
    """How much work reading one mail's attachments may take. Every value is a refusal
    point: past it the attachment becomes an ``Unreadable`` finding, never silently skipped."""

    # Outbound mail servers commonly cap messages at 25-50 MiB; one file beyond that is not
    # read (base64 makes the mail a third larger still).
    max_file_bytes: int = 50 * MIB
    # Everything unpacked from archives and Office/HWP containers of one mail, together.
    max_unpacked_bytes: int = 200 * MIB
    # A ZIP inside a ZIP inside a ZIP: real mail rarely nests deeper than two.
    max_depth: int = 4
    # Files read from all archives of one mail (an export of a few hundred documents).
    max_files: int = 1000
    # A member expanding more than this many times its packed size is a zip bomb
    # (text and XML compress 5-20x; 100x is past anything but filler).
    max_compression_ratio: int = 100
    # The ratio is only judged on members at least this big: tiny files compress oddly.
    ratio_floor_bytes: int = 1 * MIB
    # Text read per file: a longer text is scanned in its first 20 Mi characters and the file
    # is unreadable (too-big), so what was not read holds the mail (D19).
    max_text_chars: int = 20 * MIB
    # PDF pages read per document (long reports are scanned in their first 2000 pages).
    max_pdf_pages: int = 2000
    # Wall-clock seconds for reading all attachments of one mail.
    max_seconds: float = 30.0
    # Tesseract languages pictures are read in ("kor+eng"); empty: pictures' pixels are not
    # read (their stored words still are). The inner agent sets it from ``[outbound] ocr``.
    ocr_languages: str = ""
    # OCR is best effort within these (a screenshot takes about a second): pictures past
    # them are not read, and that alone holds no mail, as with OCR off.
    ocr_max_pictures: int = 20
    ocr_max_seconds: float = 20.0
    # Larger pictures are shrunk to this many pixels first (a full-HD screenshot is 2 Mpx).
    ocr_max_pixels: int = 4_000_000


@dataclass
class Budget:
    """What is left of the limits while one mail is read. Not shared between mails."""

    limits: ExtractLimits
    clock: Callable[[], float] = time.monotonic
    unpacked_bytes: int = 0
    files: int = 0
    started: float = field(default=0.0)
    ocr_pictures: int = 0
    ocr_seconds: float = 0.0

    def __post_init__(self) -> None:
        self.started = self.clock()

    def seconds_left(self) -> float:
        return self.limits.max_seconds - (self.clock() - self.started)

    def check_time(self) -> None:
        if self.clock() - self.started > self.limits.max_seconds:
            raise LimitExceeded(
                f"reading attachments took more than {self.limits.max_seconds:g} s",
                code="timeout",
            )

    def spend(self, size: int) -> None:
        """Account for ``size`` more unpacked bytes and one more file."""
        self.check_time()
        self.files += 1
        self.unpacked_bytes += size
        if self.files > self.limits.max_files:
            raise LimitExceeded(
                f"more than {self.limits.max_files} files in archives", code="too-many-files"
            )
        if self.unpacked_bytes > self.limits.max_unpacked_bytes:
            raise LimitExceeded(
                f"more than {self.limits.max_unpacked_bytes // MIB} MiB unpacked in total",
                code="too-big",
            )
