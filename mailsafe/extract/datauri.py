"""Files carried inside HTML as ``data:`` URIs.

``<a href="data:text/csv;base64,...">`` is a link a browser opens as a file, and
``<img src="data:...">`` or ``url(data:...)`` an embedded picture. Neither is text a reader
sees, so the HTML's text passes them by and a list put there left unscanned. Each URI is
decoded and read as a file named after its place and type (``body.html/data-1.csv``).
"""

from __future__ import annotations

import binascii
import mimetypes
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote_to_bytes

from mailsafe.extract.types import Unreadable

__all__ = ["MAX_DATA_URIS", "DataUris", "data_uri_files"]

# More than this in one HTML document is not a way anyone sends files; the rest is reported.
MAX_DATA_URIS: Final = 500
# "data:", a header of MIME type and ";parameters" (bounded, so a "data:" with no comma after
# it costs at most that much), ",", the payload up to the end of the attribute or url(...).
_DATA_URI_PATTERN: Final = r"""\bdata:([^,"'<>\s()]{0,200}),([^"'<>\s()]*)"""
# The case-blind form is ten times slower (no literal to skip to), so it is used only when a
# "data:" is not written in lower case, which browsers accept too.
_DATA_URI_RE: Final = re.compile(_DATA_URI_PATTERN)
_DATA_URI_ANY_CASE_RE: Final = re.compile(_DATA_URI_PATTERN, re.IGNORECASE)
# mimetypes gives odd first choices for a few common types.
_EXTENSIONS: Final = {"text/plain": ".txt", "image/jpeg": ".jpg", "application/octet-stream": ""}


@dataclass(frozen=True)
class DataUris:
    """The files of one HTML document's data: URIs, and how many were left unread."""

    files: list[tuple[str, bytes]]
    skipped: int

    def refusals(self, where: str) -> list[Unreadable]:
        """The URIs left unread, as the finding at ``where`` (none when all were read)."""
        if not self.skipped:
            return []
        detail = f"{self.skipped} data: URI(s) past the first {MAX_DATA_URIS} not read"
        return [Unreadable(where, "too-many-files", detail)]


def data_uri_files(html: str) -> DataUris:
    """(``data-N.ext``, bytes) of every data: URI in ``html``, in order; a payload that
    does not decode gives the bytes that did (base64 is decoded leniently, as browsers do)."""
    files: list[tuple[str, bytes]] = []
    skipped = 0
    in_lower_case = html.count("data:")
    pattern = _DATA_URI_RE
    if html.lower().count("data:") != in_lower_case:
        pattern = _DATA_URI_ANY_CASE_RE
    elif not in_lower_case:
        return DataUris(files, skipped)
    for number, match in enumerate(pattern.finditer(html), 1):
        if number > MAX_DATA_URIS:
            skipped += 1
            continue
        media_type, *parameters = match.group(1).lower().split(";")
        payload = match.group(2)
        data = _base64(payload) if "base64" in parameters else unquote_to_bytes(payload)
        files.append((f"data-{number}{_extension(media_type or 'text/plain')}", data))
    return DataUris(files, skipped)


def _base64(payload: str) -> bytes:
    text = unquote_to_bytes(payload).translate(None, b" \t\r\n")
    text = text[: len(text) - len(text) % 4] if len(text) % 4 == 1 else text
    try:
        return binascii.a2b_base64(text + b"=" * (-len(text) % 4))
    except binascii.Error:
        return b""


def _extension(media_type: str) -> str:
    if media_type in _EXTENSIONS:
        return _EXTENSIONS[media_type]
    return mimetypes.guess_extension(media_type, strict=False) or ""
