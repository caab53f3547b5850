"""Parse hostile MIME into a :class:`ParsedMail`, never crashing, within named limits.

Built on the standard ``email`` package with the ``compat32`` policy: it is the most tolerant
of broken boundaries, encodings and headers, and it never raises on header access. Headers are
then decoded by our own RFC 2047 / RFC 2231 code (:mod:`mailsafe.charsets`) so that Korean
legacy labels (``ks_c_5601-1987``, EUC-KR, ISO-2022-KR) and lying labels come out right.
The tree itself is built by a fast path (:func:`_message_tree`) that gives exactly the tree
``email`` would, without walking base64 bodies line by line.

What was cut or broken is recorded in words in ``ParsedMail.defects``; nothing is silently lost
except bytes beyond a limit, and those are named there too.
"""

from __future__ import annotations

import binascii
import email
import email.errors
import email.header
import email.message
import email.utils
import hashlib
import quopri
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.feedparser import BytesFeedParser
from email.policy import compat32
from typing import Final, NamedTuple

from mailsafe.charsets import decode_bytes, guess_unlabelled
from mailsafe.flowed import unflow
from mailsafe.invitation import CalendarEvent, calendar_events
from mailsafe.notes import note
from mailsafe.outlook import msg_to_mime
from mailsafe.smime import signed_content
from mailsafe.tnef import TNEF_MAGIC, tnef_message

__all__ = [
    "MAX_HEADER_BLOCK_BYTES",
    "OLE_MAGIC",
    "SUBJECT_SCAN_BYTES",
    "Address",
    "Attachment",
    "ParseLimits",
    "ParsedMail",
    "decode_header_text",
    "parse_message",
    "raw_header_to_text",
]

KIB = 1024
MIB = 1024 * KIB
# RFC 5322 lines are <= 998 bytes; 256 KiB of header block is already hundreds of Received
# lines, more is an attack on header parsing. Whoever reads a mail's header block reads this much.
MAX_HEADER_BLOCK_BYTES = 256 * KIB
# Enough of a mail's top to find its Subject for a notice (headers come first; 64 KiB is
# hundreds of header lines), without parsing the whole header block of a hostile mail.
SUBJECT_SCAN_BYTES = 64 * KIB

# Outlook .msg files are OLE2 compound files, not RFC 5322 text; mailsafe.outlook reads them
# into RFC 5322 (what it cannot read is listed, not parsed).
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


@dataclass(frozen=True)
class ParseLimits:
    """Bounds on what one mail may make the parser hold or walk."""

    # Larger than any mail an MX accepts (SIZE is typically 25-50 MB); beyond it we refuse work.
    max_raw_bytes: int = 64 * MIB
    # Real mail nests 4-6 levels (forward of a forward of a signed mail); 20 is generous, and
    # keeps recursion far from Python's stack limit.
    max_depth: int = 20
    # Real mail has tens of parts; 500 lets big newsletters through and stops part bombs.
    max_parts: int = 500
    # See MAX_HEADER_BLOCK_BYTES.
    max_header_bytes: int = MAX_HEADER_BLOCK_BYTES
    # One header value shown to a person never needs more than this; longer is cut.
    max_header_value_chars: int = 16 * KIB
    # Total bytes of decoded parts kept (bodies + attachments): below the render budget, above
    # any legitimate mail after transfer decoding (base64 shrinks by a quarter).
    max_decoded_bytes: int = 64 * MIB
    # A single text body longer than this is cut: nobody reads 4 MB of text as pictures.
    max_body_chars: int = 4 * MIB
    # References lists beyond this are noise (long threads have ~50).
    max_references: int = 200
    # Addresses per header beyond this are cut (mass mailings show the first ones).
    max_addresses: int = 500


@dataclass(frozen=True)
class Address:
    display: str
    addr: str


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int
    sha256: str
    data: bytes
    disposition: str  # "attachment" | "inline"
    content_id: str | None
    # True when the decoded-size limit cut this part: ``data`` is empty, size/sha256 describe
    # the bytes that were seen.
    truncated: bool = False


@dataclass(frozen=True)
class ParsedMail:
    subject: str
    from_: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    date: str
    message_id: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    text: str | None
    html: str | None
    attachments: tuple[Attachment, ...]
    forwarded: tuple[ParsedMail, ...]
    security: tuple[str, ...]
    defects: tuple[str, ...]
    # The text/calendar, delivery-status and similar inline bodies appended to ``text`` are
    # named here so a renderer can say what it shows.
    content_types: tuple[str, ...] = field(default=())
    # Every other header, decoded (name, value): not shown, but it leaves with the mail, so the
    # outbound scan reads it. Transport and structure headers (Received, DKIM, Content-*) are
    # left out; at most MAX_OTHER_HEADERS.
    other_headers: tuple[tuple[str, str], ...] = field(default=())
    # The events of its invitations (text/calendar parts, .ics attachments): a reader is shown
    # their time and place, which the body often leaves out.
    events: tuple[CalendarEvent, ...] = field(default=())
    # Text of multiparts outside their parts (before the first boundary, after the closing
    # one): no mail client shows it as the body, some show it somewhere, and it leaves with
    # the mail, so the outbound scan reads it (issue 19.5).
    outside_parts: tuple[str, ...] = field(default=())


# --------------------------------------------------------------------------- headers

# An encoded word; also the broken ones mailers send: blanks inside the payload (a Q word
# with raw spaces, a B word folded mid-way), and a last word cut before its "?=" (or its "=").
_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,80})\?([bBqQ])\?([^?]{0,2000}?)(?:\?=|\??\s*\Z)")
_BETWEEN_WORDS = re.compile(r"(\?=)[ \t\r\n]+(=\?)")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _surrogate_bytes(value: str) -> bytes:
    """Recover the raw bytes compat32 kept as surrogate escapes in a header value."""
    return value.encode("utf-8", errors="surrogateescape")


def raw_header_to_text(value: object) -> str:
    """A header value from compat32 (str with surrogates, or Header) as text, 8-bit guessed."""
    if isinstance(value, email.header.Header):
        try:
            return str(value)
        except (UnicodeError, LookupError):
            return value.encode()
    text = str(value)
    if text.isascii():
        return text
    try:
        data = _surrogate_bytes(text)
    except UnicodeError:
        return text
    return guess_unlabelled(data)


def _decode_word_payload(encoding: str, payload: str) -> bytes:
    if encoding in "bB":
        cleaned = re.sub(r"[^A-Za-z0-9+/]", "", payload)
        cleaned += "=" * (-len(cleaned) % 4)
        try:
            return binascii.a2b_base64(cleaned)
        except (binascii.Error, ValueError):
            return b""
    return quopri.decodestring(payload.replace("_", " ").encode("ascii", "replace"), header=True)


