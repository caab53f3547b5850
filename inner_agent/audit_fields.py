"""What the audit log records of an inbound mail, so an auditor can find it: the feature
table's "mail search" fields, cleaned, cut and masked (the mail itself is never logged)."""

from __future__ import annotations

from typing import Any

from inner_agent.notify import clean_header_text, shown_header_text
from mailsafe.payload import Manifest
from mailsafe.pii import detect
from mailsafe.pii.mask import mask_text

__all__ = ["AUDIT_FIELD_CHARS", "AUDIT_MAX_WITHHELD", "searchable_fields"]

# Longest value of a searchable audit field (subject, sender...); the mail itself is not logged.
AUDIT_FIELD_CHARS = 300
# Withheld attachments listed per mail in the audit event (the count is always exact).
AUDIT_MAX_WITHHELD = 50


def searchable_fields(manifest: Manifest, recipients: tuple[str, ...]) -> dict[str, Any]:
    """What an auditor searches the log by (the feature table's "mail search": sender,
    recipient, subject, date, sender IP, result, attachments), cleaned of control characters,
    invisible characters shown as ``⟨U+XXXX⟩`` as in the notification (a bidi override in a
    file name must not reorder it on a console page or in a spreadsheet) and cut to a sane
    length: every value came from the internet through the outer agent. Personal data in the
    subject and attachment names is masked, as everywhere in the log."""

    def clean(untrusted: str) -> str:
        return shown_header_text(untrusted, AUDIT_FIELD_CHARS)

    def masked(untrusted: str) -> str:
        """Free text keeps no personal data in the log (a registration number in a subject);
        masked before the markers are put in, so a number is found as the reader sees it."""
        text = clean_header_text(untrusted, AUDIT_FIELD_CHARS)
        return shown_header_text(mask_text(text, detect(text)), AUDIT_FIELD_CHARS)

    headers, envelope = manifest.headers, manifest.envelope
    sources = (page.source for page in manifest.pages if page.source.startswith("attachment:"))
    drawn = list(dict.fromkeys(source.removeprefix("attachment:") for source in sources))
    return {
        "from": clean(headers.from_),
        "subject": masked(headers.subject),
        "message_id": clean(headers.message_id),
        "date": clean(headers.date),
        "mail_from": clean(envelope.mail_from),
        "client": clean(envelope.client_addr),
        "rcpts": list(recipients),
        "auth": clean(manifest.auth.summary),
        "withheld": [
            {
                "name": masked(w.filename),
                "type": clean(w.content_type),
                "size": w.size,
                "reason": clean(w.reason),
            }
            for w in manifest.withheld[:AUDIT_MAX_WITHHELD]
        ],
        "withheld_count": len(manifest.withheld),
        # What was drawn as pictures (the mail index searches attachment names and counts).
        "attachments": [masked(name) for name in drawn[:AUDIT_MAX_WITHHELD]],
        "attachment_count": len(drawn) + len(manifest.withheld),
    }
