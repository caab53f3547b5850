"""Outlook ``.msg`` files ([MS-OXMSG]: an OLE2 compound file of MAPI properties) as RFC 5322
mail, so that the ordinary parser, its limits and the renderer treat them like any mail.

What is carried over: the subject, sender, To/Cc recipients, date, the original transport
headers' Message-ID and Reply-To, the plain and HTML bodies, every attachment (name, type,
content id, data), and attached Outlook items (embedded messages) recursively as
``message/rfc822`` parts, to ``MAX_EMBEDDED_DEPTH``. What is not: the compressed RTF body
(every Outlook message written since Outlook 2003 also has a plain or HTML body), OLE objects
(withheld as ``application/octet-stream``), named properties.

``msg_to_mime`` returns None when the file is not a readable .msg (broken OLE, no message
properties at all); the caller then refuses it with a reason. Never raises on any input.
"""

from __future__ import annotations

import datetime
import email.message
import email.policy
import email.utils
import io
import re
import struct
from typing import Final

import olefile

from mailsafe.charsets import decode_bytes

__all__ = ["MAX_EMBEDDED_DEPTH", "msg_to_mime"]

# Attached Outlook items nest as deep as forwards do; 5 levels is what the renderer shows.
MAX_EMBEDDED_DEPTH: Final = 5
# Attachments read from one message; a .msg with more is an archive, not a mail.
MAX_ATTACHMENTS: Final = 200
# Recipients listed; the parser cuts address lists at ParseLimits.max_addresses anyway.
MAX_RECIPIENTS: Final = 500
# One property stream read at most (bodies, attachment data); the raw mail limit bounds the sum.
MAX_STREAM_BYTES: Final = 64 * 1024 * 1024

# MAPI property ids ([MS-OXPROPS]) and types.
_SUBJECT, _SENDER_NAME, _SENDER_ADDRESS, _SENDER_SMTP = 0x0037, 0x0C1A, 0x0C1F, 0x5D01
_DISPLAY_TO, _DISPLAY_CC = 0x0E04, 0x0E03
_TRANSPORT_HEADERS, _BODY, _HTML, _CODEPAGE, _HTML_CODEPAGE = (
    0x007D, 0x1000, 0x1013, 0x3FFD, 0x3FDE,
)  # fmt: skip
_SUBMIT_TIME, _DELIVERY_TIME = 0x0039, 0x0E06
_RECIPIENT_NAME, _RECIPIENT_ADDRESS, _RECIPIENT_SMTP, _RECIPIENT_TYPE = (
    0x3001, 0x3003, 0x39FE, 0x0C15,
)  # fmt: skip
_ATTACH_LONG_NAME, _ATTACH_NAME, _ATTACH_DISPLAY_NAME = 0x3707, 0x3704, 0x3001
_ATTACH_DATA, _ATTACH_MIME, _ATTACH_CONTENT_ID = 0x3701, 0x370E, 0x3712
_UNICODE, _STRING8, _BINARY, _OBJECT, _TIME, _INT32 = 0x001F, 0x001E, 0x0102, 0x000D, 0x0040, 3
_TO, _CC = 1, 2
# The fixed-size header before the 16-byte entries of a __properties_version1.0 stream.
_TOP_HEADER, _EMBEDDED_HEADER, _CHILD_HEADER = 32, 24, 8
_FILETIME_EPOCH = datetime.datetime(1601, 1, 1, tzinfo=datetime.UTC)
# Transport headers kept: the ones the .msg's own properties do not already give.
_KEPT_TRANSPORT_HEADERS = ("message-id", "in-reply-to", "references", "reply-to")


def msg_to_mime(data: bytes) -> bytes | None:
    """The .msg file ``data`` as an RFC 5322 mail, or None when it is not a readable .msg."""
    try:
        with olefile.OleFileIO(io.BytesIO(data)) as ole:
            reader = _Storage(ole, [], _TOP_HEADER)
            if not reader.has_message():
                return None
            message = _message(reader, 0)
            return message.as_bytes(policy=email.policy.SMTP)
    except Exception:  # noqa: BLE001 - olefile raises many undocumented errors on hostile files
        return None