def decode_header_text(untrusted: str) -> str:
    """Decode RFC 2047 encoded words, joining adjacent words of one charset before decoding.

    Korean mailers split a multi-byte character across two encoded words; decoding each word
    alone would give two replacement characters, so same-charset runs are concatenated first.
    """
    if "=?" not in untrusted:  # no encoded word: most values (and all of their passes)
        return _unfold(untrusted)
    text = _BETWEEN_WORDS.sub(r"\1\2", untrusted)
    pieces: list[tuple[str | None, bytes | str]] = []
    position = 0
    for match in _ENCODED_WORD.finditer(text):
        if match.start() > position:
            pieces.append((None, text[position : match.start()]))
        charset = match.group(1).split("*", 1)[0]  # RFC 2231 language suffix
        data = _decode_word_payload(match.group(2), match.group(3))
        previous = pieces[-1] if pieces else None
        if (
            previous is not None
            and previous[0] == charset.lower()
            and isinstance(previous[1], bytes)
        ):
            pieces[-1] = (previous[0], previous[1] + data)
        else:
            pieces.append((charset.lower(), data))
        position = match.end()
    pieces.append((None, text[position:]))
    out = [decode_bytes(p, c) if isinstance(p, bytes) else p for c, p in pieces]
    return _unfold("".join(out))


_FOLD: Final = re.compile(r"\r?\n[ \t]*")


def _unfold(text: str) -> str:
    if "\n" in text:
        text = _FOLD.sub(" ", text)
    return _CONTROL.sub("", text).strip()


# --------------------------------------------------------------------------- walking state


class _Budget:
    """Counts shared by one parse: parts seen and decoded bytes kept, plus the defect list."""

    def __init__(self, limits: ParseLimits) -> None:
        self.limits = limits
        self.parts = 0
        self.decoded = 0
        self.defects: list[str] = []
        self.parts_cut = False

    def note(self, defect: str) -> None:
        if defect not in self.defects and len(self.defects) < 100:
            self.defects.append(defect)

    def take_part(self) -> bool:
        self.parts += 1
        if self.parts > self.limits.max_parts:
            if not self.parts_cut:
                self.note(note("too_many_parts", limit=self.limits.max_parts))
                self.parts_cut = True
            return False
        return True

    def take_bytes(self, size: int) -> bool:
        if self.decoded + size > self.limits.max_decoded_bytes:
            self.note(note("decoded_cut", limit=self.limits.max_decoded_bytes))
            return False
        self.decoded += size
        return True


@dataclass
class _Collected:
    """What the walk of one message (not its forwarded children) gathers."""

    texts: list[str] = field(default_factory=list)
    htmls: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    forwarded: list[ParsedMail] = field(default_factory=list)
    security: list[str] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)
    events: list[CalendarEvent] = field(default_factory=list)
    outside_parts: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- entry point


def parse_message(
    raw: bytes, limits: ParseLimits = ParseLimits(), *, fast_path: bool = True
) -> ParsedMail:
    """Parse ``raw`` (hostile) into a :class:`ParsedMail`; never raises on any input.

    ``fast_path=False`` builds the tree with the standard parser alone (tests compare both).
    """
    budget = _Budget(limits)
    if raw.startswith(OLE_MAGIC):
        converted = msg_to_mime(raw[: limits.max_raw_bytes])
        if converted is None:
            return _not_rfc5322(raw, budget)
        budget.note(note("outlook_msg_read"))
        raw = converted
    if len(raw) > limits.max_raw_bytes:
        budget.note(note("raw_cut", limit=limits.max_raw_bytes))
        raw = raw[: limits.max_raw_bytes]
    raw = _repair_header_block(*_cap_header_block(raw, budget), budget)
    try:
        message = _message_tree(raw) if fast_path else _stdlib_tree(raw)
    except (RecursionError, MemoryError, ValueError, TypeError, LookupError, IndexError) as exc:
        budget.note(note("mime_unparsable", error=type(exc).__name__))
        return _fallback(raw, budget)
    try:
        return _build(message, 0, budget)
    except RecursionError:
        budget.note(note("mime_too_deep_to_walk"))
        return _fallback(raw, budget)
    except Exception as exc:  # noqa: BLE001 - email raises undocumented errors on hostile input
        budget.note(note("mime_unwalkable", error=type(exc).__name__))
        return _fallback(raw, budget)


def _cap_header_block(raw: bytes, budget: _Budget) -> tuple[bytes, int | None]:
    """``raw`` with its header block cut to the limit, and where that block ends (see
    ``_header_end``)."""
    limit = budget.limits.max_header_bytes
    end = _header_end(raw, limit + 4)
    if end is not None and end <= limit:
        return raw, end
    budget.note(note("header_block_cut", limit=limit))
    head = raw[:limit]
    cut = head.rfind(b"\n")
    head = head[: cut + 1] if cut > 0 else b""
    body_start = end if end is not None else limit
    capped = head + b"X-Mailsafe-Cut: headers\n\n" + raw[body_start:].lstrip(b"\r\n")
    return capped, _header_end(capped, limit + 4)


_VALID_HEADER_LINE = re.compile(rb"^[\x21-\x39\x3b-\x7e]+:")
_BAD_HEADER_LINE = re.compile(rb"^[^:\r\n]{1,200}:")
# A line (after the first) that is neither a valid header line nor a continuation line; the
# line breaks are those bytes.splitlines honours. Without one, no line can be dropped.
_ODD_HEADER_LINE = re.compile(rb"(?:\r\n?+|\n)(?![ \t]|[\x21-\x39\x3b-\x7e]+:)")


def _repair_header_block(raw: bytes, end: int | None, budget: _Budget) -> bytes:
    """Drop header lines whose name has illegal characters (spaces, tabs); the header block
    ends at ``end``.

    ``email`` takes such a line for the start of the body, which then shows the remaining
    headers as text and decodes them as base64. Only lines that look like ``name: value`` after
    at least one valid header are dropped, with their continuation lines.
    """
    if end is None or _ODD_HEADER_LINE.search(raw, 0, end) is None:
        return raw
    lines = raw[:end].splitlines(keepends=True)
    kept: list[bytes] = []
    dropping = False
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            if not dropping:
                kept.append(line)
            continue
        dropping = (
            bool(kept)
            and not _VALID_HEADER_LINE.match(line)
            and bool(_BAD_HEADER_LINE.match(line))
            and not line.startswith(b"From ")
        )
        if dropping:
            budget.note(note("bad_header_name"))
        else:
            kept.append(line)
    if len(kept) == len(lines):
        return raw
    return b"".join(kept) + raw[end:]


