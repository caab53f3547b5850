"""What extraction yields: a piece of text and where it was, or a file that could not be read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from mailsafe.positions import NO_LAYOUT, TextLayout

# Stable reason codes of unreadable attachments (policy rules and audit records use them).
UNREADABLE_REASONS: Final = frozenset(
    {
        "encrypted",  # password-protected ZIP, PDF, HWP or Office file
        "corrupt",  # the file does not parse as what it claims to be
        "too-big",  # over the size limit, alone or with everything unpacked before it
        "too-deep",  # archives nested deeper than the limit
        "too-many-files",  # archives holding more files than the limit
        "zip-bomb",  # a member expanding far beyond its packed size
        "timeout",  # reading the mail's attachments ran out of time
        "unsupported-format",  # a document format that may hold text we cannot read
        "reader-failed",  # the reading process crashed or hit its memory or CPU limit
    }
)


@dataclass(frozen=True)
class Location:
    """Text found somewhere in a mail. ``where`` names the place, e.g. ``subject``,
    ``body.html``, ``attachment-name:a.zip/b.txt``, ``attachment:a.zip/b.xlsx``; ``layout``
    says where in a paged document or a picture each part of ``text`` was (its pages, the
    words OCR read and their boxes), for the positions of findings (mailsafe.positions)."""

    where: str
    text: str
    # Not compared: two readings of the same text at the same place are the same location.
    layout: TextLayout = field(default=NO_LAYOUT, compare=False)


@dataclass(frozen=True)
class Unreadable:
    """An attachment whose text could not be read; ``reason`` is one of UNREADABLE_REASONS."""

    where: str
    reason: str
    detail: str
