"""Route one attachment to the reader for its kind, recursing into ZIP archives.

The kind is told from the first bytes (PDF, ZIP and its Office/HWPX forms, OLE/HWP), then
from the name; a file that is neither a known document nor text yields no text and no
finding (images, for instance). A failure of any reader becomes an ``Unreadable`` at the
path of the file, and reading goes on with the next file.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import replace
from functools import partial
from typing import Final

from mailsafe.errors import HostileInput, LimitExceeded, MailsafeError
from mailsafe.extract.archive import member_names, open_zip, read_member
from mailsafe.extract.datauri import data_uri_files
from mailsafe.extract.hwp import OLE_MAGIC, hwp_text, is_hwp, open_ole
from mailsafe.extract.images import image_text, is_bare_picture, is_image
from mailsafe.extract.limits import MIB, Budget
from mailsafe.extract.ocr import picture_words
from mailsafe.extract.pdf import pdf_contents
from mailsafe.extract.streams import compression_of, decompress, inner_name, is_tar, tar_members
from mailsafe.extract.text import (
    decode_text,
    html_to_text,
    html_unseen_text,
    is_mostly_text,
    utf16_without_mark,
)
from mailsafe.extract.types import Location, Unreadable
from mailsafe.extract.xmltext import (
    EMBEDDED,
    ReadMember,
    alt_chunks,
    container_text,
    sniff_container,
)
from mailsafe.positions import NO_LAYOUT, TextLayout, joined

Found = Location | Unreadable

_ZIP_MAGICS: Final = (b"PK\x03\x04", b"PK\x05\x06")
# Archives and compressed files we recognise but do not open (7-Zip, RAR, the Korean ALZip and
# EGG formats, Zstandard, LZ4, Unix compress, lzip, Microsoft CAB): they may carry anything, so
# they are reported rather than passed as harmless.
_UNOPENED_ARCHIVES: Final = (
    b"7z\xbc\xaf\x27\x1c", b"Rar!\x1a\x07", b"ALZ\x01", b"EGGA", b"\x28\xb5\x2f\xfd",
    b"\x04\x22\x4d\x18", b"\x1f\x9d", b"LZIP", b"MSCF",
)  # fmt: skip
_TEXT_EXTENSIONS: Final = frozenset(
    {".txt", ".csv", ".tsv", ".log", ".json", ".xml", ".md", ".ini", ".yaml", ".yml", ".sql"}
)
_HTML_EXTENSIONS: Final = frozenset({".html", ".htm", ".xhtml"})
# A saved mail, and a web page saved whole (MHT: MIME, often without a From line).
_MAIL_EXTENSIONS: Final = (".eml", ".mht", ".mhtml")
# Reasons that end reading of the whole mail, not just of one file.
MAIL_WIDE_REASONS: Final = frozenset({"timeout", "too-many-files"})
# A file with a NUL byte in its first 8 KiB (and no UTF-16 mark) is binary, not text.
_BINARY_SNIFF_BYTES: Final = 8192
# The first line of a header block: a field name, a colon (or an mbox "From " line).
_HEADER_LINE_RE: Final = re.compile(rb"(?:from |[\x21-\x39\x3b-\x7e]+:)")


def attachment_locations(path: str, data: bytes, budget: Budget, depth: int = 0) -> list[Found]:
    """Text and unreadable findings of one file at ``path`` (``a.zip/b/c.docx``)."""
    where = f"attachment:{path}"
    try:
        budget.check_time()
        if len(data) > budget.limits.max_file_bytes:
            limit = budget.limits.max_file_bytes // MIB
            raise LimitExceeded(
                f"{len(data) // MIB} MiB is over the {limit} MiB limit",
                code="too-big",
            )
        return _read(path, data, budget, depth)
    except MailsafeError as exc:
        return [Unreadable(where, exc.code, str(exc))]


def _read(path: str, data: bytes, budget: Budget, depth: int) -> list[Found]:
    head = data[:1024]
    if head.startswith(_ZIP_MAGICS):
        return _read_zip(path, data, budget, depth)
    if b"%PDF-" in head:
        return _read_pdf(path, data, budget, depth)
    if head.startswith(OLE_MAGIC):
        return _read_ole(f"attachment:{path}", data, budget)
    if compression_of(head) is not None or is_tar(data, path):
        return _read_packed(path, data, budget, depth)
    if head.startswith(_UNOPENED_ARCHIVES):
        raise HostileInput("archive format that is not opened", code="unsupported-format")
    if path.lower().endswith(_MAIL_EXTENSIONS) or _looks_like_mail(head):
        return _read_mail(path, data, budget, depth)
    return _read_as_text(path, data, budget, depth)


def _read_packed(path: str, data: bytes, budget: Budget, depth: int) -> list[Found]:
    """A gzip, bzip2 or xz file (what it holds, one level down), or a tar archive."""
    compression = compression_of(data[:8])
    if compression is None:
        return _read_members(path, tar_members(data, path, budget), budget, depth)
    _check_depth(depth, budget)
    unpacked = decompress(compression, data, path, budget)
    return attachment_locations(f"{path}/{inner_name(path)}", unpacked, budget, depth + 1)


def _looks_like_mail(head: bytes) -> bool:
    """A saved mail (RFC 5322 with MIME) sent as a plain file: a header block that names the
    sender and a MIME structure."""
    block = head.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0].lower()
    return (
        _HEADER_LINE_RE.match(block) is not None
        and b"from:" in block
        and (b"mime-version:" in block or b"content-type:" in block)
    )


def _read_mail(path: str, data: bytes, budget: Budget, depth: int) -> list[Found]:
    """A mail attached as a file (``.eml``), read as the scan reads a mail: its subject,
    bodies, headers and attachments, each placed inside ``path``. Mail clients open such a
    file with its attachments, so its base64 must not pass as text."""
    # Here, not at the top: mailsafe.extract imports this module (and reads whole mails with it).
    from mailsafe.extract import mail_locations
    from mailsafe.extract.unread import unread_parts
    from mailsafe.mime import parse_message

    _check_depth(depth, budget)
    parsed = parse_message(data)
    found = mail_locations(
        parsed, lambda name, content: attachment_locations(name, content, budget, depth + 1)
    )
    inside = [replace(item, where=_inside(path, item.where)) for item in found]
    return inside + unread_parts(parsed, f"attachment:{path}")


def _inside(path: str, where: str) -> str:
    """A place of an attached mail as a place of the outer one: its attachments and names
    under ``path``, its subject, bodies and headers as content of the file."""
    kind, colon, rest = where.partition(":")
    if colon and kind in ("attachment", "attachment-name"):
        return f"{kind}:{path}/{rest}"
    return f"attachment:{path}/{where}"


def _read_data_uris(path: str, html: str, budget: Budget, depth: int) -> list[Found]:
    """The files an HTML file carries as data: URIs, read as members of it."""
    embedded = data_uri_files(html)
    if not embedded.files:
        return []
    members = ((name, partial(bytes, data)) for name, data in embedded.files)
    return _read_members(path, members, budget, depth) + embedded.refusals(f"attachment:{path}")


def _read_as_text(path: str, data: bytes, budget: Budget, depth: int) -> list[Found]:
    """Pictures (the words stored in them), HTML and text files by their name or their
    bytes; anything else holds no text."""
    where = f"attachment:{path}"
    if is_image(data[:16]):
        stored = "" if is_bare_picture(data[:16]) else image_text(data, budget)
        read, words = picture_words(data, budget)
        text, layout = joined([(stored, NO_LAYOUT), (read, TextLayout(pictures=(words,)))])
        return _located(where, text, budget, layout) if text else []
    extension = posixpath.splitext(path.lower())[1]
    if extension in _HTML_EXTENSIONS:
        html = decode_text(data)
        found = _located(where, f"{html_to_text(html)}\n{html_unseen_text(html)}", budget)
        return found + _read_data_uris(path, html, budget, depth)
    if extension in _TEXT_EXTENSIONS or _looks_like_text(data):
        return _located(where, decode_text(data), budget)
    return []


def _read_pdf(path: str, data: bytes, budget: Budget, depth: int) -> list[Found]:
    where = f"attachment:{path}"
    contents = pdf_contents(data, budget)
    found = _located(where, contents.text, budget, contents.layout)
    if contents.pages_not_read:
        limit = budget.limits.max_pdf_pages
        detail = f"{contents.pages_not_read} page(s) after the first {limit} not read"
        found.append(Unreadable(where, "too-big", detail))
    if contents.embedded:
        members = ((name, partial(bytes, content)) for name, content in contents.embedded)
        found += _read_members(path, members, budget, depth)
    return found


def _read_zip(path: str, data: bytes, budget: Budget, depth: int) -> list[Found]:
    archive = open_zip(data)
    with archive:
        names = member_names(archive)
        kind = sniff_container(names, ReadMember(archive, budget))
        if kind != "zip":
            text = container_text(names, kind, ReadMember(archive, budget))
            found = _located(f"attachment:{path}", text, budget)
            embedded = [name for name in names if EMBEDDED.fullmatch(name)]
            if kind == "docx":
                embedded += alt_chunks(names, ReadMember(archive, budget))
            if embedded:
                members = ((name, partial(read_member, archive, name, budget)) for name in embedded)
                found += _read_members(path, members, budget, depth)
            return found
        members = ((name, partial(read_member, archive, name, budget)) for name in names)
        return _read_members(path, members, budget, depth)


def _read_members(
    path: str, members: Iterable[tuple[str, Callable[[], bytes]]], budget: Budget, depth: int
) -> list[Found]:
    """Each member of an archive at ``path``: its name, then what it holds."""
    _check_depth(depth, budget)
    found: list[Found] = []
    for name, read in members:
        member_path = f"{path}/{name}"
        found.append(Location(f"attachment-name:{member_path}", name))
        try:
            member = read()
        except MailsafeError as exc:
            found.append(Unreadable(f"attachment:{member_path}", exc.code, str(exc)))
            if exc.code in MAIL_WIDE_REASONS:
                break
            continue
        inner = attachment_locations(member_path, member, budget, depth + 1)
        found.extend(inner)
        if any(isinstance(i, Unreadable) and i.reason in MAIL_WIDE_REASONS for i in inner):
            break
    return found


def _check_depth(depth: int, budget: Budget) -> None:
    if depth + 1 > budget.limits.max_depth:
        raise LimitExceeded(
            f"archives nested deeper than {budget.limits.max_depth}", code="too-deep"
        )


def _read_ole(where: str, data: bytes, budget: Budget) -> list[Found]:
    ole = open_ole(data)
    try:
        if not is_hwp(ole):
            raise HostileInput(
                "legacy OLE document (doc/xls/ppt) whose text is not read",
                code="unsupported-format",
            )
        text, refusal = hwp_text(ole, budget)
    finally:
        ole.close()
    found = _located(where, text, budget) if text else []
    if refusal:
        found.append(Unreadable(where, refusal, "HWP document is password-protected"))
    return found


def _located(where: str, text: str, budget: Budget, layout: TextLayout = NO_LAYOUT) -> list[Found]:
    """``text`` at ``where``, and when it is longer than the limit, its first part and the
    file as unreadable: text that was not read must not pass as clean (D19; a 20.5 MiB log
    with the number at its end went out, issue 19.5)."""
    limit = budget.limits.max_text_chars
    if len(text) <= limit:
        return [Location(where, text, layout)]
    detail = f"text past the first {limit // MIB} Mi characters not read"
    return [Location(where, text[:limit], layout.cut(limit)), Unreadable(where, "too-big", detail)]


def _looks_like_text(data: bytes) -> bool:
    """Text by its byte-order mark, by UTF-16's NUL bytes, or by having no NUL byte; or text
    with a NUL byte or two put in to pass for binary (a text editor shows it as text)."""
    head = data[:_BINARY_SNIFF_BYTES]
    if head.startswith((b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf")):
        return True
    if not head:
        return False
    if b"\x00" not in head or utf16_without_mark(head) is not None:
        return True
    return is_mostly_text(head.decode("utf-8", errors="replace"))
