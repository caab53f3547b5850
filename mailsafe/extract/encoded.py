"""Text and files base64-encoded into a text body or a text file.

Pasting ``ODAwMTAxLTEyMzQ1NjA=`` into a body takes ``800101-1234560`` past a scan that reads
only what is written; any recipient decodes it in one step (issue 19.5). Every run of base64
long enough to hold a number is decoded: what decodes to text is read as text, what decodes
to a file (a ZIP, a PDF, a picture ...) is read as an attachment; anything else is noise.
"""

from __future__ import annotations

import binascii
import re
from typing import Final

__all__ = ["EncodedPieces", "base64_pieces"]

# 16 characters decode to 12 bytes: "800101-1234560" takes 20. Line breaks inside a run are
# allowed (a pasted block of 76-character lines). "-_" for the URL-safe alphabet.
_RUN_RE: Final = re.compile(
    r"(?<![A-Za-z0-9+/_\-])[A-Za-z0-9+/_\-]{16,}={0,2}(?:\r?\n[A-Za-z0-9+/_\-]{4,}={0,2})*"
)
# More pieces than this in one text is not a way anyone sends data; the rest is not decoded.
MAX_PIECES: Final = 200
# Decoded text is text when at least this share of it is printable (or white space).
_PRINTABLE_SHARE: Final = 0.9
# Files a recipient's software opens from decoded bytes (see mailsafe.extract.attachments).
_FILE_MAGICS: Final = (
    b"PK\x03\x04", b"%PDF-", b"\x89PNG", b"\xd0\xcf\x11\xe0", b"\x1f\x8b", b"\xff\xd8\xff",
    b"GIF8", b"BM",
)  # fmt: skip

EncodedPieces = tuple[list[str], list[bytes]]


def base64_pieces(text: str) -> EncodedPieces:
    """(texts, files) base64-encoded in ``text``, in order."""
    texts: list[str] = []
    files: list[bytes] = []
    for number, match in enumerate(_RUN_RE.finditer(text)):
        if number >= MAX_PIECES:
            break
        data = _decoded(match.group())
        if data is None:
            continue
        if data.startswith(_FILE_MAGICS):
            files.append(data)
        elif (decoded := _as_text(data)) is not None:
            texts.append(decoded)
    return texts, files


def _decoded(run: str) -> bytes | None:
    compact = "".join(run.split())
    compact = compact.replace("-", "+").replace("_", "/").rstrip("=")
    compact += "=" * (-len(compact) % 4)
    try:
        return binascii.a2b_base64(compact, strict_mode=True)
    except binascii.Error:
        return None


def _as_text(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    printable = sum(char.isprintable() or char.isspace() for char in text)
    return text if text and printable >= _PRINTABLE_SHARE * len(text) else None
