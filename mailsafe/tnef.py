"""Outlook TNEF (``winmail.dat``, ``application/ms-tnef``; [MS-OXTNEF]) as a tree of MIME
parts, so that the parser walks its body and attachments as the mail's own, within the same
limits.

Decoding is tnefparse's. tnefparse trusts its input: a property count of 2**32 makes it loop
4 billion times, a multi-value count of 2**32 makes it build 4 billion objects, and it copies
the rest of the file for every attribute it reads. So :func:`tnef_message` first walks the
file's framing and every MAPI property list itself (:class:`_Walk`), within the limits below,
and hands tnefparse only a file whose every count and length fits inside it: what passes the
walk costs tnefparse at most ``MAX_PROPERTIES`` properties and ``MAX_COPY_BYTES`` of copying.
A file that fails the walk (a bad signature, checksum, length or count, an unknown property
type) is corrupt: None, and the caller withholds it with a reason.

tnefparse decodes the bodies with the internet code page only for pages up to 1258, and
others (EUC-KR's 51949, ISO-2022-JP's 50220) as cp1252: garbled, or an error that loses the
whole file. So the walk renames that property (``PR_INTERNET_CPID``) on its copy, tnefparse
leaves the bodies as bytes, and they are decoded here (:mod:`mailsafe.charsets`).

What is carried over: the plain and HTML bodies, the RTF body (decompressed, attached as
``message.rtf`` for the office converter) when there is neither, every attachment with its
name (and MIME type where Outlook stored one), and attached Outlook items (embedded messages)
as ``message/rfc822`` parts with their subject, recursively to ``MAX_EMBEDDED_DEPTH``.
"""

from __future__ import annotations

import base64
import datetime
import email.header
import email.message
import email.utils
import logging
import re
import struct
import threading
from dataclasses import dataclass
from typing import Any, Final

from mailsafe.charsets import decode_bytes

__all__ = ["MAX_TNEF_BYTES", "TNEF_MAGIC", "tnef_message"]

TNEF_MAGIC: Final = b"\x78\x9f\x3e\x22"
# tnefparse logs (on its one logger, "tnefparse") a warning or error for what a sender chose to
# put in the file (a checksum it misreads in every attached item, a property it cannot decode,
# a false version): a sender must not write our logs. So what it logs while it decodes for us
# is dropped (_OUR_DECODING), in that thread only; its logger's level and the logging config
# stay as the application set them. What matters is logged by the caller as a note ("tnef",
# "tnef_read").
_TNEFPARSE_LOGGER: Final = "tnefparse"
# Larger than the winmail.dat of any mail an MX accepts (50 MB of base64 is 37 MB of bytes).
MAX_TNEF_BYTES: Final = 48 * 1024 * 1024
# Attributes in one file, embedded messages included: about 6 per attachment and 15 for the
# message; 5,000 is hundreds of attachments.
MAX_ATTRIBUTES: Final = 5_000
# MAPI properties in one file: real messages have hundreds; each costs tnefparse an object.
MAX_PROPERTIES: Final = 50_000
# tnefparse copies the rest of the file for every attribute; a 30 MB winmail.dat with 20
# attachments copies about 2 GB (well under a second); more is an attack on that copying.
MAX_COPY_BYTES: Final = 4 * 1024 * 1024 * 1024
# Embedded messages nest as forwards do; 5 levels is what the renderer shows of forwards.
MAX_EMBEDDED_DEPTH: Final = 5
# Attachments taken from one message; a TNEF with more is an archive, not a mail.
MAX_ATTACHMENTS: Final = 200
# Compressed RTF decompressed at most: it expands at most ~9 times, in pure Python.
MAX_COMPRESSED_RTF_BYTES: Final = 2 * 1024 * 1024

_TNEF_SIGNATURE = 0x223E9F78
# Attributes whose content tnefparse decodes as MAPI property lists, or recipient rows.
_ATT_MAPI_PROPS, _ATT_RECIPIENTS, _ATT_ATTACHMENT = 0x9003, 0x9004, 0x9005
_ATTRIBUTE_HEAD = struct.Struct("<BHHI")  # level, id, type, length; then data and a checksum
# tnefparse reads attributes while more than this many bytes are left.
_MIN_ATTRIBUTE = 12
# MAPI property types tnefparse knows, by the bytes of one fixed-size value (None: counted).
_FIXED_SIZES: Final = {0x0002: 2, 0x000B: 2, 0x0003: 4, 0x0004: 4, 0x000A: 4, 0x0005: 8,
                       0x0006: 8, 0x0007: 8, 0x0014: 8, 0x0040: 8, 0x0048: 16}  # fmt: skip
