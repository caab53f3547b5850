"""A minimal writer of Outlook TNEF files (winmail.dat, [MS-OXTNEF]) for tests.

No library among our dependencies writes TNEF (tnefparse only reads it), so tests build
files here from the published format: a signature and key, then attributes (level, id, type,
length, data, a 16-bit checksum of the data); the message's and each attachment's MAPI
properties are a count and (type, id, value) entries with values padded to 4 bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

SIGNATURE = 0x223E9F78
LEVEL_MESSAGE, LEVEL_ATTACHMENT = 1, 2
# Attribute ids and the attribute types written with them.
ATT_TNEF_VERSION, ATT_OEM_CODEPAGE, ATT_MESSAGE_CLASS, ATT_SUBJECT = 0x9006, 0x9007, 0x8008, 0x8004
ATT_MAPI_PROPS, ATT_RECIPIENTS = 0x9003, 0x9004
ATT_ATTACH_REND_DATA, ATT_ATTACH_TITLE, ATT_ATTACH_DATA, ATT_ATTACHMENT = (
    0x9002, 0x8010, 0x800F, 0x9005,
)  # fmt: skip
TYPE_STRING, TYPE_BYTE, TYPE_DWORD = 0x0007, 0x0006, 0x0008
# MAPI property types and ids.
PT_LONG, PT_STRING8, PT_UNICODE, PT_BINARY, PT_OBJECT, PT_SHORT = (
    0x0003, 0x001E, 0x001F, 0x0102, 0x000D, 0x0002,
)  # fmt: skip
MULTI_VALUE = 0x1000
PR_BODY, PR_BODY_HTML, PR_RTF_COMPRESSED, PR_INTERNET_CPID = 0x1000, 0x1013, 0x1009, 0x3FDE
PR_ATTACH_LONG_FILENAME, PR_ATTACH_MIME_TAG, PR_ATTACH_DATA_OBJ, PR_ATTACH_METHOD = (
    0x3707, 0x370E, 0x3701, 0x3705,
)  # fmt: skip
EMBEDDED_MESSAGE = b"\x07\x03\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00\x46"


def attribute(level: int, name: int, kind: int, data: bytes, checksum: int | None = None) -> bytes:
    total = sum(data) & 0xFFFF if checksum is None else checksum
    return struct.pack("<BHHI", level, name, kind, len(data)) + data + struct.pack("<H", total)


def _padded(data: bytes) -> bytes:
    return data + b"\x00" * (-len(data) % 4)


def prop_long(name: int, value: int) -> bytes:
    return struct.pack("<HHi", PT_LONG, name, value)


def prop_bytes(name: int, value: bytes, kind: int = PT_BINARY) -> bytes:
    """A string or binary property: one value, its length, its bytes padded to 4."""
    return struct.pack("<HHII", kind, name, 1, len(value)) + _padded(value)


def prop_unicode(name: int, text: str) -> bytes:
    return prop_bytes(name, (text + "\x00").encode("utf-16-le"), PT_UNICODE)


def properties(*entries: bytes, count: int | None = None) -> bytes:
    return struct.pack("<I", len(entries) if count is None else count) + b"".join(entries)


@dataclass
class TnefAttachment:
    name: str
    data: bytes = b""
    mime_type: str | None = None
    embedded: bytes | None = None  # a whole TNEF stream: an attached Outlook item


@dataclass
class TnefMessage:
    subject: str = ""
    plain: str | None = None
    html: bytes | None = None
    code_page: int = 949  # the OEM code page of the 8-bit attributes
    internet_code_page: int | None = None  # of the bodies; the OEM one when None
    rtf_compressed: bytes | None = None
    attachments: list[TnefAttachment] = field(default_factory=list)
    extra: bytes = b""  # raw attributes appended (hostile cases)

    def build(self) -> bytes:
        out = struct.pack("<IH", SIGNATURE, 0x1234)
        out += attribute(LEVEL_MESSAGE, ATT_TNEF_VERSION, TYPE_DWORD, struct.pack("<I", 0x10000))
        out += attribute(
            LEVEL_MESSAGE, ATT_OEM_CODEPAGE, TYPE_BYTE, struct.pack("<II", self.code_page, 0)
        )
        out += attribute(LEVEL_MESSAGE, ATT_MESSAGE_CLASS, TYPE_STRING, b"IPM.Note\x00")
        if self.subject:
            subject = self.subject.encode(f"cp{self.code_page}") + b"\x00"
            out += attribute(LEVEL_MESSAGE, ATT_SUBJECT, TYPE_STRING, subject)
        out += attribute(LEVEL_MESSAGE, ATT_MAPI_PROPS, TYPE_BYTE, self._message_properties())
        for attached in self.attachments:
            out += _attachment(attached)
        return out + self.extra

    def _message_properties(self) -> bytes:
        entries = [prop_long(PR_INTERNET_CPID, self.internet_code_page or self.code_page)]
        if self.plain is not None:
            entries.append(prop_unicode(PR_BODY, self.plain))
        if self.html is not None:
            entries.append(prop_bytes(PR_BODY_HTML, self.html))
        if self.rtf_compressed is not None:
            entries.append(prop_bytes(PR_RTF_COMPRESSED, self.rtf_compressed))
        return properties(*entries)


def _attachment(attached: TnefAttachment) -> bytes:
    out = attribute(LEVEL_ATTACHMENT, ATT_ATTACH_REND_DATA, TYPE_BYTE, b"\x01\x00" + b"\xff" * 12)
    out += attribute(
        LEVEL_ATTACHMENT, ATT_ATTACH_TITLE, TYPE_STRING, attached.name.encode("ascii", "replace")
    )
    entries = [prop_unicode(PR_ATTACH_LONG_FILENAME, attached.name)]
    if attached.embedded is not None:
        entries.append(prop_long(PR_ATTACH_METHOD, 5))
        entries.append(
            prop_bytes(PR_ATTACH_DATA_OBJ, EMBEDDED_MESSAGE + attached.embedded, PT_OBJECT)
        )
    else:
        out += attribute(LEVEL_ATTACHMENT, ATT_ATTACH_DATA, TYPE_BYTE, attached.data)
    if attached.mime_type:
        entries.append(prop_bytes(PR_ATTACH_MIME_TAG, attached.mime_type.encode() + b"\x00",
                                  PT_STRING8))  # fmt: skip
    return out + attribute(LEVEL_ATTACHMENT, ATT_ATTACHMENT, TYPE_BYTE, properties(*entries))


def mail_with_winmail(tnef: bytes, text: str = "본문은 첨부를 보세요.") -> bytes:
    """An Outlook-style mail: a plain body and the TNEF as application/ms-tnef."""
    import base64

    encoded = base64.encodebytes(tnef).decode("ascii").replace("\n", "\r\n")
    return (
        "From: kim@partner.example\r\nTo: lee@corp.example\r\nSubject: =?utf-8?b?"
        + base64.b64encode("견적서 송부".encode()).decode()
        + "?=\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.b64encode(text.encode()).decode()
        + "\r\n--b\r\nContent-Type: application/ms-tnef; name=winmail.dat\r\n"
        "Content-Disposition: attachment; filename=winmail.dat\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n" + encoded + "--b--\r\n"
    ).encode("ascii")
