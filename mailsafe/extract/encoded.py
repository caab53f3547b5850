"""Text base64-encoded into a mail's body.

Pasting ``ODAwMTAxLTEyMzQ1NjA=`` into a body takes ``800101-1234560`` past a scan that reads
only what is written; any recipient decodes it in one step (issue 19.5). Every run of base64
long enough to hold a number is decoded, and what decodes to text is read as text; anything
else (a file's bytes, or a long word that happens to be base64) is left alone.
"""

from __future__ import annotations

import binascii
import re
from typing import Final

__all__ = ["base64_texts"]

# Runs are found in the text's shape: its ASCII bytes with every base64 character "b" (one
# byte per character, so positions are kept), where the engine looks for the literal first
# sixteen "b"s ahead: a character class at every position of every body was ten times slower.
# 16 characters decode to 12 bytes: "800101-1234560" takes 20. Line breaks inside a run are
# allowed (a pasted block of 76-character lines). The URL-safe alphabet ("-_") is left out:
# with it, every order number and file name ("ORD-20240715-001234") would be a run.
_ALPHABET: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_SHAPE: Final = bytes.maketrans(_ALPHABET, b"b" * len(_ALPHABET))
_SHORTEST_RUN: Final = b"b" * 16
_RUN_RE: Final = re.compile(rb"b{16,}={0,2}(?:\r?\nb{4,}={0,2})*")
# More pieces than this in one text is not a way anyone sends data; the rest is not decoded.
MAX_PIECES: Final = 200
# Decoded text is text when at least this share of it is printable (or white space).
_PRINTABLE_SHARE: Final = 0.9


def base64_texts(text: str) -> list[str]:
    """The texts base64-encoded in ``text``, in order."""
    shape = text.encode("ascii", "replace").translate(_SHAPE)
    if _SHORTEST_RUN not in shape:
        return []
    found: list[str] = []
    for number, match in enumerate(_RUN_RE.finditer(shape)):
        if number >= MAX_PIECES:
            break
        run = text[match.start() : match.end()]
        if run.lower() == run or run.upper() == run:
            continue  # base64 of text mixes cases; paths and words in one case are not it
        data = _decoded(run)
        decoded = None if data is None else _as_text(data)
        if decoded is not None:
            found.append(decoded)
    return found


def _decoded(run: str) -> bytes | None:
    compact = "".join(run.split()).rstrip("=")
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