# The blank line ending a header block; one search stops at the first of either form, where
# two bytes.find calls would scan the whole window for the form the mail does not use.
_BLANK_LINE: Final = re.compile(rb"\n\n|\r\n\r\n")


def _header_end(raw: bytes, search_limit: int) -> int | None:
    """Where the first blank line starts within ``search_limit`` bytes; the length of
    ``raw`` when it is all header; None when no blank line is within the limit."""
    found = _BLANK_LINE.search(raw, 0, search_limit)
    if found is None:
        return None if len(raw) > search_limit else len(raw)
    return found.start()


def _not_rfc5322(raw: bytes, budget: _Budget) -> ParsedMail:
    budget.note(note("outlook_msg"))
    attachment = _make_attachment(
        "message.msg", "application/vnd.ms-outlook", raw, "attachment", None, budget
    )
    return _empty_mail(budget, attachments=(attachment,))


def _fallback(raw: bytes, budget: _Budget) -> ParsedMail:
    """The parser gave up: show the raw text so the reader still sees something."""
    text = guess_unlabelled(raw[: budget.limits.max_body_chars])
    return _empty_mail(budget, text=text)


def _empty_mail(
    budget: _Budget, *, text: str | None = None, attachments: tuple[Attachment, ...] = ()
) -> ParsedMail:
    return ParsedMail(
        subject="",
        from_=(),
        to=(),
        cc=(),
        reply_to=(),
        date="",
        message_id=None,
        in_reply_to=None,
        references=(),
        text=text,
        html=None,
        attachments=attachments,
        forwarded=(),
        security=(),
        defects=tuple(budget.defects),
    )


# --------------------------------------------------------------------------- the MIME tree

