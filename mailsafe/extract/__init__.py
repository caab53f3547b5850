"""Where text is in a mail: subject, bodies, attachment names, and the text of attachments
(plain text, CSV, HTML, PDF, docx, xlsx, pptx, HWP, HWPX, ZIP archives recursively), read
under size, depth, file-count and time limits.

    extract_locations(parsed, limits) -> list[Location | Unreadable]
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from mailsafe.extract.attachments import Found, attachment_locations
from mailsafe.extract.limits import Budget, ExtractLimits
from mailsafe.extract.text import html_to_text
from mailsafe.extract.types import UNREADABLE_REASONS, Location, Unreadable

if TYPE_CHECKING:
    from mailsafe.mime import ParsedMail

__all__ = [
    "UNREADABLE_REASONS",
    "ExtractLimits",
    "Location",
    "Unreadable",
    "extract_locations",
]


def extract_locations(
    parsed: ParsedMail,
    limits: ExtractLimits | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> list[Found]:
    """Every place in ``parsed`` that holds text, and every attachment that cannot be read."""
    budget = Budget(limits or ExtractLimits(), clock)
    return _mail_locations(parsed, budget)


def _mail_locations(parsed: ParsedMail, budget: Budget) -> list[Found]:
    """Locations of one mail; a forwarded mail's are prefixed ``forwarded[N].``."""
    found: list[Found] = [Location("subject", parsed.subject)]
    if parsed.text:
        found.append(Location("body.text", parsed.text))
    if parsed.html:
        found.append(Location("body.html", html_to_text(parsed.html)))
    for index, attachment in enumerate(parsed.attachments, 1):
        name = attachment.filename or f"part{index}"
        found.append(Location(f"attachment-name:{name}", name))
        if attachment.truncated:
            found.append(Unreadable(f"attachment:{name}", "too-big", "cut short while parsing"))
        else:
            found.extend(attachment_locations(name, attachment.data, budget))
    for index, forwarded in enumerate(parsed.forwarded, 1):
        inner = _mail_locations(forwarded, budget)
        found.extend(replace(item, where=f"forwarded[{index}].{item.where}") for item in inner)
    return found