_COUNTED_TYPES: Final = frozenset({0x0000, 0x000D, 0x001E, 0x001F, 0x0102})
_SHORT_TYPES: Final = frozenset({0x0002, 0x000B})
_MULTI_VALUE, _NAMED = 0x1000, 0x8000
_ATTACH_DATA_OBJ, _INTERNET_CPID, _HIDDEN_CPID = 0x3701, 0x3FDE, 0x3FDD
_ATT_IGNORED = 0x9000  # an attribute id tnefparse does not know, so skips
_ATTACH_MIME_TAG, _PR_SUBJECT = 0x370E, 0x0037
_EMBEDDED_MESSAGE = b"\x07\x03\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00\x46"
_ATT_SUBJECT, _ATT_DATE_SENT, _ATT_FROM = 0x8004, 0x8005, 0x8000
# Windows code pages with a Python codec of another name.
_CODE_PAGES: Final = {65001: "utf-8", 20127: "ascii", 28591: "latin-1", 51949: "euc-kr",
                      50220: "iso-2022-jp", 51932: "euc-jp", 20866: "koi8-r",
                      1200: "utf-16-le"}  # fmt: skip


def tnef_message(data: bytes) -> email.message.Message | None:
    """The TNEF file ``data`` as a mail (a compat32 tree of parts, bodies base64-encoded as a
    parsed mail's are), or None when it is corrupt or over a limit (see the module text).
    Never raises on any input."""
    if len(data) > MAX_TNEF_BYTES:
        return None
    walk = _Walk(bytearray(data))
    try:
        if not walk.message(0, len(data), 0):
            return None
        from tnefparse import TNEF

        with _OUR_DECODING:
            tnef = TNEF(bytes(walk.data), do_checksum=False)  # the walk checked every checksum
            return _message(tnef, 0)
    except Exception:  # noqa: BLE001 - tnefparse raises assertions, struct and codec errors;
        # the walk checks every bound before reading, but a slip must cost the file, not the mail
        return None


class _DecodingQuiet(logging.Filter):
    """Drops tnefparse's records made in a thread while it decodes a file for us (what it says
    then is about a sender's bytes); lets its records at any other time through. A context
    manager around the decoding; re-entrant and per thread, so a thread decoding another
    program's file at the same time keeps its log."""

    def __init__(self) -> None:
        super().__init__()
        self._depth = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(self._depth, "value", 0)

    def __enter__(self) -> None:
        self._depth.value = getattr(self._depth, "value", 0) + 1

    def __exit__(self, *_: object) -> None:
        self._depth.value -= 1


_OUR_DECODING: Final = _DecodingQuiet()
# A filter on tnefparse's own logger, not a level: records propagate past a parent's filters,
# and tnefparse logs on this one logger only (every module's getLogger(__package__)).
logging.getLogger(_TNEFPARSE_LOGGER).addFilter(_OUR_DECODING)