# Header lines as feedparser's headerRE accepts them, each ending in a line break.
_HEADER_LINES = re.compile(rb"(?:(?:From |[\x21-\x39\x3b-\x7e]*:|[\t ])[^\n]*\n)*")
# Line breaks feedparser honours (str.splitlines) beyond CRLF and LF (bare CR is the other):
# with any of them the delimiter search below would not split where it does.
_ODD_LINE_BREAKS = (b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e")
# A CR that does not start a CRLF: feedparser splits lines there too.
_BARE_CARRIAGE_RETURN: Final = re.compile(rb"\r(?!\n)")
# What may follow "--boundary" on a delimiter line (feedparser's boundaryendRE).
_DELIMITER_TAIL = re.compile(rb"(--)?[ \t]*(?:\r\n|\n|\Z)")
# One fast-path recursion per multipart level; deeper mail goes to the standard parser whole,
# so that both fail the same way on absurd nesting.
_FAST_PATH_MAX_DEPTH = 50


class _NotFastPath(Exception):
    """A structure the fast path does not reproduce exactly; the standard parser takes it."""


def _stdlib_tree(raw: bytes) -> email.message.Message:
    return email.message_from_bytes(raw, policy=compat32)


def _message_tree(raw: bytes) -> email.message.Message:
    """The tree ``email.message_from_bytes(raw, policy=compat32)`` builds, built faster.

    feedparser walks every body line in Python, and base64 attachments make that most of the
    parse time. Here only header blocks go through the email parser; multipart bodies are
    split on their RFC 2046 delimiter lines (found by bytes.find), exactly where feedparser
    splits them, and leaf bodies become payloads as they are. Whatever the split would not
    reproduce exactly (odd line breaks, missing or doubled delimiters, header blocks without
    a blank line, digests, a multipart with a transfer encoding) sends the whole mail to the
    standard parser; delivery-status parts are handed to it whole.
    tests/mailsafe/test_mime_fast.py proves both give equal trees and ParsedMail results.
    """
    if _BARE_CARRIAGE_RETURN.search(raw) is not None:
        return _stdlib_tree(raw)
    if any(line_break in raw for line_break in _ODD_LINE_BREAKS):
        return _stdlib_tree(raw)
    try:
        return _fast_node(raw, 0).message
    except Exception:  # noqa: BLE001 - any surprise means: let the standard parser decide
        return _stdlib_tree(raw)


class _Node(NamedTuple):
    """An entity built by the fast path, and the message feedparser would have created last
    while parsing it (whose trailing line break belongs to the next delimiter)."""

    message: email.message.Message
    last: email.message.Message
    last_is_multipart: bool  # known when it is built: no need to parse its type again


def _fast_node(chunk: bytes, depth: int) -> _Node:
    """One entity (see ``_Node``)."""
    if depth > _FAST_PATH_MAX_DEPTH:
        raise _NotFastPath
    headers = _HEADER_LINES.match(chunk)
    headers_end = headers.end() if headers else 0
    if chunk.startswith(b"\r\n", headers_end):
        body_start = headers_end + 2
    elif chunk.startswith(b"\n", headers_end):
        body_start = headers_end + 1
    else:
        raise _NotFastPath  # no blank line after the headers: feedparser records a defect
    message = _header_message(_text(chunk[:headers_end]))
    content_type = message.get_content_type()
    if content_type == "message/delivery-status":
        root, last = _stdlib_node(chunk)  # a list of header blocks, rare and small
        return _Node(root, last, last.get_content_maintype() == "multipart")
    maintype = content_type.split("/")[0]  # as get_content_maintype, without asking again
    body = chunk[body_start:]
    if maintype == "message":
        # feedparser parses what follows as one message, the only item of the payload.
        inner = _fast_node(body, depth + 1)
        message.set_payload([inner.message])
        return inner._replace(message=message)
    if maintype == "multipart":
        _fast_multipart(message, content_type, body, depth)
        return _Node(message, message, last_is_multipart=True)
    message.set_payload(_text(body))
    return _Node(message, message, last_is_multipart=False)


def _header_message(block: str) -> email.message.Message:
    """The message ``BytesHeaderParser(policy=compat32)`` makes of a header block and its
    blank line, without feedparser's line-by-line machinery.

    ``block`` is what ``_HEADER_LINES`` matched, so every line is one feedparser's headerRE
    accepts and ends in LF or CRLF (the caller ruled out other line breaks): what is left of
    feedparser is its ``_parse_headers``, repeated here rule for rule, defects included.
    """
    message = email.message.Message()
    lines = block.splitlines(keepends=True)
    value_lines: list[str] = []
    for number, line in enumerate(lines):
        if line[0] in " \t":
            if value_lines:
                value_lines.append(line)
            else:
                message.defects.append(email.errors.FirstHeaderLineIsContinuationDefect(line))
            continue
        if value_lines:
            message.set_raw(*_header_field(value_lines))
            value_lines = []
        if line.startswith("From "):
            if number == 0:
                message.set_unixfrom(_without_trailing_eol(line))
            elif number == len(lines) - 1:
                # feedparser takes it for the body's first line, which the fast path's
                # split would lose (and with it what the scan should read there).
                raise _NotFastPath
            else:
                message.defects.append(email.errors.MisplacedEnvelopeHeaderDefect(line))
            continue
        if line[0] == ":":
            message.defects.append(email.errors.InvalidHeaderDefect("Missing header name."))
            continue
        value_lines = [line]
    if value_lines:
        message.set_raw(*_header_field(value_lines))
    message.set_payload("")
    return message


def _header_field(lines: list[str]) -> tuple[str, str]:
    """compat32's ``header_source_parse``: the name before the first colon; the value after
    it, leading blanks and the final line break removed, continuation lines kept."""
    name, value = lines[0].split(":", 1)
    value = value.lstrip(" \t") + "".join(lines[1:])
    return name, value.rstrip("\r\n")


def _stdlib_node(chunk: bytes) -> tuple[email.message.Message, email.message.Message]:
    parser = BytesFeedParser(policy=compat32)
    parser.feed(chunk)
    root = parser.close()
    last = getattr(parser, "_last", None)
    if not isinstance(last, email.message.Message):
        raise _NotFastPath
    return root, last


def _fast_multipart(
    message: email.message.Message, content_type: str, body: bytes, depth: int
) -> None:
    boundary = message.get_boundary()
    if boundary is None or content_type == "multipart/digest":
        raise _NotFastPath  # digests change their children's default type
    encoding = str(message.get("content-transfer-encoding", "8bit")).lower()
    if encoding not in {"7bit", "8bit", "binary"}:
        raise _NotFastPath  # feedparser records a defect
    try:
        separator = ("--" + boundary).encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        raise _NotFastPath from None  # RFC 2231 decoded it to text no line can contain
    if b"\r" in separator or b"\n" in separator:
        raise _NotFastPath
    openers, (close_start, close_end) = _delimiters(separator, body)
    if openers[0][0] > 0:
        message.preamble = _without_trailing_eol(_text(body[: openers[0][0]]))
    children: list[email.message.Message] = []
    part_ends = [start for start, _ in openers[1:]] + [close_start]
    for (_, part_start), part_end in zip(openers, part_ends, strict=True):
        child = _fast_node(body[part_start:part_end], depth + 1)
        _trim_before_delimiter(child.last, child.last_is_multipart)
        children.append(child.message)
    message.set_payload(children)  # type: ignore[arg-type]
    message.epilogue = _text(body[close_end:])


def _delimiters(separator: bytes, body: bytes) -> tuple[list[tuple[int, int]], tuple[int, int]]:
    """Where each opening delimiter line starts and ends, and the close delimiter line.

    bytes.find does the scanning (far faster than a regex search over megabytes of base64);
    the regex only checks what follows a candidate, as feedparser's boundaryendRE does.
    """
    openers: list[int] = []
    ends: list[int] = []
    start = 0 if body.startswith(separator) else _line_start(body, separator, 0)
    while start >= 0:
        tail = _DELIMITER_TAIL.match(body, start + len(separator))
        if tail is None:
            start = _line_start(body, separator, start + 1)
            continue
        if ends and start == ends[-1]:
            raise _NotFastPath  # feedparser swallows consecutive delimiter lines
        if tail.group(1):
            if not openers:
                raise _NotFastPath  # close before any opening delimiter
            return [*zip(openers, ends, strict=True)], (start, tail.end())
        openers.append(start)
        ends.append(tail.end())
        start = _line_start(body, separator, tail.end())
    raise _NotFastPath  # no close delimiter: feedparser records a defect


def _line_start(body: bytes, separator: bytes, position: int) -> int:
    """Start of the next line at or after ``position`` that begins with ``separator``."""
    found = body.find(b"\n" + separator, position - 1 if position > 0 else 0)
    return found + 1 if found >= 0 else -1


def _trim_before_delimiter(last: email.message.Message, is_multipart: bool) -> None:
    """RFC 2046: the line break before a delimiter belongs to it (feedparser's rule)."""
    if is_multipart:
        epilogue = last.epilogue
        if epilogue == "":
            last.epilogue = None
        elif epilogue is not None:
            last.epilogue = _without_trailing_eol(epilogue)
        return
    payload = vars(last).get("_payload")
    if isinstance(payload, str):
        last.set_payload(_without_trailing_eol(payload))


def _text(data: bytes) -> str:
    return data.decode("ascii", "surrogateescape")


def _without_trailing_eol(text: str) -> str:
    """feedparser's ``NLCRE_eol`` strip, without a regex search through the whole text."""
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith(("\r", "\n")) else text


# --------------------------------------------------------------------------- building


def _build(message: email.message.Message, depth: int, budget: _Budget) -> ParsedMail:
    collected = _Collected()
    _walk(message, depth, budget, collected, in_alternative=False)
    headers = _Headers(message, budget)
    max_chars = budget.limits.max_body_chars
    text = "\n\n".join(collected.texts) if collected.texts else None
    html = "\n".join(collected.htmls) if collected.htmls else None
    if text is not None and len(text) > max_chars:
        budget.note(note("text_cut", limit=max_chars))
        text = text[:max_chars]
    if html is not None and len(html) > max_chars:
        budget.note(note("html_cut", limit=max_chars))
        html = html[:max_chars]
    for defect in message.defects:
        budget.note(_defect_words(defect))
    return ParsedMail(
        subject=headers.text("subject"),
        from_=headers.addresses("from"),
        to=headers.addresses("to"),
        cc=headers.addresses("cc"),
        reply_to=headers.addresses("reply-to"),
        date=headers.text("date"),
        message_id=headers.optional("message-id"),
        in_reply_to=headers.optional("in-reply-to"),
        references=headers.references(),
        text=text,
        html=html,
        attachments=tuple(collected.attachments),
        forwarded=tuple(collected.forwarded),
        security=tuple(dict.fromkeys(collected.security)),
        defects=tuple(budget.defects),
        content_types=tuple(dict.fromkeys(collected.content_types)),
        events=tuple(dict.fromkeys(collected.events)),
        other_headers=headers.others(),
        outside_parts=tuple(collected.outside_parts),
    )


def _defect_words(defect: object) -> str:
    name = type(defect).__name__
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()
    return note("mime_defect", defect=words)


# Headers with a field of their own in ParsedMail, and transport and structure headers that
# carry no words of the sender's (and would only feed the scan digits of routes and hashes).
_HEADERS_NOT_OTHER: Final = frozenset({
    "subject", "from", "to", "cc", "reply-to", "date", "message-id", "in-reply-to",
    "references", "received", "x-received", "return-path", "delivered-to", "x-original-to",
    "mime-version", "content-type", "content-transfer-encoding", "content-disposition",
    "content-id", "dkim-signature", "arc-seal", "arc-message-signature",
    "arc-authentication-results", "authentication-results", "received-spf",
})  # fmt: skip
MAX_OTHER_HEADERS: Final = 200
MAX_HEADER_NAME_CHARS: Final = 100


class _Headers:
    """Decoded views of one message's headers, each cut to the header-value limit."""

    def __init__(self, message: email.message.Message, budget: _Budget) -> None:
        self._message = message
        self._limits = budget.limits
        self._budget = budget
        # Each header's values by lower-case name, in order: looked up once per field, not
        # found by walking every header (Received lines and all) for each of them.
        self._by_name: dict[str, list[object]] = {}
        for key, value in message.raw_items():
            self._by_name.setdefault(key.lower(), []).append(value)

    def _values(self, name: str) -> list[str]:
        """Every value of header ``name`` as stored (8-bit bytes still surrogate-escaped)."""
        return [
            raw_header_to_text(value)[: self._limits.max_header_value_chars]
            for value in self._by_name.get(name, ())
        ]

    def _raw(self, name: str) -> str | None:
        values = self._values(name)
        return values[0] if values else None

    def text(self, name: str) -> str:
        value = self._raw(name)
        return "" if value is None else decode_header_text(value)

    def optional(self, name: str) -> str | None:
        value = self._raw(name)
        return None if value is None else _unfold(value) or None

    def references(self) -> tuple[str, ...]:
        value = self._raw("references") or ""
        ids = re.findall(r"<[^<>\s]{1,998}>", value)
        return tuple(ids[: self._limits.max_references])

    def others(self) -> tuple[tuple[str, str], ...]:
        """Decoded (name, value) of the headers ParsedMail has no field for, in order."""
        found: list[tuple[str, str]] = []
        for key, value in self._message.raw_items():
            if key.lower() in _HEADERS_NOT_OTHER or len(found) >= MAX_OTHER_HEADERS:
                continue
            text = raw_header_to_text(value)[: self._limits.max_header_value_chars]
            found.append((key[:MAX_HEADER_NAME_CHARS], decode_header_text(text)))
        return tuple(found)

    def addresses(self, name: str) -> tuple[Address, ...]:
        values = self._values(name)
        if not values:
            return ()
        try:
            pairs = email.utils.getaddresses(values)
        except (ValueError, TypeError, IndexError):
            self._budget.note(note("bad_address_list", header=name))
            return tuple(Address(decode_header_text(v), "") for v in values)
        found = [
            Address(display=decode_header_text(display), addr=_unfold(addr))
            for display, addr in pairs
            if display or addr
        ]
        if not found and any(v.strip() for v in values):
            found = [Address(decode_header_text(v), "") for v in values]
        return tuple(found[: self._limits.max_addresses])


# --------------------------------------------------------------------------- parts

_SECURITY_TYPES = {
    "application/pkcs7-signature": "smime-signed",
    "application/x-pkcs7-signature": "smime-signed",
    "application/pgp-signature": "pgp-signed",
    "application/pgp-encrypted": "pgp-encrypted",
}
# Outlook's TNEF (winmail.dat): read by mailsafe.tnef; "tnef" in ParsedMail.security only for
# one that could not be read (and so is withheld).
_TNEF_TYPES: Final = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})

