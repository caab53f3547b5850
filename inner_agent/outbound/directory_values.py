"""What a value of the directory may hold, whether an HR file or the LDAP sync brings it. Pure.

A name, a department, a rank or a group is a label people read and pick: on the console, in an
approval request's text, in a rule's scope list (one name a line) and in log lines. A value
that holds a line break would become two names in a scope list or two log lines; a bidi
control would reorder what an approver reads; a zero-width space makes a look-alike of another
department; a value of a megabyte (an XLSX cell or an AD
attribute can hold one) is no label. An address is the key of a person and the recipient of
notices: one ``@``, a dot in its domain, and nothing a mail header or a list reads as
punctuation (``,``, ``<``, ``;``, quotes) or that cannot be seen.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from mailsafe.lookalike import reveal_invisible

__all__ = [
    "MAX_ADDRESS_CHARS",
    "MAX_LABEL_CHARS",
    "address_problem",
    "label_problem",
    "shown_in_note",
]

# A group name, a rank, a name or a department is a label, not a document.
MAX_LABEL_CHARS: Final = 200
# RFC 5321 §4.5.3.1.3: a path is at most 256 octets with its angle brackets.
MAX_ADDRESS_CHARS: Final = 254
_BIDI_CONTROLS: Final = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                                  "\u2066\u2067\u2068\u2069")  # fmt: skip
# Characters a header or a list of addresses reads as structure (RFC 5322 specials) or space.
_ADDRESS_SPECIALS: Final = re.compile(r'[\s<>()\[\],;:"\\]')


def label_problem(untrusted: str) -> str | None:
    """Why ``untrusted`` cannot be a label, or None: too long, a control character or line
    break, a bidi control, or another invisible character."""
    if len(untrusted) > MAX_LABEL_CHARS:
        return f"longer than {MAX_LABEL_CHARS} characters ({len(untrusted)})"
    for char in untrusted:
        if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            return f"holds a control character or line break (U+{ord(char):04X})"
        if char in _BIDI_CONTROLS:
            return f"holds a bidi control (U+{ord(char):04X}) that reorders what is read"
    if reveal_invisible(untrusted) != untrusted:  # "영업\u200b부" reads as 영업부, is another
        return "holds an invisible character (a look-alike of another name)"
    return None


def address_problem(untrusted: str) -> str | None:
    """Why ``untrusted`` cannot be a person's address, or None."""
    if len(untrusted) > MAX_ADDRESS_CHARS:
        return f"longer than {MAX_ADDRESS_CHARS} characters"
    local, at, domain = untrusted.partition("@")
    if not (at and local and "." in domain.strip(".")) or "@" in domain:
        return "is not a mail address"
    if _ADDRESS_SPECIALS.search(untrusted):
        return "holds a space or a character mail headers read as punctuation"
    if any(unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") for char in untrusted):
        return "holds a control or invisible character"
    return None


def shown_in_note(untrusted: str, limit: int = 200) -> str:
    """A value quoted in a note or a log line: one line, cut, invisible characters visible."""
    return repr(untrusted[:limit])[1:-1]