class _Walk:
    """Checks a TNEF file's framing and property lists within the limits, on a copy in which
    the internet code page is renamed (tnefparse keeps it among the other properties) and
    the recipient table hidden."""

    def __init__(self, data: bytearray) -> None:
        self.data = data
        self.attributes = self.properties = self.copied = 0

    def message(self, start: int, end: int, depth: int) -> bool:
        """The TNEF stream in ``data[start:end]``: signature, key, then attributes."""
        if depth > MAX_EMBEDDED_DEPTH or end - start < 6:
            return False
        if struct.unpack_from("<I", self.data, start)[0] != _TNEF_SIGNATURE:
            return False
        offset = start + 6
        if offset + _MIN_ATTRIBUTE >= end:
            return False  # a signature and no attribute: nothing to read, not a message
        while offset + _MIN_ATTRIBUTE < end:
            offset = self._attribute(offset, end, depth)
            if offset < 0:
                return False
        return True

    def _attribute(self, offset: int, end: int, depth: int) -> int:
        """The end of the attribute at ``offset``, or -1 when it does not check."""
        self.attributes += 1
        self.copied += end - offset
        if self.attributes > MAX_ATTRIBUTES or self.copied > MAX_COPY_BYTES:
            return -1
        _level, name, _kind, length = _ATTRIBUTE_HEAD.unpack_from(self.data, offset)
        body_start = offset + _ATTRIBUTE_HEAD.size
        body_end = body_start + length
        if body_end + 2 > end:
            return -1
        checksum = struct.unpack_from("<H", self.data, body_end)[0]
        if sum(memoryview(self.data)[body_start:body_end]) & 0xFFFF != checksum:
            return -1
        if name == _ATT_RECIPIENTS:
            # Not shown (the mail's own headers name the recipients); tnefparse reads each row
            # from where the last one stopped, past any check, so it never sees the table.
            struct.pack_into("<H", self.data, offset + 1, _ATT_IGNORED)
        elif name in {_ATT_MAPI_PROPS, _ATT_ATTACHMENT} and (
            self._properties(body_start, body_end, depth) < 0
        ):
            return -1
        end_of_attribute: int = body_end + 2
        return end_of_attribute

    def _properties(self, start: int, end: int, depth: int) -> int:
        """The end of the MAPI property list at ``start``, or -1 when it does not check."""
        count = self._u32(start, end)
        if count < 0 or count > (end - start) // 4:
            return -1
        offset = start + 4
        for _ in range(count):
            offset = self._property(offset, end, depth)
            if offset < 0:
                return -1
        return offset

    def _property(self, offset: int, end: int, depth: int) -> int:
        self.properties += 1
        if self.properties > MAX_PROPERTIES or offset + 4 > end:
            return -1
        kind, name = struct.unpack_from("<HH", self.data, offset)
        tag_at, offset = offset + 2, offset + 4
        if name >= _NAMED:
            offset = self._name(offset, end)
        multi = 0
        if kind & _MULTI_VALUE and offset >= 0:
            kind ^= _MULTI_VALUE
            multi = self._u32(offset, end)
            offset = offset + 4 if 0 <= multi <= (end - offset) // 2 else -1
        if offset < 0 or (kind not in _FIXED_SIZES and kind not in _COUNTED_TYPES):
            return -1
        if name == _INTERNET_CPID:
            struct.pack_into("<H", self.data, tag_at, _HIDDEN_CPID)
        values = multi or 1  # as tnefparse reads them: a count of 0 is one value
        for _ in range(values):
            offset = self._value(offset, end, kind, name, depth, counted=not multi)
            if offset < 0:
                return -1
        return offset + 2 if values % 2 and kind in _SHORT_TYPES else offset

    def _name(self, offset: int, end: int) -> int:
        """Past a named property's GUID and its number or name."""
        if offset + 20 > end:
            return -1
        kind = struct.unpack_from("<I", self.data, offset + 16)[0]
        offset += 20
        if kind == 0:
            return offset + 4 if offset + 4 <= end else -1
        length = self._u32(offset, end)
        padded = length + (-length % 4)
        return offset + 4 + padded if length >= 0 and offset + 4 + padded <= end else -1

    def _value(
        self, offset: int, end: int, kind: int, name: int, depth: int, *, counted: bool
    ) -> int:
        if kind in _FIXED_SIZES:
            size = _FIXED_SIZES[kind]
            return offset + size if offset + size <= end else -1
        items = self._u32(offset, end) if counted else 1
        if items < 0 or items > (end - offset) // 4:
            return -1
        if name == _ATTACH_DATA_OBJ and items != 1:
            return -1  # tnefparse joins the items: one attached item is one value
        return self._items(offset + 4 if counted else offset, end, items, name, depth)

    def _items(self, offset: int, end: int, items: int, name: int, depth: int) -> int:
        """String or binary items, each a length and its bytes padded to 4. An attached
        message's data is itself a TNEF stream, walked too."""
        for _ in range(items):
            length = self._u32(offset, end)
            padded = length + (-length % 4)
            if length < 0 or offset + 4 + padded > end:
                return -1
            value_start, offset = offset + 4, offset + 4 + padded
            if name == _ATTACH_DATA_OBJ and self._is_embedded(value_start, length):
                embedded = value_start + len(_EMBEDDED_MESSAGE)
                if not self.message(embedded, value_start + padded, depth + 1):
                    return -1
        return offset

    def _is_embedded(self, start: int, length: int) -> bool:
        head = bytes(self.data[start : start + len(_EMBEDDED_MESSAGE)])
        return length >= len(_EMBEDDED_MESSAGE) and head == _EMBEDDED_MESSAGE

    def _u32(self, offset: int, end: int) -> int:
        if offset + 4 > end:
            return -1
        value: int = struct.unpack_from("<I", self.data, offset)[0]
        return value


def _message(tnef: Any, depth: int) -> email.message.Message:
    """tnefparse's ``TNEF`` object as a mail: headers (for an attached item), bodies, files."""
    bodies = _Bodies.of(tnef)
    texts = [
        _part(f"text/{subtype}", text.encode("utf-8"), charset="utf-8")
        for subtype, text in (("plain", bodies.plain), ("html", bodies.html))
        if text
    ]
    parts = [_multipart("alternative", texts)] if len(texts) > 1 else texts
    if bodies.rtf and not texts:
        parts.append(_part("application/rtf", bodies.rtf, filename="message.rtf"))
    parts += [_attachment(item, depth) for item in tnef.attachments[:MAX_ATTACHMENTS]]
    message = _multipart("mixed", parts)
    if depth:
        _headers(tnef, message)
    return message


def _part(
    content_type: str, data: bytes, *, charset: str | None = None, filename: str | None = None
) -> email.message.Message:
    part = email.message.Message()
    part["Content-Type"] = content_type
    if charset:
        part.set_param("charset", charset)
    if filename is not None:
        part.add_header("Content-Disposition", "attachment", filename=("utf-8", "", filename))
    part["Content-Transfer-Encoding"] = "base64"
    part.set_payload(base64.b64encode(data).decode("ascii"))
    return part


