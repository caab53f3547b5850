"""Reading the DATA of one SMTP transaction in one piece instead of line by line.

aiosmtpd reads DATA one line at a time through Python code (about 150 awaits for a 10 KB
mail); that loop was most of the intake's CPU time. Here the stream reader is asked for
everything up to the terminator at once, then dot-stuffing is undone and the line length is
checked in a few C-level passes. Only ``<CRLF>.<CRLF>`` ends the data (no bare-LF variants:
the SMTP-smuggling rule of aiosmtpd 1.4.5+), and the replies for over-size data (552) and
over-long lines (500) are the ones aiosmtpd gives.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

__all__ = ["DataResult", "read_data", "unstuff"]

TERMINATOR = b"\r\n.\r\n"
# RFC 5321 §4.5.3.1.6: 998 octets + CRLF; aiosmtpd also allows one transparency dot.
MAX_LINE_BYTES = 1001
REPLY_TOO_MUCH = "552 5.3.4 Error: Too much mail data"
REPLY_LINE_TOO_LONG = "500 5.5.2 Line too long (see RFC5321 4.5.3.1.6)"
# Over-size data is drained in pieces of this size while looking for the terminator.
DRAIN_BYTES = 1 << 16


@dataclass(frozen=True)
class DataResult:
    content: bytes | None  # the message, dot-stuffing undone; None when refused
    refusal: str | None


def unstuff(raw: bytes) -> DataResult:
    """``raw`` is the data up to (not including) the final ``.<CRLF>``, ending in CRLF or empty."""
    if any(len(line) + 2 > MAX_LINE_BYTES for line in raw.split(b"\r\n")):
        return DataResult(None, REPLY_LINE_TOO_LONG)
    body = raw.replace(b"\r\n.", b"\r\n")  # RFC 5321 §4.5.2: drop the first dot of every line
    if body.startswith(b"."):
        body = body[1:]
    return DataResult(body, None)


async def read_data(stream: asyncio.StreamReader, limit: int) -> DataResult:
    """Read up to and including the terminator; never more (pipelined commands stay)."""
    reader: Any = stream  # asyncio's private buffer and limit are used on purpose (see above)
    if not await _at_line_start_dot(reader):
        saved = reader._limit
        reader._limit = limit + len(TERMINATOR)
        try:
            raw = await reader.readuntil(TERMINATOR)
        except asyncio.LimitOverrunError:
            await _drain(reader)
            return DataResult(None, REPLY_TOO_MUCH)
        finally:
            reader._limit = saved
        raw = raw[: -len(TERMINATOR) + 2]  # keep the last line's CRLF, drop ".\r\n"
    else:
        raw = b""
    if len(raw) > limit:
        return DataResult(None, REPLY_TOO_MUCH)
    return unstuff(raw)


async def _at_line_start_dot(reader: Any) -> bool:
    """True (and consumed) when the data is empty: ``.<CRLF>`` right after the 354."""
    while len(reader._buffer) < 3 and not reader.at_eof():
        await reader._wait_for_data("read_data")
    if bytes(reader._buffer[:3]) == b".\r\n":
        await reader.readexactly(3)
        return True
    if len(reader._buffer) < 3:
        raise asyncio.IncompleteReadError(bytes(reader._buffer), 3)
    return False


async def _drain(reader: Any) -> None:
    """Throw data away up to the terminator, keeping memory bounded."""
    tail = b""
    while True:
        try:
            await reader.readuntil(TERMINATOR)
            return
        except asyncio.LimitOverrunError as exc:
            chunk = await reader.read(max(exc.consumed, 1))
            window = tail + chunk
            if TERMINATOR in window:  # the terminator straddled the previous cut
                return
            tail = window[-(len(TERMINATOR) - 1) :]