_CALENDAR_TYPES = frozenset({"text/calendar", "application/ics", "text/x-vcalendar"})

_INLINE_TEXT_TYPES = frozenset(
    {
        "text/plain",
        "text/enriched",
        "text/calendar",
        "message/delivery-status",
        "message/disposition-notification",
        "text/rfc822-headers",
        "text/x-vcard",
        "text/vcard",
    }
)


def _walk(
    part: email.message.Message,
    depth: int,
    budget: _Budget,
    collected: _Collected,
    *,
    in_alternative: bool,
) -> None:
    if not budget.take_part():
        return
    if depth > budget.limits.max_depth:
        budget.note(note("mime_too_deep", limit=budget.limits.max_depth))
        return
    content_type = _content_type(part)
    _note_security(part, content_type, collected)
    if content_type == "message/partial":  # RFC 2046 5.2.2: a piece of a mail split in several
        budget.note(note("message_partial"))
        return
    if content_type in {"message/rfc822", "message/global"}:
        _forwarded(part, depth, budget, collected)
        return
    if content_type.startswith("multipart/") and not part.is_multipart():
        part = _resplit_folded_boundary(part, budget)
    if part.is_multipart() and not content_type.startswith("message/"):
        _trim_broken_close(part, budget)
        _walk_multipart(part, content_type, depth, budget, collected)
        return
    _walk_single(part, content_type, depth, budget, collected, in_alternative=in_alternative)


def _walk_single(
    part: email.message.Message,
    content_type: str,
    depth: int,
    budget: _Budget,
    collected: _Collected,
    *,
    in_alternative: bool,
) -> None:
    """A part that is not a multipart: header blocks as text, an attached Outlook item as a
    mail, anything else a body or an attachment."""
    if content_type.startswith("message/") and isinstance(part.get_payload(), list):
        _message_as_text(part, content_type, budget, collected)
        return
    filename = _filename(part)  # read once: a tenth of parsing a mail's headers
    if not (
        _outlook_item(part, content_type, depth, budget, collected, filename=filename)
        or _tnef_parts(part, content_type, depth, budget, collected, filename=filename)
        or _smime_signed_parts(part, content_type, depth, budget, collected)
    ):
        _leaf(part, content_type, filename, budget, collected, in_alternative=in_alternative)


_OUTLOOK_TYPES: Final = frozenset({"application/vnd.ms-outlook", "application/x-msg"})