class _Storage:
    """The MAPI properties of one storage (the message, a recipient, an attachment)."""

    def __init__(self, ole: olefile.OleFileIO, path: list[str], header: int) -> None:
        self.ole, self.path, self.header = ole, path, header
        self.codepage: str | None = None
        fixed = self._stream("__properties_version1.0")
        self.fixed = fixed or b""
        page = self.int32(_CODEPAGE)
        self.codepage = f"cp{page}" if page else None

    def has_message(self) -> bool:
        """True when this storage holds MAPI properties (an HWP file, also OLE2, does not)."""
        return bool(self.fixed) or any(
            entry[0].startswith("__substg1.0_") for entry in self.ole.listdir()
        )

    def _stream(self, name: str) -> bytes | None:
        path = "/".join([*self.path, name])
        if not self.ole.exists(path) or self.ole.get_size(path) > MAX_STREAM_BYTES:
            return None
        with self.ole.openstream(path) as stream:
            return bytes(stream.read(MAX_STREAM_BYTES))

    def text(self, prop: int) -> str:
        unicode = self._stream(f"__substg1.0_{prop:04X}{_UNICODE:04X}")
        if unicode is not None:
            return unicode.decode("utf-16-le", "replace").rstrip("\x00")
        eight_bit = self._stream(f"__substg1.0_{prop:04X}{_STRING8:04X}")
        if eight_bit is None:
            return ""
        return decode_bytes(eight_bit.rstrip(b"\x00"), self.codepage)

    def binary(self, prop: int) -> bytes | None:
        return self._stream(f"__substg1.0_{prop:04X}{_BINARY:04X}")

    def _fixed_value(self, prop: int, kind: int) -> bytes | None:
        for offset in range(self.header, len(self.fixed) - 15, 16):
            tag, _flags, value = struct.unpack_from("<II8s", self.fixed, offset)
            if tag == (prop << 16) | kind:
                return bytes(value)
        return None

    def int32(self, prop: int) -> int:
        value = self._fixed_value(prop, _INT32)
        return struct.unpack_from("<i", value)[0] if value is not None else 0

    def time(self, prop: int) -> datetime.datetime | None:
        value = self._fixed_value(prop, _TIME)
        if value is None:
            return None
        ticks = struct.unpack_from("<Q", value)[0]
        try:
            return _FILETIME_EPOCH + datetime.timedelta(microseconds=ticks // 10)
        except OverflowError:
            return None

    def children(self, prefix: str, limit: int) -> list[list[str]]:
        """Paths of the child storages named ``prefix#XXXXXXXX``, in order."""
        depth = len(self.path)
        found = {
            tuple(entry[: depth + 1])
            for entry in self.ole.listdir(streams=True, storages=True)
            if len(entry) > depth and entry[:depth] == self.path and entry[depth].startswith(prefix)
        }
        return [list(path) for path in sorted(found)[:limit]]


def _message(reader: _Storage, depth: int) -> email.message.EmailMessage:
    message = email.message.EmailMessage()
    _headers(reader, message)
    _bodies(reader, message)
    for path in reader.children("__attach_version1.0_", MAX_ATTACHMENTS):
        _attach(reader, _Storage(reader.ole, path, _CHILD_HEADER), message, depth)
    return message


def _headers(reader: _Storage, message: email.message.EmailMessage) -> None:
    message["Subject"] = _one_line(reader.text(_SUBJECT))
    sender = reader.text(_SENDER_SMTP) or reader.text(_SENDER_ADDRESS)
    if "@" not in sender:
        sender = ""
    name = _one_line(reader.text(_SENDER_NAME))
    if name or sender:
        message["From"] = email.utils.formataddr((name, sender))
    to, cc = _recipients(reader)
    if to or reader.text(_DISPLAY_TO):
        message["To"] = to or _one_line(reader.text(_DISPLAY_TO))
    if cc or reader.text(_DISPLAY_CC):
        message["Cc"] = cc or _one_line(reader.text(_DISPLAY_CC))
    when = reader.time(_SUBMIT_TIME) or reader.time(_DELIVERY_TIME)
    if when is not None:
        message["Date"] = email.utils.format_datetime(when)
    transport = email.message_from_string(
        reader.text(_TRANSPORT_HEADERS) + "\n\n", policy=email.policy.compat32
    )
    for header in _KEPT_TRANSPORT_HEADERS:
        value = transport.get(header)
        if value:
            message[header.title()] = _one_line(str(value))


def _recipients(reader: _Storage) -> tuple[str, str]:
    lists: dict[int, list[str]] = {_TO: [], _CC: []}
    for path in reader.children("__recip_version1.0_", MAX_RECIPIENTS):
        recipient = _Storage(reader.ole, path, _CHILD_HEADER)
        kind = recipient.int32(_RECIPIENT_TYPE) or _TO
        address = recipient.text(_RECIPIENT_SMTP) or recipient.text(_RECIPIENT_ADDRESS)
        name = _one_line(recipient.text(_RECIPIENT_NAME))
        if kind in lists and (name or address):
            shown = address if "@" in address else ""
            lists[kind].append(email.utils.formataddr((name, shown)) if shown else name)
    return ", ".join(lists[_TO]), ", ".join(lists[_CC])


def _bodies(reader: _Storage, message: email.message.EmailMessage) -> None:
    plain = reader.text(_BODY)
    html_bytes = reader.binary(_HTML)
    html_page = reader.int32(_HTML_CODEPAGE)  # the HTML's own code page (PR_INTERNET_CPID)
    html_codec = f"cp{html_page}" if html_page else reader.codepage
    html = decode_bytes(html_bytes, html_codec) if html_bytes else reader.text(_HTML)
    message.set_content(plain or ("" if html else " "), charset="utf-8")
    if html:
        message.add_alternative(html, subtype="html", charset="utf-8")


def _attach(
    reader: _Storage, attachment: _Storage, message: email.message.EmailMessage, depth: int
) -> None:
    name = (
        attachment.text(_ATTACH_LONG_NAME)
        or attachment.text(_ATTACH_NAME)
        or attachment.text(_ATTACH_DISPLAY_NAME)
    )
    embedded = [*attachment.path, f"__substg1.0_{_ATTACH_DATA:04X}{_OBJECT:04X}"]
    if reader.ole.exists("/".join(embedded)) and depth < MAX_EMBEDDED_DEPTH:
        inner = _message(_Storage(reader.ole, embedded, _EMBEDDED_HEADER), depth + 1)
        message.add_attachment(inner, disposition="attachment", filename=name or "message.eml")
        return
    data = attachment.binary(_ATTACH_DATA) or b""
    maintype, _, subtype = (attachment.text(_ATTACH_MIME) or "application/octet-stream").partition(
        "/"
    )
    if not re.fullmatch(r"[\w.+-]{1,64}", maintype) or not re.fullmatch(r"[\w.+-]{1,64}", subtype):
        maintype, subtype = "application", "octet-stream"
    if maintype in {"multipart", "message"}:
        maintype, subtype = "application", "octet-stream"  # bytes, never a structure to re-parse
    message.add_attachment(
        data, maintype=maintype, subtype=subtype, filename=_one_line(name) or "attachment",
        cid=_content_id(attachment),
    )  # fmt: skip


_MEDIA_TYPE_WORD: Final = re.compile(r"[\w.+-]{1,64}")


def _content_id(attachment: _Storage) -> str | None:
    value = _one_line(attachment.text(_ATTACH_CONTENT_ID)).strip("<>")
    return f"<{value}>" if value and re.fullmatch(r"[\x21-\x7e]{1,200}", value) else None


def _one_line(text: str) -> str:
    return " ".join(text.replace("\x00", "").split())
