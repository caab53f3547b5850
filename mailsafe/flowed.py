"""``format=flowed`` text (RFC 3676) joined as a mail client shows it.

A flowed line ending in a space is soft: the client joins the next line to it, and with
``delsp=yes`` drops that space too, so ``80010 ⏎ 1-1234560`` reads ``800101-1234560``. What a
reader sees is what the scan must read (issue 19.5).
"""

from __future__ import annotations

from typing import Final

__all__ = ["unflow"]

_SIGNATURE: Final = "-- "


def unflow(text: str, *, delsp: bool) -> str:
    """``text`` (format=flowed) with its soft line breaks joined (RFC 3676 4.1-4.2)."""
    lines: list[str] = []
    open_line: str | None = None
    open_depth = 0
    for raw in text.replace("\r\n", "\n").split("\n"):
        depth = len(raw) - len(raw.lstrip(">"))
        line = raw[depth:]
        if line.startswith(" "):
            line = line[1:]  # space-stuffing (4.4)
        if open_line is not None and depth == open_depth:
            line = open_line + line
        elif open_line is not None:
            lines.append(_quoted(open_line, open_depth))
        open_line, open_depth = None, depth
        if line.endswith(" ") and line != _SIGNATURE:
            open_line = line[:-1] if delsp else line
            continue
        lines.append(_quoted(line, depth))
    if open_line is not None:
        lines.append(_quoted(open_line, open_depth))
    return "\n".join(lines)


def _quoted(line: str, depth: int) -> str:
    return f"{'>' * depth} {line}" if depth else line