def _outlook_item(
    part: email.message.Message,
    content_type: str,
    depth: int,
    budget: _Budget,
    collected: _Collected,
    *,
    filename: str,
) -> bool:
    """An attached Outlook .msg shown as the mail it is, like an attached message/rfc822;
    False (the part stays an attachment) when it is not one or cannot be read."""
    if content_type not in _OUTLOOK_TYPES and not filename.lower().endswith(".msg"):
        return False
    data = _payload_bytes(part, budget)
    if not data.startswith(OLE_MAGIC):
        return False
    converted = msg_to_mime(data[: budget.limits.max_raw_bytes])
    if converted is None:
        return False
    _add_forwarded(_message_tree(converted), depth, budget, collected)
    return True


def _tnef_parts(
    part: email.message.Message,
    content_type: str,
    depth: int,
    budget: _Budget,
    collected: _Collected,
    *,
    filename: str,
) -> bool:
    """A winmail.dat's bodies and attachments walked as this mail's own parts; False (the
    part stays an attachment) when it is not TNEF, or is but cannot be read (then withheld,
    "tnef" in the mail's security list says why). ``filename``: the part's, read once by
    the caller (reading it again cost about 2 % of the scan on bench_scan's mails)."""
    if content_type not in _TNEF_TYPES and filename.lower() != "winmail.dat":
        return False
    data = _payload_bytes(part, budget)
    if content_type not in _TNEF_TYPES and not data.startswith(TNEF_MAGIC):
        return False
    converted = tnef_message(data) if data.startswith(TNEF_MAGIC) else None
    if converted is None:
        collected.security.append("tnef")
        return False
    budget.note(note("tnef_read"))
    _walk(converted, depth + 1, budget, collected, in_alternative=False)
    return True


_SMIME_TYPES: Final = frozenset({"application/pkcs7-mime", "application/x-pkcs7-mime"})


def _smime_signed_parts(
    part: email.message.Message,
    content_type: str,
    depth: int,
    budget: _Budget,
    collected: _Collected,
) -> bool:
    """Opaque-signed S/MIME: the signed entity walked as this mail's own content, marked
    "smime-signed" (the signature is not checked, and the picture says so); False (the part
    stays an attachment, withheld) when it is encrypted or its content cannot be read."""
    if content_type not in _SMIME_TYPES or "enveloped" in _param(part, "smime-type"):
        return False
    content = signed_content(_payload_bytes(part, budget))
    if content is None:
        collected.security.append("smime-signed-opaque")
        return False
    collected.security.append("smime-signed")
    _walk(_message_tree(content), depth + 1, budget, collected, in_alternative=False)
    return True


def _content_type(part: email.message.Message) -> str:
    try:
        return part.get_content_type().lower()[:255]
    except (ValueError, TypeError, IndexError, AttributeError):
        return "application/octet-stream"


def _note_security(part: email.message.Message, content_type: str, collected: _Collected) -> None:
    if content_type in _SECURITY_TYPES:
        collected.security.append(_SECURITY_TYPES[content_type])
    elif content_type in _SMIME_TYPES and "enveloped" in _param(part, "smime-type"):
        collected.security.append("smime-encrypted")  # opaque-signed: see _smime_signed_parts
    elif content_type == "multipart/encrypted":
        collected.security.append("pgp-encrypted")
    elif content_type == "multipart/signed":
        protocol = str(part.get_param("protocol") or "").lower()
        collected.security.append("pgp-signed" if "pgp" in protocol else "smime-signed")


# What a folded header value keeps of its fold: compat32 leaves the line break in parameters.
_FOLD_IN_VALUE: Final = re.compile(r"\r?\n")
_FOLD_WITH_BLANKS: Final = re.compile(r"\r?\n[ \t]*")


def _resplit_folded_boundary(part: email.message.Message, budget: _Budget) -> email.message.Message:
    """A multipart whose boundary parameter was folded onto a continuation line, split again.

    compat32 keeps the fold's line break inside the parameter, so no delimiter line matches and
    the whole body would become one unreadable part. Unfolded as RFC 5322 says (the line break
    removed, a Lotus Notes boundary keeps its space), or with the fold's blanks removed too
    (mailers that folded where there was no space): the first that some line of the body
    starts with is used. ``part`` itself when neither is.
    """
    boundary = part.get_param("boundary")
    payload = vars(part).get("_payload")
    if not isinstance(boundary, str) or not isinstance(payload, str):
        return part
    body = "\n" + payload
    for unfolded in (_FOLD_IN_VALUE.sub("", boundary), _FOLD_WITH_BLANKS.sub("", boundary)):
        candidate = unfolded.strip()
        if candidate and candidate != boundary and f"\n--{candidate}" in body:
            budget.note(note("boundary_folded"))
            return _with_boundary(part, candidate, payload)
    return part


def _with_boundary(
    part: email.message.Message, boundary: str, payload: str
) -> email.message.Message:
    """``part``'s body parsed again as a multipart of its type, split on ``boundary``."""
    quoted = boundary.replace("\\", "\\\\").replace('"', '\\"')
    head = f'Content-Type: {part.get_content_type()}; boundary="{quoted}"\n\n'
    tree = _message_tree((head + payload).encode("ascii", "surrogateescape"))
    return tree if tree.is_multipart() else part


def _trim_broken_close(part: email.message.Message, budget: _Budget) -> None:
    """Remove a slightly broken close delimiter ("--b-", "-b--", "--b --") from the end of the
    last part, where the parser leaves it when no exact close delimiter came.

    Left there, it is drawn at the end of a text body, and in a base64 body its letters and
    "=" make the whole part undecodable, so the part (often the HTML body) is shown as base64.
    """
    if not any(isinstance(d, email.errors.CloseBoundaryNotFoundDefect) for d in part.defects):
        return
    boundary = part.get_boundary()
    core = (boundary or "").strip("-")
    children = part.get_payload()
    if not core or not isinstance(children, list) or not children:
        return
    last = children[-1]
    while isinstance(last, email.message.Message) and last.is_multipart():
        grandchildren = last.get_payload()
        if not isinstance(grandchildren, list) or not grandchildren:
            return
        last = grandchildren[-1]
    if not isinstance(last, email.message.Message):
        return
    payload = vars(last).get("_payload")
    if not isinstance(payload, str):
        return
    trimmed = _without_broken_delimiters(payload, core)
    if trimmed != payload:
        budget.note(note("broken_close_boundary"))
        last.set_payload(trimmed)


# Characters a broken close delimiter line may carry besides dashes around the boundary.
_BROKEN_DELIMITER_SLACK: Final = 4


