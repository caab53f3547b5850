"""Where text is in a mail: subject, bodies, attachment names, and the text of attachments
(plain text, CSV, HTML, PDF, docx, xlsx, pptx, HWP, HWPX, ZIP archives recursively), read
under size, depth, file-count and time limits.

    extract_locations(parsed, limits) -> list[Location | Unreadable]

:mod:`mailsafe.extract.isolated` runs the same in a child process under memory, CPU and time
limits; :func:`surface_locations` is what is left when that child fails.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

from mailsafe.extract.attachments import Found, attachment_locations
from mailsafe.extract.datauri import data_uri_files
from mailsafe.extract.encoded import base64_texts
from mailsafe.extract.limits import Budget, ExtractLimits
from mailsafe.extract.text import html_to_text, html_unseen_text
from mailsafe.extract.types import UNREADABLE_REASONS, Location, Unreadable
from mailsafe.extract.uu import uuencoded_files

if TYPE_CHECKING:
    from mailsafe.mime import ParsedMail

__all__ = [
    "UNREADABLE_REASONS",
    "ExtractLimits",
    "FileReadings",
    "Found",
    "Location",
    "ReadAttachment",
    "Unreadable",
    "extract_locations",
    "file_places",
    "mail_locations",
    "surface_locations",
]

# Reads one attachment (its name, its bytes) into what it holds.
ReadAttachment = Callable[[str, bytes], list[Found]]
# What each file of a mail held, by its name as read and the SHA-256 of its bytes (hex): a
# later reading of the same file (inbound masking's, D97) takes it from here (D105).
FileReadings = dict[tuple[str, str], list[Found]]


def extract_locations(
    parsed: ParsedMail,
    limits: ExtractLimits | None = None,
    clock: Callable[[], float] = time.monotonic,
    readings: FileReadings | None = None,
) -> list[Found]:
    """Every place in ``parsed`` that holds text, and every attachment that cannot be read;
    what each file held also goes into ``readings``, when given."""
    budget = Budget(limits or ExtractLimits(), clock)
    read: ReadAttachment = partial(attachment_locations, budget=budget)
    if readings is not None:
        read = partial(_recorded, read, readings)
    return mail_locations(parsed, read)


def _recorded(read: ReadAttachment, readings: FileReadings, name: str, data: bytes) -> list[Found]:
    found = read(name, data)
    readings[name, hashlib.sha256(data).hexdigest()] = found
    return found


def surface_locations(parsed: ParsedMail, reason: str, detail: str) -> list[Found]:
    """The subject, bodies and attachment names of ``parsed``, and every attachment as
    ``Unreadable`` for ``reason``: what can be scanned when reading the attachments failed."""

    def unread(name: str, _data: bytes) -> list[Found]:
        return [Unreadable(f"attachment:{name}", reason, detail)]

    return mail_locations(parsed, unread)


def mail_locations(parsed: ParsedMail, read_attachment: ReadAttachment) -> list[Found]:
    """Locations of one mail, each attachment read by ``read_attachment`` (called in the
    order of the attachments, then of forwarded mails'); a forwarded mail's locations are
    prefixed ``forwarded[N].``."""
    found: list[Found] = [Location("subject", parsed.subject)]
    if parsed.text:
        found.append(Location("body.text", parsed.text))
        for name, data in uuencoded_files(parsed.text):
            found.append(Location(f"attachment-name:{name}", name))
            found.extend(read_attachment(name, data))
        found += encoded_locations("body.text", parsed.text)
    if parsed.html:
        shown = html_to_text(parsed.html)
        found.append(Location("body.html", shown))
        found += encoded_locations("body.html", shown)
        unseen = html_unseen_text(parsed.html)
        if unseen:
            found.append(Location("body.html-unseen", unseen))
        embedded = data_uri_files(parsed.html)
        for name, data in embedded.files:
            found.extend(read_attachment(f"body.html/{name}", data))
        found += embedded.refusals("body.html")
    if parsed.outside_parts:
        found.append(Location("body.outside-parts", "\n".join(parsed.outside_parts)))
    found += _header_locations(parsed)
    for index, attachment in enumerate(parsed.attachments, 1):
        name = attachment.filename or f"part{index}"
        found.append(Location(f"attachment-name:{name}", name))
        if attachment.truncated:
            found.append(Unreadable(f"attachment:{name}", "too-big", "cut short while parsing"))
        else:
            found.extend(read_attachment(name, attachment.data))
    for index, forwarded in enumerate(parsed.forwarded, 1):
        inner = mail_locations(forwarded, read_attachment)
        found.extend(replace(item, where=f"forwarded[{index}].{item.where}") for item in inner)
    return found


def encoded_locations(where: str, text: str) -> list[Found]:
    """The text base64-encoded in ``text`` (at ``where``)."""
    return [Location(f"{where}/base64", decoded) for decoded in base64_texts(text)]


def attachments_to_read(parsed: ParsedMail) -> list[tuple[str, bytes]]:
    """The (name, bytes) pairs :func:`mail_locations` hands its reader, in the same order."""
    found = uuencoded_files(parsed.text) if parsed.text else []
    if parsed.html:
        found += [(f"body.html/{n}", data) for n, data in data_uri_files(parsed.html).files]
    for index, attachment in enumerate(parsed.attachments, 1):
        if not attachment.truncated:
            found.append((attachment.filename or f"part{index}", attachment.data))
    for forwarded in parsed.forwarded:
        found.extend(attachments_to_read(forwarded))
    return found


def file_places(parsed: ParsedMail, prefix: str = "") -> list[tuple[str, bytes]]:
    """(place, bytes) of every file :func:`mail_locations` reads, named as it names them
    (``attachment:a.png``, ``attachment:body.html/data-1.png``,
    ``forwarded[1].attachment:b.pdf``), its personal data not yet masked."""
    own = attachments_to_read(replace(parsed, forwarded=()))
    files = [(f"{prefix}attachment:{name}", data) for name, data in own]
    for index, forwarded in enumerate(parsed.forwarded, 1):
        files += file_places(forwarded, f"{prefix}forwarded[{index}].")
    return files


def _header_locations(parsed: ParsedMail) -> list[Found]:
    """Display names of the address headers, and every other header a person or program can
    read (``header:X-Note``): they leave with the mail as much as the body does."""
    found: list[Found] = []
    for name, addresses in (("From", parsed.from_), ("To", parsed.to), ("Cc", parsed.cc),
                            ("Reply-To", parsed.reply_to)):  # fmt: skip
        names = "\n".join(address.display for address in addresses if address.display)
        if names:
            found.append(Location(f"header:{name}", names))
    found += [Location(f"header:{name}", value) for name, value in parsed.other_headers if value]
    return found
