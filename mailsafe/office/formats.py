"""Which kind of document an attachment is: by its name, its declared type and its bytes.

Pure. A name alone is never trusted: the bytes must start as the format does (a zip, an OLE
compound file, RTF), or the attachment is not treated as a document. Mailers label HWP and
Office files inconsistently (``application/octet-stream``, vendor and ``x-`` types), so the
extension decides among formats of one container, and the declared type only fills in a
missing extension.
"""

from __future__ import annotations

from typing import Final

__all__ = ["HANGUL_KINDS", "OFFICE_KINDS", "document_kind"]

ZIP_MAGIC: Final = b"PK\x03\x04"
OLE_MAGIC: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
RTF_MAGIC: Final = b"{\\rtf"

# Extension -> the container its bytes must be. LibreOffice converts these (macros never run).
OFFICE_KINDS: Final[dict[str, bytes]] = {
    **dict.fromkeys(("docx", "docm", "xlsx", "xlsm", "pptx", "pptm"), ZIP_MAGIC),
    **dict.fromkeys(("odt", "ods", "odp"), ZIP_MAGIC),
    **dict.fromkeys(("doc", "xls", "ppt"), OLE_MAGIC),
    "rtf": RTF_MAGIC,
}
# Read in-process as text (LibreOffice 7.4 opens neither HWP 5 nor HWPX).
HANGUL_KINDS: Final[dict[str, bytes]] = {"hwp": OLE_MAGIC, "hwpx": ZIP_MAGIC}

# A declared type -> the extension it stands for, for attachments named without one.
_TYPE_EXTENSIONS: Final = {
    "application/msword": "doc",
    "application/vnd.ms-excel": "xls",
    "application/vnd.ms-powerpoint": "ppt",
    "application/rtf": "rtf",
    "text/rtf": "rtf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
    "application/vnd.ms-word.document.macroenabled.12": "docm",
    "application/vnd.ms-excel.sheet.macroenabled.12": "xlsm",
    "application/vnd.ms-powerpoint.presentation.macroenabled.12": "pptm",
    "application/vnd.oasis.opendocument.text": "odt",
    "application/vnd.oasis.opendocument.spreadsheet": "ods",
    "application/vnd.oasis.opendocument.presentation": "odp",
    "application/x-hwp": "hwp",
    "application/haansofthwp": "hwp",
    "application/vnd.hancom.hwp": "hwp",
    "application/hwp+zip": "hwpx",
    "application/vnd.hancom.hwpx": "hwpx",
    "application/haansofthwpx": "hwpx",
}


def document_kind(filename: str, content_type: str, untrusted_head: bytes) -> str | None:
    """The document's extension ("docx", "hwp", ...) when its name or declared type says it
    is one of OFFICE_KINDS or HANGUL_KINDS and its first bytes agree; None otherwise."""
    _, dot, extension = filename.lower().rpartition(".")
    kind = extension if dot else ""
    if kind not in OFFICE_KINDS and kind not in HANGUL_KINDS:
        kind = _TYPE_EXTENSIONS.get(content_type.lower(), "")
    magic = OFFICE_KINDS.get(kind) or HANGUL_KINDS.get(kind)
    if magic is None or not untrusted_head.startswith(magic):
        return None
    return kind
