"""Files uuencoded into a text body ("begin 644 name" ... "end").

Before MIME, files travelled inside the text of a mail, and mail clients (Outlook, Thunderbird)
still show such a block as an attachment. Left in the body it reads as noise to the scan, so a
spreadsheet sent that way went out unscanned; each block is decoded and read as an attachment.
"""

from __future__ import annotations

import binascii
import posixpath
import re
from typing import Final

__all__ = ["uuencoded_files"]

# "begin" at the start of a line. The look-behind (nothing but a line break before "begin")
# comes after the word rather than a leading "^", so the engine skips ahead to each "begin"
# instead of trying every position of the body.
_BEGIN: Final = re.compile(r"begin(?<![^\n]begin) [0-7]{3,4} +(\S[^\r\n]*?)\s*$", re.M)
_END: Final = re.compile(r"^end\s*$", re.M)
# More blocks than this in one body is not a way anyone sends files.
MAX_BLOCKS: Final = 100


def uuencoded_files(text: str) -> list[tuple[str, bytes]]:
    """(name, bytes) of every uuencoded block of ``text``, in order; a line that does not
    decode is left out, as the uu tools do with what they cannot read."""
    found: list[tuple[str, bytes]] = []
    position = 0
    while len(found) < MAX_BLOCKS:
        begin = _BEGIN.search(text, position)
        if begin is None:
            break
        end = _END.search(text, begin.end())
        stop = end.start() if end else len(text)
        lines = text[begin.end() : stop].splitlines()
        name = posixpath.basename(begin.group(1).strip("\"'")) or "uuencoded"
        found.append((name, b"".join(_decoded(line) for line in lines if line.strip())))
        position = end.end() if end else len(text)
    return found


def _decoded(line: str) -> bytes:
    try:
        raw = line.encode("ascii")
    except UnicodeEncodeError:
        return b""
    try:
        return binascii.a2b_uu(raw)
    except binascii.Error:
        # Some encoders pad lines with extra characters; read as many as the length byte says.
        length = (((raw[0] - 32) & 63) * 4 + 5) // 3
        try:
            return binascii.a2b_uu(raw[:length])
        except binascii.Error:
            return b""
