"""ASCII armour for linkage products that carry only text files or rewrite line endings.

    -----BEGIN MAILDIODE CHUNK-----
    <base64 of the chunk file, 76 characters per line>
    -----END MAILDIODE CHUNK-----

The reader accepts LF or CRLF line ends and trailing spaces; anything else is BAD_ARMOR.
"""

from __future__ import annotations

import base64
import binascii

from protocol.errors import Reason, RemoteError

__all__ = ["ARMOR_BEGIN", "ARMOR_END", "armor", "dearmor", "is_armored"]

ARMOR_BEGIN = b"-----BEGIN MAILDIODE CHUNK-----"
ARMOR_END = b"-----END MAILDIODE CHUNK-----"
LINE_WIDTH = 76  # the MIME line width; survives every text-only transfer we know


def armor(data: bytes) -> bytes:
    encoded = base64.b64encode(data)
    lines = [encoded[i : i + LINE_WIDTH] for i in range(0, len(encoded), LINE_WIDTH)]
    return b"\n".join([ARMOR_BEGIN, *lines, ARMOR_END]) + b"\n"


def is_armored(untrusted: bytes) -> bool:
    return untrusted.startswith(ARMOR_BEGIN)


def dearmor(untrusted: bytes) -> bytes:
    lines = [line.rstrip(b" \t\r") for line in untrusted.split(b"\n")]
    while lines and not lines[-1]:
        lines.pop()
    if len(lines) < 2 or lines[0] != ARMOR_BEGIN or lines[-1] != ARMOR_END:
        raise RemoteError(Reason.BAD_ARMOR, "armour BEGIN/END lines missing")
    body = b"".join(lines[1:-1])
    try:
        return binascii.a2b_base64(body, strict_mode=True)
    except binascii.Error as exc:
        raise RemoteError(Reason.BAD_ARMOR, f"armour body is not base64 ({exc})") from None