def _without_broken_delimiters(payload: str, core: str) -> str:
    """``payload`` without the lines at its end that are ``core`` between dashes, give or
    take a few characters (and the blank lines around them)."""
    lines = payload.splitlines(keepends=True)
    kept = len(lines)
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index].strip()
        if _is_broken_delimiter(line, core):
            kept = index
        elif line:
            break
    if kept == len(lines):
        return payload
    return _without_trailing_eol("".join(lines[:kept]))


def _is_broken_delimiter(line: str, core: str) -> bool:
    letters = len(line.replace("-", "").replace(" ", ""))
    allowed = len(core.replace("-", "").replace(" ", "")) + _BROKEN_DELIMITER_SLACK
    return line.startswith("-") and core in line and letters <= allowed


def _walk_multipart(
    part: email.message.Message,
    content_type: str,
    depth: int,
    budget: _Budget,
    collected: _Collected,
) -> None:
    children = part.get_payload()
    if not isinstance(children, list):
        return
    if len({str(value).strip('"') for value in _param_values(part, "boundary")}) > 1:
        budget.note(note("mime_unparsable", error="two different boundaries"))
    for outside in (part.preamble, part.epilogue):
        if outside and outside.strip() and budget.take_bytes(len(outside)):
            # Kept as the parser read it (8-bit bytes as surrogates): decoded as a body is.
            raw = outside.strip().encode("utf-8", "surrogateescape")
            collected.outside_parts.append(guess_unlabelled(raw))
    if content_type == "multipart/alternative":
        _walk_alternative(children, depth, budget, collected)
        return
    for child in children:
        if isinstance(child, email.message.Message):
            _walk(child, depth + 1, budget, collected, in_alternative=False)


def _walk_alternative(
    children: Sequence[object], depth: int, budget: _Budget, collected: _Collected
) -> None:
    """Keep one plain and one HTML rendering; other alternatives become attachments."""
    for child in children:
        if isinstance(child, email.message.Message):
            _walk(child, depth + 1, budget, collected, in_alternative=True)


def _forwarded(
    part: email.message.Message, depth: int, budget: _Budget, collected: _Collected
) -> None:
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else None
    if isinstance(inner, email.message.Message):
        inner = _transfer_decoded(part, inner)
    if not isinstance(inner, email.message.Message):
        _leaf(part, "message/rfc822", _filename(part), budget, collected, in_alternative=False)
        return
    _add_forwarded(inner, depth, budget, collected)


def _add_forwarded(
    inner: email.message.Message, depth: int, budget: _Budget, collected: _Collected
) -> None:
    """``inner`` built as a forwarded mail, counting against the same part and byte budget."""
    nested = _Budget(budget.limits)
    nested.parts = budget.parts
    nested.decoded = budget.decoded
    child = _build(inner, depth + 1, nested)
    budget.parts = nested.parts
    budget.decoded = nested.decoded
    collected.forwarded.append(child)


def _transfer_decoded(
    part: email.message.Message, inner: email.message.Message
) -> email.message.Message:
    """The attached mail of a message/rfc822 part sent base64 or quoted-printable encoded.

    RFC 2046 allows only 7bit, 8bit and binary there, but mailers encode attached mails anyway;
    the parser then reads the encoded text as a mail with no headers. Decoded and parsed again,
    it is shown as the mail it is. ``inner`` itself for every other part.
    """
    encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
    body = vars(inner).get("_payload")
    if encoding not in {"base64", "quoted-printable"} or not isinstance(body, str):
        return inner
    # The encoded text as it came: a quoted-printable mail's first lines parse as headers.
    lines = [f"{name}: {value}\n" for name, value in inner.raw_items()]
    encoded = "".join(lines) + "\n" + body if lines else body
    holder = email.message.Message()
    holder["Content-Transfer-Encoding"] = encoding
    holder.set_payload(encoded)
    data = holder.get_payload(decode=True)
    if not isinstance(data, bytes) or not data.strip():
        return inner
    return _message_tree(data)


def _message_as_text(
    part: email.message.Message, content_type: str, budget: _Budget, collected: _Collected
) -> None:
    """delivery-status and similar: a list of header blocks, shown as text."""
    blocks = [b for b in part.get_payload() if isinstance(b, email.message.Message)]
    lines: list[str] = []
    for block in blocks:
        for name, value in block.items():
            lines.append(f"{name}: {decode_header_text(raw_header_to_text(value))}")
        lines.append("")
    text = "\n".join(lines).strip()
    if text and budget.take_bytes(len(text)):
        collected.texts.append(text)
        collected.content_types.append(content_type)


def _payload_bytes(part: email.message.Message, budget: _Budget) -> bytes:
    _settle_transfer_encoding(part, budget)
    payload = vars(part).get("_payload")
    try:
        if isinstance(payload, str) and payload.isascii() and _is_base64(part):
            return _base64_payload(part, payload)
        data = part.get_payload(decode=True)
    except (ValueError, TypeError, binascii.Error, UnicodeError, LookupError, AssertionError):
        budget.note(note("bad_transfer_encoding"))
        return b""
    return data if isinstance(data, bytes) else b""


def _settle_transfer_encoding(part: email.message.Message, budget: _Budget) -> None:
    """One transfer encoding for ``part``, read as a mail client reads it: RFC 2045 allows
    comments ("base64 (it is)"), which ``email`` does not take off; and two headers that
    disagree leave the part's content to the reader's choice, so it is not read (noted as
    a bad transfer encoding: unreadable). Issue 19.5's parser differentials."""
    values = [str(v) for k, v in part.raw_items() if k.lower() == "content-transfer-encoding"]
    if not values:
        return
    settled = {_COMMENT_RE.sub("", value).strip().lower() for value in values}
    if len(settled) > 1:
        budget.note(note("bad_transfer_encoding"))
    if len(values) > 1 or settled != {values[0]}:
        del part["content-transfer-encoding"]
        part["Content-Transfer-Encoding"] = min(settled)


_COMMENT_RE: Final = re.compile(r"\([^()]*\)")


def _param_values(part: email.message.Message, name: str) -> list[object]:
    """Every value of Content-Type parameter ``name`` (a repeated one more than once)."""
    try:
        params = part.get_params() or []
    except (ValueError, TypeError, IndexError):
        return []
    return [value for key, value in params if str(key).lower() == name]


def _is_base64(part: email.message.Message) -> bool:
    return str(part.get("content-transfer-encoding", "")).lower() == "base64"