def _multipart(subtype: str, parts: list[email.message.Message]) -> email.message.Message:
    multipart = email.message.Message()
    multipart["Content-Type"] = f"multipart/{subtype}"
    payload: list[email.message.Message | str] = [*parts]
    multipart.set_payload(payload)
    return multipart


def _headers(tnef: Any, message: email.message.Message) -> None:
    """Subject, sender and date of an attached item, RFC 2047-encoded as a mail's are."""
    found = {prop.name: prop.data for prop in tnef.msgprops}
    subject = found.get(_ATT_SUBJECT) or _mapi_value(tnef, _PR_SUBJECT)
    message["Subject"] = email.header.Header(_one_line(str(subject or "")), "utf-8").encode()
    sender = found.get(_ATT_FROM)
    if isinstance(sender, tuple) and len(sender) == 3:
        name, address = (decode_bytes(part, tnef.codepage) for part in (sender[0], sender[2]))
        shown = address if "@" in address and address.isascii() else ""
        message["From"] = email.utils.formataddr((_one_line(name), shown), charset="utf-8")
    sent = found.get(_ATT_DATE_SENT)
    if isinstance(sent, datetime.datetime):
        message["Date"] = email.utils.format_datetime(sent.replace(tzinfo=datetime.UTC))


@dataclass(frozen=True)
class _Bodies:
    plain: str
    html: str
    rtf: bytes

    @classmethod
    def of(cls, tnef: Any) -> _Bodies:
        code_page = _mapi_value(tnef, _HIDDEN_CPID)
        codec = _codec(code_page) if isinstance(code_page, int) else tnef.codepage
        return cls(_text(tnef.body, codec), _text(tnef.htmlbody, codec), _rtf(tnef))


def _text(value: object, codec: str | None) -> str:
    if isinstance(value, bytes):
        return decode_bytes(value.rstrip(b"\x00"), codec)
    return value.rstrip("\x00") if isinstance(value, str) else ""


def _rtf(tnef: Any) -> bytes:
    compressed = tnef._rtfbody  # tnefparse's rtfbody would decompress any size
    if not isinstance(compressed, bytes) or len(compressed) > MAX_COMPRESSED_RTF_BYTES:
        return b""
    from compressed_rtf import decompress

    rtf = decompress(compressed + b"\x00")
    return rtf if isinstance(rtf, bytes) and rtf.lstrip().startswith(b"{\\rtf") else b""


def _codec(code_page: int) -> str:
    return _CODE_PAGES.get(code_page, f"cp{code_page}")


def _mapi_value(tnef: Any, name: int) -> object:
    return next((prop.data for prop in tnef.mapiprops if prop.name == name), None)


def _attachment(item: Any, depth: int) -> email.message.Message:
    name = _one_line(str(item.long_filename() or ""))
    embedded = getattr(item, "embed", None)
    if embedded is not None and depth < MAX_EMBEDDED_DEPTH:
        forwarded = email.message.Message()
        forwarded["Content-Type"] = "message/rfc822"
        forwarded.add_header(
            "Content-Disposition", "attachment", filename=("utf-8", "", name or "message.eml")
        )
        inner: list[email.message.Message | str] = [_message(embedded, depth + 1)]
        forwarded.set_payload(inner)
        return forwarded
    data = item.data if isinstance(item.data, bytes) else b""
    return _part(_media_type(item, name), data, filename=name or "attachment")


_MEDIA_TYPE_WORD: Final = re.compile(r"[\w.+-]{1,64}")
# What Outlook names without a stored MIME type, by extension: pictures are drawn only as
# image/*; documents are known by their names (mailsafe.office.formats).
_BY_EXTENSION: Final = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png",
                        "gif": "image/gif", "bmp": "image/bmp", "tif": "image/tiff",
                        "tiff": "image/tiff", "pdf": "application/pdf",
                        "txt": "text/plain"}  # fmt: skip


def _media_type(attachment: Any, name: str) -> str:
    stored = next(
        (str(p.data) for p in attachment.mapi_attrs if p.name == _ATTACH_MIME_TAG), ""
    ).lower()
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    maintype, _, subtype = (stored or _BY_EXTENSION.get(extension, "")).partition("/")
    if not _MEDIA_TYPE_WORD.fullmatch(maintype) or not _MEDIA_TYPE_WORD.fullmatch(subtype):
        return "application/octet-stream"
    if maintype in {"multipart", "message"}:
        return "application/octet-stream"  # bytes, never a structure to re-parse
    return f"{maintype}/{subtype}"


def _one_line(text: str) -> str:
    return " ".join(text.replace("\x00", "").split())
