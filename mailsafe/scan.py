"""``scan_message``: parse a mail, read its text everywhere, find personal data, decide.

Pure apart from the clock the extraction limits use: bytes and rules in, a result out.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Final

from mailsafe.extract import ExtractLimits, Found, Location, Unreadable, extract_locations
from mailsafe.extract.unread import unread_parts
from mailsafe.mime import ParsedMail, parse_message
from mailsafe.pii import PII_TYPES, Finding, PiiType, detect, mask_text
from mailsafe.pii.normalize import normalize
from mailsafe.pii.pagebreaks import detect_paged
from mailsafe.policy import Decision, MailFacts, RuleSet, SenderInfo, evaluate
from mailsafe.positions import NO_LAYOUT, Position, TextLayout, position_in

__all__ = [
    "LocatedFinding",
    "ReadMail",
    "ScanResult",
    "envelope_facts",
    "masked_where",
    "read_mail",
    "scan_message",
    "scan_parsed",
]

# Findings listed by name in a one-line summary; the rest are counted.
SUMMARY_FINDINGS = 10

# The mail's own headers: the addresses in them are where the mail goes, not what it carries
# (display names and other headers are still read for every other kind).
HEADER_PLACE: Final = "header:"
# Separators a value may be written with or without: "010-1234-5678" is "01012345678".
_SIGNIFICANT_ONLY: Final = str.maketrans("", "", " -.\t\n")

# An ASCII-armoured PGP message pasted into a body or a text file (RFC 4880 6.2).
PGP_ARMOUR: Final = "-----BEGIN PGP MESSAGE-----"
# Place names whose masked form is remembered: most are the same in every mail.
PLACES_REMEMBERED: Final = 1024
# Finding values whose counting key is remembered (see ``_value_key``).
VALUE_KEYS_REMEMBERED: Final = 4096


@dataclass(frozen=True, init=False)
class LocatedFinding:
    """A finding and the place it was found (``subject``, ``attachment:a.zip/b.xlsx``...),
    with the layout of that place's text: ``position`` says where exactly (part, file, page,
    characters, and for pictures the word boxes)."""

    where: str
    finding: Finding
    layout: TextLayout

    def __init__(self, where: str, finding: Finding, layout: TextLayout = NO_LAYOUT) -> None:
        fields = self.__dict__  # faster than the frozen __init__ (see Finding's)
        fields["where"], fields["finding"], fields["layout"] = where, finding, layout

    @property
    def position(self) -> Position:
        """Where the finding was (made when asked: most findings are only counted)."""
        return position_in(self.where, self.layout, self.finding.start, self.finding.end)


@dataclass(frozen=True)
class ScanResult:
    findings: tuple[LocatedFinding, ...]
    unreadable: tuple[Unreadable, ...]
    decision: Decision

    def counts(self) -> dict[PiiType, int]:
        """Findings per type, every type present (zero when none)."""
        per_type = Counter(located.finding.type for located in self.findings)
        return {kind: per_type[kind] for kind in PII_TYPES}

    def summary(self) -> str:
        """One line for logs and audit records: counts, places and masked values only."""
        line = f"{self.decision.action}: {len(self.findings)} finding(s)"
        if self.findings:
            line += ": " + ", ".join(
                f"{lf.finding.masked} ({lf.finding.type}, {lf.where})"
                for lf in self.findings[:SUMMARY_FINDINGS]
            )
        if len(self.findings) > SUMMARY_FINDINGS:
            line += f" and {len(self.findings) - SUMMARY_FINDINGS} more"
        if self.unreadable:
            line += "; unreadable: " + ", ".join(f"{u.where} ({u.reason})" for u in self.unreadable)
        return line


def scan_message(
    raw: bytes,
    rules: RuleSet,
    sender: SenderInfo,
    *,
    recipients: Sequence[str] = (),
    limits: ExtractLimits | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ScanResult:
    """Scan one raw message (RFC 5322 bytes) and decide under ``rules``.

    ``sender`` is the envelope sender with its department; ``recipients`` the envelope
    recipients (the To and Cc headers are added to them).
    """
    return scan_parsed(
        parse_message(raw), rules, sender, recipients=recipients, limits=limits, clock=clock
    )


def scan_parsed(
    parsed: ParsedMail,
    rules: RuleSet,
    sender: SenderInfo,
    *,
    recipients: Sequence[str] = (),
    limits: ExtractLimits | None = None,
    clock: Callable[[], float] = time.monotonic,
    found: Sequence[Found] | None = None,
) -> ScanResult:
    """Scan a parsed message; ``found``: its locations when they were read elsewhere (by
    :class:`mailsafe.extract.isolated.AttachmentReader`), else they are read here."""
    if found is None:
        found = extract_locations(parsed, limits, clock)
    read = read_mail(parsed, found)
    facts = read.facts(_sender(sender, parsed), _recipients(recipients, parsed))
    return ScanResult(read.findings, read.unreadable, evaluate(rules, facts))


@dataclass(frozen=True)
class ReadMail:
    """What a mail's places hold: their text, the personal data in them, what is unreadable;
    places with personal data in a file name are masked (``masked_where``)."""

    parsed: ParsedMail
    texts: tuple[tuple[str, str], ...]
    findings: tuple[LocatedFinding, ...]
    unreadable: tuple[Unreadable, ...]

    def facts(
        self, sender: SenderInfo, recipients: Sequence[str], authors: Sequence[str] = ()
    ) -> MailFacts:
        """What the rules look at, for this sender and these recipients."""
        return MailFacts(
            sender=sender,
            recipients=tuple(recipients),
            authors=tuple(authors),
            texts=self.texts,
            findings=tuple((lf.where, lf.finding.type) for lf in self.findings),
            finding_keys=tuple(_value_key(lf.finding) for lf in self.findings),
            unreadable=tuple((u.where, u.reason) for u in self.unreadable),
            attachment_count=len(self.parsed.attachments),
            largest_attachment=max((a.size for a in self.parsed.attachments), default=0),
        )


def read_mail(
    parsed: ParsedMail, found: Sequence[Found], detected: dict[str, list[Finding]] | None = None
) -> ReadMail:
    """The places ``found`` in ``parsed`` read for personal data and unreadable parts; the
    detector's findings of each text also go into ``detected``, when given (by the text:
    inbound masking takes them, D105)."""
    texts = [item for item in found if isinstance(item, Location)]
    armoured = [
        Unreadable(item.where, "encrypted", "a PGP-encrypted block")
        for item in found
        if isinstance(item, Location) and PGP_ARMOUR in item.text
    ]
    unreadable = tuple(
        replace(item, where=masked_where(item.where), detail=masked_where(item.detail))
        for item in (*unread_parts(parsed), *found, *armoured)
        if isinstance(item, Unreadable)
    )
    shown = {location.where: masked_where(location.where) for location in texts}
    findings = _located_findings(texts, shown, {} if detected is None else detected)
    return ReadMail(
        parsed, tuple((shown[location.where], location.text) for location in texts), findings,
        unreadable,
    )  # fmt: skip


def envelope_facts(
    parsed: ParsedMail, sender: SenderInfo, recipients: Sequence[str], authors: Sequence[str] = ()
) -> MailFacts:
    """Facts without the mail's text (envelope, headers, attachment list): enough for rules
    whose conditions read nothing else (``mailsafe.inbound_rules.needs_mail_text``)."""
    return ReadMail(parsed, (), (), tuple(unread_parts(parsed))).facts(sender, recipients, authors)


def _located_findings(
    texts: Sequence[Location], shown: dict[str, str], by_text: dict[str, list[Finding]]
) -> tuple[LocatedFinding, ...]:
    """The findings of every place, in order. A text that stands in several places (an HWPX
    file repeating the body, a quoted copy) is read once: ``detect`` is pure, so its
    findings are the same in each place."""
    located: list[LocatedFinding] = []
    for location in texts:
        found = by_text.get(location.text)
        if found is None:
            found = by_text[location.text] = detect_paged(location.text, location.layout.pages)
        where = shown[location.where]
        headers = location.where.startswith(HEADER_PLACE)
        layout = location.layout
        located.extend(
            LocatedFinding(where, finding, layout)
            for finding in found
            if not (headers and finding.type == "email")
        )
    return tuple(located)


def _value_key(finding: Finding) -> str:
    """What tells two findings' values apart however they were written ("010-1234-5678" and
    "01012345678" are one number; addresses ignore case): for counting different values."""
    return _key_of(finding.type, finding.text)


@lru_cache(maxsize=VALUE_KEYS_REMEMBERED)  # a list's bank name, a signature's number: repeated
def _key_of(kind: PiiType, value: str) -> str:
    text = value if value.isascii() else normalize(value)
    return kind + ":" + text.translate(_SIGNIFICANT_ONLY).lower()


@lru_cache(maxsize=PLACES_REMEMBERED)  # "body/text", "header:Subject": the same in every mail
def masked_where(where: str) -> str:
    """``where`` with personal data in file names masked ("a.zip/800101-1******.txt"):
    places are shown in logs and approval pages, so they must not leak what they point at."""
    findings = detect(where)
    return mask_text(where, findings) if findings else where


def _sender(sender: SenderInfo, parsed: ParsedMail) -> SenderInfo:
    if sender.address or not parsed.from_:
        return sender
    return SenderInfo(parsed.from_[0].addr, sender.department)


def _recipients(envelope: Sequence[str], parsed: ParsedMail) -> tuple[str, ...]:
    headers = [address.addr for address in (*parsed.to, *parsed.cc)]
    return tuple(dict.fromkeys([*envelope, *headers]))