def _base64_payload(part: email.message.Message, payload: str) -> bytes:
    """What ``part.get_payload(decode=True)`` gives for an ASCII base64 body, defects and
    all, without splitting megabytes of base64 into lines only to join them again: email's
    decode_b step for step (strict with the padding mended, then lenient, then lenient with
    padding added, else the bytes themselves). tests/mailsafe/test_mime.py compares both."""
    data = payload.encode("ascii").translate(None, b"\r\n")
    missing = len(data) % 4
    defects: list[email.errors.MessageDefect]
    try:
        padded = data + b"==="[: 4 - missing] if missing else data
        value = binascii.a2b_base64(padded, strict_mode=True)
        defects = [email.errors.InvalidBase64PaddingDefect()] if missing else []
    except binascii.Error:
        try:
            value = binascii.a2b_base64(data)
            defects = [email.errors.InvalidBase64CharactersDefect()]
        except binascii.Error:
            try:
                value = binascii.a2b_base64(data + b"==")
                defects = [
                    email.errors.InvalidBase64CharactersDefect(),
                    email.errors.InvalidBase64PaddingDefect(),
                ]
            except binascii.Error:
                value, defects = data, [email.errors.InvalidBase64LengthDefect()]
    for defect in defects:
        part.policy.handle_defect(part, defect)
    return value


def _leaf(
    part: email.message.Message,
    content_type: str,
    filename: str,
    budget: _Budget,
    collected: _Collected,
    *,
    in_alternative: bool,
) -> None:
    disposition = _disposition(part)
    data = _payload_bytes(part, budget)
    is_body = disposition != "attachment" and not filename
    if is_body and content_type in _INLINE_TEXT_TYPES | {"text/html"}:
        _body(part, content_type, data, budget, collected, in_alternative=in_alternative)
        return
    if content_type in _CALENDAR_TYPES or filename.lower().endswith(".ics"):
        collected.events.extend(calendar_events(decode_bytes(data, _charset(part))))
    name = filename or _default_name(content_type)
    attachment = _make_attachment(
        name,
        content_type,
        data,
        "inline" if disposition == "inline" else "attachment",
        _content_id(part),
        budget,
    )
    collected.attachments.append(attachment)


def _body(
    part: email.message.Message,
    content_type: str,
    data: bytes,
    budget: _Budget,
    collected: _Collected,
    *,
    in_alternative: bool,
) -> None:
    if not budget.take_bytes(len(data)):
        return
    charset = _charset(part)
    text = decode_bytes(data, charset)
    if content_type == "text/calendar":  # shown even where an alternative hides the part
        collected.events.extend(calendar_events(text))
    if content_type == "text/html":
        collected.htmls.append(text)
        return
    if in_alternative and content_type != "text/plain":
        return
    if content_type == "text/plain" and _param(part, "format") == "flowed":
        text = unflow(text, delsp=_param(part, "delsp") == "yes")
    collected.texts.append(text)
    collected.content_types.append(content_type)


def _param(part: email.message.Message, name: str) -> str:
    """A Content-Type parameter, lower-cased ("" when absent or unreadable)."""
    try:
        value = part.get_param(name)
    except (ValueError, TypeError, IndexError):
        return ""
    if isinstance(value, tuple):
        value = value[2]
    return str(value or "").strip().lower()


def _charset(part: email.message.Message) -> str | None:
    try:
        value = part.get_param("charset")
    except (ValueError, TypeError, IndexError):
        return None
    if isinstance(value, tuple):
        value = value[2]
    return str(value) if value else None


def _disposition(part: email.message.Message) -> str:
    raw = part.get("content-disposition")
    if raw is None:
        return ""
    value = str(raw).split(";", 1)[0].strip().lower()
    return value if value in {"attachment", "inline"} else "attachment"


def _content_id(part: email.message.Message) -> str | None:
    raw = part.get("content-id")
    if raw is None:
        return None
    value = _unfold(raw_header_to_text(raw)).strip().strip("<>").strip()
    return value[:998] or None


_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")
# File names are shown and used in archive listings; 255 is what file systems allow.
MAX_FILENAME_CHARS = 255


def _filename(part: email.message.Message) -> str:
    for param, header in (("filename", "content-disposition"), ("name", "content-type")):
        try:
            value = _with_8bit_guessed(part, header).get_param(param, header=header)
        except (ValueError, TypeError, IndexError):
            continue
        if value:
            return _clean_filename(_param_text(value))
    return ""


def _with_8bit_guessed(part: email.message.Message, header: str) -> email.message.Message:
    """``part``, or for a header with raw 8-bit bytes (a UTF-8 or CP949 file name sent
    unencoded) a stand-in holding that header decoded as ``raw_header_to_text`` guesses:
    compat32 would turn every such byte into U+FFFD before the parameter is read."""
    raw = next((v for k, v in part.raw_items() if k.lower() == header), None)
    if raw is None or not isinstance(raw, str) or raw.isascii():
        return part
    holder = email.message.Message()
    holder[header] = raw_header_to_text(raw)
    return holder


def _param_text(value: object) -> str:
    """An RFC 2231 (charset, language, value) triple or a plain (maybe RFC 2047) string."""
    if isinstance(value, tuple) and len(value) == 3:
        charset, _language, text = value
        raw = str(text).encode("raw-unicode-escape", errors="replace")
        data = _percent_bytes(raw)
        return decode_bytes(data, str(charset) if charset else None)
    text = email.utils.collapse_rfc2231_value(value)  # type: ignore[arg-type]
    return decode_header_text(raw_header_to_text(text))


def _percent_bytes(raw: bytes) -> bytes:
    return re.sub(rb"%([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), raw)


def _clean_filename(name: str) -> str:
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_NAME.sub("_", name).strip(" .")
    return name[:MAX_FILENAME_CHARS] or "unnamed"


_DEFAULT_EXTENSIONS = {
    "text/plain": "txt",
    "text/html": "html",
    "application/pdf": "pdf",
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/gif": "gif",
    "message/rfc822": "eml",
    "application/pkcs7-signature": "p7s",
    "application/pgp-signature": "asc",
    "application/ms-tnef": "dat",
}


def _default_name(content_type: str) -> str:
    extension = _DEFAULT_EXTENSIONS.get(content_type, "bin")
    return f"part.{extension}"


def _make_attachment(  # noqa: PLR0917 - one call site per kind of part, all fields named
    filename: str,
    content_type: str,
    data: bytes,
    disposition: str,
    content_id: str | None,
    budget: _Budget,
) -> Attachment:
    digest = hashlib.sha256(data).hexdigest()
    kept = budget.take_bytes(len(data))
    return Attachment(
        filename=filename,
        content_type=content_type,
        size=len(data),
        sha256=digest,
        data=data if kept else b"",
        disposition=disposition,
        content_id=content_id,
        truncated=not kept,
    )
