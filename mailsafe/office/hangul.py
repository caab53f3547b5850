"""The text of HWP 5 and HWPX documents, for the renderer to draw as text pages.

LibreOffice 7.4 opens neither (its ``Hangul WP 97`` filter reads only HWP 97), so both are read
here, in the render worker, with the outbound scanner's bounded readers
(:mod:`mailsafe.extract.hwp`, :mod:`mailsafe.extract.xmltext`): every paragraph in order,
table cells and text boxes included, cells separated by tabs. docs/decisions.md, "HWP and
HWPX as text pages", says why not a layout engine.

A password-protected HWP is refused (``encrypted``). A distribution document (배포용 문서)
keeps its body encrypted; its first-page preview (``PrvText``) is what is shown, with a note.
"""

from __future__ import annotations

import re
import struct
import zipfile
from dataclasses import dataclass
from typing import Final

import olefile

from mailsafe.errors import HostileInput
from mailsafe.extract.archive import member_names, open_zip, read_member
from mailsafe.extract.hwp import hwp_text, is_hwp, open_ole
from mailsafe.extract.limits import Budget, ExtractLimits
from mailsafe.extract.xmltext import xml_text

__all__ = ["HangulText", "hangul_text"]

_SECTION: Final = re.compile(r"Contents/section(\d+)\.xml")
_PASSWORD: Final = 0x2
_HWPX_MIMETYPE: Final = b"application/hwp+zip"
# The first-page preview is a few KiB of UTF-16; more is not a preview.
_PREVIEW_BYTES: Final = 1 << 20


@dataclass(frozen=True)
class HangulText:
    text: str
    preview_only: bool = False  # a distribution document: its first-page preview only


def hangul_text(untrusted_document: bytes, kind: str, limits: ExtractLimits) -> HangulText:
    """The document's text; HostileInput (``encrypted``, ``corrupt``, a limit) otherwise."""
    budget = Budget(limits)
    if kind == "hwpx":
        return HangulText(_hwpx_text(untrusted_document, budget))
    return _hwp_text(untrusted_document, budget)


def _hwp_text(data: bytes, budget: Budget) -> HangulText:
    ole = open_ole(data)
    try:
        if not is_hwp(ole):
            raise HostileInput("not an HWP document (no HWP FileHeader)", code="corrupt")
        with ole.openstream("FileHeader") as stream:
            header = stream.read(40)
        (flags,) = struct.unpack_from("<I", header, 36) if len(header) >= 40 else (0,)
        if flags & _PASSWORD:
            raise HostileInput("the HWP document is password-protected", code="encrypted")
        text, refusal = hwp_text(ole, budget)
        if refusal is None:  # the body is readable: the first-page preview would repeat it
            text = text.removeprefix(_preview(ole))
    except (OSError, ValueError, struct.error, IndexError) as exc:
        raise HostileInput(f"HWP document is unreadable ({exc})", code="corrupt") from None
    finally:
        ole.close()
    return HangulText(text.replace("\r\n", "\n").strip(), preview_only=refusal is not None)


def _preview(ole: olefile.OleFileIO) -> str:
    if not ole.exists("PrvText"):
        return ""
    with ole.openstream("PrvText") as stream:
        return str(stream.read(_PREVIEW_BYTES).decode("utf-16-le", "replace"))


def _hwpx_text(data: bytes, budget: Budget) -> str:
    archive = open_zip(data)
    try:
        names = member_names(archive)
        if "mimetype" in names and read_member(archive, "mimetype", budget) != _HWPX_MIMETYPE:
            raise HostileInput("not an HWPX package (mimetype)", code="corrupt")
        sections = sorted(
            (int(match.group(1)), name) for name in names if (match := _SECTION.fullmatch(name))
        )
        if not sections:
            raise HostileInput("HWPX package without Contents/section*.xml", code="corrupt")
        texts = [xml_text(read_member(archive, name, budget)) for _, name in sections]
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise HostileInput(f"HWPX package is unreadable ({exc})", code="corrupt") from None
    finally:
        archive.close()
    return "\n".join(text.strip() for text in texts)
