"""Mail the inner agent writes itself, and how it is recognised when it comes back.

The inner agent writes three kinds of mail for people inside: notifications of external mail
(``inner_agent.notify``), reports to the postmaster (``inner_agent.inject``) and approval
notices (``inner_agent.outbound.notice_mail``). Each carries the marker header
``X-Maildiode-Notification: <kind>`` and is sent from one of the bridge's own addresses
(``[notify] from_address`` for the first two, ``[outbound.notice] from_address`` for the
last). None of them is meant for the internet. If the internal server ever routes one to the
outbound intake (a recipient rewritten by the percent hack or a bang path, a forwarding rule,
a redirect), the intake refuses it with :func:`own_mail_finding` and :func:`is_own_sender`,
so no loop can form and no notification leaves by that road (issue 15.1).

Only the mail's own header block counts: a notification forwarded *as an attachment* is
content like any other, and is scanned as such.

Pure: bytes and strings in, a finding out.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses

__all__ = [
    "EARLIER_MARKERS",
    "MARKER_HEADER",
    "MAX_HEADER_BYTES",
    "OwnMailKind",
    "is_own_sender",
    "own_mail_finding",
]

# The marker header every mail of ours carries; its value names the kind.
MARKER_HEADER = "X-Maildiode-Notification"
# Headers only our notifications ever had, before the marker existed (notifications in
# mailboxes today, redirected tomorrow).
EARLIER_MARKERS = ("X-Maildiode-Mail-Id",)
# Header bytes read for the check: ours are a few hundred bytes at the top of the mail, and
# internal mail servers cap a header block far below this.
MAX_HEADER_BYTES = 256 << 10
# Headers naming the author whose address is checked against ours.
_AUTHOR_HEADERS = ("From", "Sender")


class OwnMailKind(enum.StrEnum):
    """Values of the marker header."""

    INBOUND = "inbound"  # the notification of an external mail
    POSTMASTER_REPORT = "postmaster-report"  # a notification the internal server refused
    APPROVAL = "approval"  # approval requests, reminders and decisions


def is_own_sender(address: str, own: Iterable[str]) -> bool:
    """Whether ``address`` (an envelope sender) is one of the bridge's own addresses."""
    wanted = address.strip().lower()
    return bool(wanted) and wanted in {a.lower() for a in own}


def own_mail_finding(message: bytes, own: Iterable[str]) -> str | None:
    """Why ``message`` is mail of ours (its marker header, or an author address of ours), or
    None. Reads only the top-level header block, and at most MAX_HEADER_BYTES of it."""
    headers = BytesHeaderParser(policy=compat32).parsebytes(_header_block(message))
    for name in (MARKER_HEADER, *EARLIER_MARKERS):
        if headers.get(name) is not None:
            return f"the {name} header marks a maildiode notification"
    ours = {a.lower() for a in own}
    for name in _AUTHOR_HEADERS:
        for _display, address in getaddresses(headers.get_all(name) or []):
            if address.lower() in ours:
                return f"{name}: is the bridge's own address {address.lower()}"
    return None


def _header_block(message: bytes) -> bytes:
    head = message[:MAX_HEADER_BYTES]
    for separator in (b"\r\n\r\n", b"\n\n"):
        end = head.find(separator)
        if end >= 0:
            return head[: end + len(separator)]
    return head
