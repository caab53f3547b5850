"""What the parser could not read of a mail, as unreadable findings.

For rendering inbound mail, showing what fits and saying so is right; for a data-loss scan,
content not read is a finding (D19): nesting an attachment one level past the parser's depth
limit, or encrypting the mail for its recipient, would otherwise take data past the scan.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from mailsafe.extract.types import Unreadable
from mailsafe.notes import note_code

if TYPE_CHECKING:
    from mailsafe.mime import ParsedMail

__all__ = ["UNREAD_PARTS_REASONS", "UNREAD_SECURITY_REASONS", "unread_parts"]

# Parser notes that mean part of the mail was not read (cut, too deep, unparsable, dropped),
# and the unreadable reason each becomes. A mail the parser could not read in full is not
# clean: nesting an attachment one level past the parser's depth limit would otherwise take
# it past the scan. (A bad address list hides no content; the envelope names the recipients.)
UNREAD_PARTS_REASONS: Final = {
    "too_many_parts": "too-many-files",
    "decoded_cut": "too-big",
    "raw_cut": "too-big",
    "text_cut": "too-big",
    "html_cut": "too-big",
    "header_block_cut": "too-big",
    "mime_too_deep": "too-deep",
    "mime_too_deep_to_walk": "too-deep",
    "mime_unparsable": "corrupt",
    "mime_unwalkable": "corrupt",
    "bad_header_name": "corrupt",
    "bad_transfer_encoding": "corrupt",
    "outlook_msg": "unsupported-format",
    "message_partial": "unsupported-format",
}
# Security wrappers whose content the scan cannot read, and the unreadable reason each is: mail
# encrypted for its recipient, or wrapped in an opaque signature or Outlook's TNEF.
UNREAD_SECURITY_REASONS: Final = {
    "smime-encrypted": "encrypted",
    "pgp-encrypted": "encrypted",
    "smime-signed-opaque": "unsupported-format",
    "tnef": "unsupported-format",
}


def unread_parts(parsed: ParsedMail, where: str = "mail") -> list[Unreadable]:
    """What the parser left unread in ``parsed`` and the mails forwarded in it."""
    found = [
        Unreadable(where, UNREAD_PARTS_REASONS[code], defect)
        for defect in parsed.defects
        if (code := note_code(defect)) in UNREAD_PARTS_REASONS
    ]
    found += [
        Unreadable(where, UNREAD_SECURITY_REASONS[label], f"{label}: its content cannot be read")
        for label in parsed.security
        if label in UNREAD_SECURITY_REASONS
    ]
    for index, forwarded in enumerate(parsed.forwarded, 1):
        found += unread_parts(forwarded, f"forwarded[{index}]")
    return found
