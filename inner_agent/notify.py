"""The notification mail: one (or, when too large, a few) per external mail.

Pure: checked images, manifest and options in, RFC 5322 bytes out. Every value that came from
the internet (through the outer agent, which may be compromised) is treated as data:

* header values we write are built from cleaned strings (control characters, CR, LF and Unicode
  line separators become spaces) by our own small encoder (``_encode_from``, ``_encode_to``,
  ``_encode_subject``), which refuses any value that still holds a line break, writes non-ASCII
  text and anything that looks like an encoded word as RFC 2047 encoded words (so a reader sees
  the text literally, never decoded a second time), and folds lines at 78 characters wherever a
  space or an encoded word allows (never past 998), so nothing from the original can add a
  header;
* everything shown in the HTML part goes through ``html.escape``; nothing is put in a URL
  except our own ``cid:`` names;
* threading headers of the original (Message-ID, In-Reply-To, References) are shown as data in
  the header block, never written as headers of the notification.
"""

from __future__ import annotations

import html
import re
import secrets
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.charset import Charset
from email.utils import formataddr, formatdate, parseaddr
from itertools import chain, repeat

import pybase64

from inner_agent.ownmail import MARKER_HEADER, OwnMailKind
from mailsafe.defang import defang_text
from mailsafe.lookalike import claimed_domain, reveal_bidi_controls, reveal_invisible
from mailsafe.notes import reason_words, translate
from mailsafe.payload import AuthResults, Manifest

__all__ = [
    "DEFAULT_MAX_NOTIFICATION_BYTES",
    "MAX_ADDRESS_CHARS",
    "CheckedImage",
    "CheckedMail",
    "NotifyOptions",
    "auth_verdict",
    "build_notifications",
    "claims_our_domain",
    "clean_header_text",
    "shown_header_text",
    "split_from",
    "valid_mail_id",
]

# 10 MiB: internal servers commonly refuse larger mail (Exchange's default, many Postfix sites);
# notifications are kept under it by scaling images down or splitting.
DEFAULT_MAX_NOTIFICATION_BYTES = 10 << 20
# RFC 5321 §4.5.3.1: a local part of 64 octets, "@", a domain of 255: longer is no address.
MAX_ADDRESS_CHARS = 320
# Longest Subject we write (characters after cleaning); RFC 5322 allows long folded lines, but
# mail clients truncate far sooner and a huge subject is only a nuisance.
MAX_SUBJECT_CHARS = 400
# Any one header-block value shown in the body (addresses lists can be long; cut the rest).
MAX_FIELD_CHARS = 2000
# Room kept for headers, HTML and MIME boundaries when budgeting images against the size limit.
OVERHEAD_BYTES = 64 << 10
# Base64 grows data by 4/3, plus CRLF every 76 characters.
BASE64_GROWTH = 4 / 3 * 78 / 76
# Scale-down attempts for one image that alone exceeds the budget, halving the area each time.
MAX_SHRINK_STEPS = 4
# Never split one mail into more notifications than this; further pages are listed as omitted.
MAX_PARTS = 10

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f\x85\u2028\u2029]")
_HEADER_UNSAFE = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")
_ANGLE_ADDR = re.compile(r"<([^<>]*)>\s*$")
_MAIL_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True)
class CheckedImage:
    """An image decoded again on this side: its bytes, type and true dimensions."""

    data: bytes
    media_type: str  # image/png or image/jpeg
    width: int
    height: int


@dataclass(frozen=True)
class CheckedMail:
    """A package that passed every check of the inner agent."""

    manifest: Manifest
    images: tuple[CheckedImage, ...]
    text: str | None


@dataclass(frozen=True)
class NotifyOptions:
    language: str = "ko"
    subject_prefix: str = "[외부메일]"
    from_address: str = "maildiode@corp.example"
    our_domains: tuple[str, ...] = ()
    max_message_bytes: int = DEFAULT_MAX_NOTIFICATION_BYTES
    carry_text: bool = True


Shrink = Callable[[CheckedImage], CheckedImage]
"""Returns the image at half its area (the caller re-encodes with Pillow)."""


# --------------------------------------------------------------------------- words

_WORDS: dict[str, dict[str, str]] = {
    "ko": {
        "banner": "외부에서 온 메일입니다. 안전을 위해 본문과 첨부 문서를 "
        "그림으로 바꾸어 보여 드립니다. 링크와 스크립트는 동작하지 않습니다.",
        "spoof": "주의: 보낸 사람이 우리 회사 도메인({domain})을 사칭하고 있을 수 있습니다. "
        "이 메일은 외부에서 들어왔습니다.",
        "from": "보낸 사람",
        "to": "받는 사람",
        "cc": "참조",
        "date": "날짜",
        "subject": "제목",
        "auth": "발신 인증 (원문)",
        "auth_people": "발신 도메인 인증",
        "auth_pass": "확인됨 — 보낸 사람 주소의 도메인이 이 메일을 보냈다고 확인되었습니다",
        "auth_fail": "실패 — 사칭 가능성: 보낸 사람 주소의 도메인이 보낸 메일이라는 확인에 "
        "실패했습니다",
        "auth_unknown": "확인할 수 없음 — 보낸 도메인이 인증 정보를 내놓지 않았거나 확인 중 "
        "오류가 났습니다",
        "auth_not_checked": "확인하지 않음",
        "envelope": "봉투 발신자",
        "envelope_differs": "{envelope} — 보낸 사람(From)의 도메인 {author}과 다릅니다. 뉴스레터 "
        "발송 서비스나 전달에서는 흔하지만, 사칭할 때도 이렇게 됩니다",
        "threading": "원본 메시지 ID",
        "withheld": "전달되지 않은 첨부 파일",
        "name": "이름",
        "type": "형식",
        "size": "크기",
        "reason": "사유",
        "not_displayable": "이 메일은 안전하게 표시할 수 없어 그림으로 바꾸지 못했습니다. "
        "사유: {reason}",
        "scaled": "메일 크기 제한 때문에 그림을 축소했습니다.",
        "split": "메일 크기 제한 때문에 {total}개의 알림으로 나누어 보냈습니다. "
        "이 알림은 {part}번째입니다.",
        "omitted": "크기 제한 때문에 {count}개의 페이지를 싣지 못했습니다.",
        "notes": "참고",
        "text": "본문 텍스트",
        "no_auth": "확인 안 됨",
        "page": "페이지",
        "spoof_subject": "[사칭 의심]",
        # receive filters (issue 17): what the inbound rules made of the mail
        "filter_block": "{sender}님이 보낸 메일이 {rule} 따라 차단되어 전달되지 않았습니다. "
        "보낸 사람에게는 알리지 않았습니다.",
        "filter_hold": "이 메일은 {rule} 따라 보류되어 받는 사람({rcpts})에게 아직 전달되지 "
        "않았습니다. 아래는 개인정보를 가린 미리보기입니다. 전달(release) 또는 폐기(drop)는 "
        "관리자가 'maildiode inbound decide {mail_id} release' 또는 '... drop'으로 결정합니다"
        "(콘솔 화면은 준비 중입니다). {until}까지 결정이 없으면 폐기됩니다.",
        "filter_released": "이 메일은 {rule} 따라 보류되었다가 {by}님이 승인하여 전달되었습니다.",
        "filter_expired": "{sender}님이 보낸 메일이 {rule} 따라 보류되었으나 기한까지 승인되지 "
        "않아 폐기되었습니다.",
        "filter_monitor": "이 메일은 {rule} 따라 기록됩니다(모니터링).",
        "filter_masked": "가린 개인정보({types})는 {rule}이 정한 것입니다.",
        "rule": "수신 규칙 '{rule}'에",
        "default_rule": "기본 수신 정책에",
        "rule_name": "수신 규칙 '{rule}'",
        "default_rule_name": "기본 수신 정책",
        "subject_block": "[차단]",
        "subject_hold": "[수신 승인 요청]",
        "subject_expired": "[보류 만료]",
        "pii_rrn": "주민등록번호",
        "pii_foreigner_id": "외국인등록번호",
        "pii_driver_license": "운전면허번호",
        "pii_passport": "여권번호",
        "pii_credit_card": "카드번호",
        "pii_bank_account": "계좌번호",
    },
    "en": {
        "banner": "This is external mail. For your safety its body and attachments are shown as "
        "images; links and scripts do not work.",
        "spoof": "Warning: the sender may be impersonating our domain ({domain}). "
        "This mail came from outside.",
        "from": "From",
        "to": "To",
        "cc": "Cc",
        "date": "Date",
        "subject": "Subject",
        "auth": "Sender authentication (raw)",
        "auth_people": "Sender domain check",
        "auth_pass": "confirmed — the domain in the sender's address sent this mail",
        "auth_fail": "failed — possible impersonation: this mail could not be confirmed as sent "
        "by the domain in the sender's address",
        "auth_unknown": "could not be confirmed — the sender's domain publishes no "
        "authentication, or the check failed",
        "auth_not_checked": "not checked",
        "envelope": "Envelope sender",
        "envelope_differs": "{envelope} — a different domain from the sender's (From) {author}. "
        "Common for newsletter services and forwarding, but also what impersonation looks like",
        "threading": "Original message id",
        "withheld": "Attachments not carried",
        "name": "Name",
        "type": "Type",
        "size": "Size",
        "reason": "Reason",
        "not_displayable": "This mail could not be shown safely as images. Reason: {reason}",
        "scaled": "Images were scaled down to fit the mail size limit.",
        "split": "Because of the mail size limit this mail was split into {total} notifications; "
        "this is part {part}.",
        "omitted": "{count} page(s) could not be included because of the size limit.",
        "notes": "Notes",
        "text": "Text of the message",
        "no_auth": "not checked",
        "page": "page",
        "spoof_subject": "[possible spoofing]",
        "filter_block": "A mail from {sender} was blocked {rule} and not delivered. The sender "
        "was not told.",
        "filter_hold": "This mail was held {rule} and has not reached its recipients ({rcpts}) "
        "yet. Below is a preview with personal data masked. An administrator releases or drops "
        "it with 'maildiode inbound decide {mail_id} release' or '... drop' (the console page "
        "is coming). Undecided by {until}, it is dropped.",
        "filter_released": "This mail was held {rule} and delivered when {by} approved it.",
        "filter_expired": "A mail from {sender} was held {rule} and dropped: nobody approved it "
        "in time.",
        "filter_monitor": "This mail is recorded {rule} (monitored).",
        "filter_masked": "The personal data masked ({types}) was chosen by {rule}.",
        "rule": "by the inbound rule '{rule}'",
        "default_rule": "by the default inbound policy",
        "rule_name": "the inbound rule '{rule}'",
        "default_rule_name": "the default inbound policy",
        "subject_block": "[blocked]",
        "subject_hold": "[approval needed]",
        "subject_expired": "[hold expired]",
        "pii_rrn": "resident registration numbers",
        "pii_foreigner_id": "foreigner registration numbers",
        "pii_driver_license": "driver's licence numbers",
        "pii_passport": "passport numbers",
        "pii_credit_card": "card numbers",
        "pii_bank_account": "bank accounts",
    },
}


# --------------------------------------------------------------------------- cleaning


def clean_header_text(untrusted: str, limit: int = MAX_FIELD_CHARS) -> str:
    """One line of text: every control character and line separator becomes a space."""
    return " ".join(_HEADER_UNSAFE.sub(" ", untrusted[: limit * 2]).split())[:limit]


def shown_header_text(untrusted: str, limit: int = MAX_FIELD_CHARS) -> str:
    """One line of text as the employee sees it: cleaned, every invisible character (bidi
    controls, zero-width and other default-ignorable characters) shown as ``⟨U+XXXX⟩``.

    Every value from the internet that is stored for people to read later (the audit log the
    console shows and exports, held mail, rule notices) is kept in this form, so a page or a
    spreadsheet shows ``invoice⟨U+202E⟩fdp.exe`` where the notification does, never the
    reordered ``invoiceexe.pdf``."""
    return clean_header_text(reveal_invisible(untrusted[: limit * 2]), limit)


def _clean_body_text(untrusted: str) -> str:
    """Multi-line text for the text/plain part: keep newlines and tabs, drop other controls,
    show bidi controls as markers (D22 in decisions.md: other invisible characters are
    common in pasted text and harmless there), defang what a client would make a link of."""
    text = _CONTROL.sub("", untrusted.replace("\r\n", "\n").replace("\r", "\n"))
    return defang_text(reveal_bidi_controls(text))


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().lower().rstrip(".")


def split_from(untrusted_from: str) -> tuple[str, str]:
    """(display, address) of a From display string; the last ``<...>`` wins over parsing."""
    text = clean_header_text(untrusted_from)
    match = _ANGLE_ADDR.search(text)
    if match:
        return text[: match.start()].strip().strip('"').strip(), match.group(1).strip()
    return parseaddr(text)


def claims_our_domain(manifest: Manifest, our_domains: Sequence[str]) -> str | None:
    """The first of our domains the external sender claims, or None.

    Checked, as a reader may see them (``mailsafe.lookalike``: invisible characters removed,
    look-alike letters folded, bidi reordering applied): the From display name alone (a client
    lays it out on its own), the whole From field, its address and the envelope sender; in each,
    every address-like run (the "CEO ceo@corp.example <x@elsewhere>" trick) and the domain after
    the last ``@`` (``ceo@corp.example@evil.example`` shows ours first).
    """
    display, from_addr = split_from(manifest.headers.from_)
    candidates = (display, clean_header_text(manifest.headers.from_), from_addr,
                  clean_header_text(manifest.envelope.mail_from))  # fmt: skip
    for candidate in candidates:
        claimed = claimed_domain(candidate, our_domains)
        if claimed:
            return claimed.lower()
    return None


def _valid_address(untrusted: str) -> str | None:
    text = clean_header_text(untrusted, MAX_ADDRESS_CHARS)
    if not text.isascii():
        return None  # an internationalised address cannot be written without SMTPUTF8
    if "=?" in text:
        return None  # a reader may decode it as an encoded word and show another address
    if text.count("@") != 1:
        return None  # "ceo@corp.example"@evil.example would show our domain first
    local, at, domain = text.rpartition("@")
    if (
        not (at and local and "." in domain)
        or " " in text
        or any(c in text for c in '<>()[],;:"\\')
    ):
        return None
    return text


# --------------------------------------------------------------------------- building


def build_notifications(
    mail: CheckedMail,
    options: NotifyOptions,
    *,
    shrink: Shrink,
    now: float,
    to: Sequence[str] = (),
) -> list[bytes]:
    """The notification(s) for one mail, each under ``options.max_message_bytes``; ``to``:
    whom its To header names when not the mail's recipients (a held mail's approvers)."""
    words = _WORDS.get(options.language, _WORDS["ko"])
    budget = max(options.max_message_bytes - OVERHEAD_BYTES - _text_bytes(mail), 16 << 10)
    groups, scaled, omitted = _fit_images(mail.images, budget, shrink)
    total = len(groups)
    shown = _Shown(
        spoofed=claims_our_domain(mail.manifest, options.our_domains),
        header_rows=_header_rows(mail.manifest, words),
        withheld=_withheld_rows(mail.manifest, options.language),
    )
    return [
        _compose(mail, options, words, images, shown, part=i + 1, total=total, scaled=scaled,
                 omitted=omitted if i == total - 1 else 0, now=now, to=to)
        for i, images in enumerate(groups)
    ]  # fmt: skip


@dataclass(frozen=True)
class _Shown:
    """What every part of the notification shows of the mail, cleaned once per mail (the
    text and HTML parts and each split part all show the same header rows)."""

    spoofed: str | None  # the one of our domains the sender claims
    header_rows: list[tuple[str, str]]
    withheld: list[tuple[str, str, str, str]]


def _text_bytes(mail: CheckedMail) -> int:
    return 2 * len((mail.text or "").encode("utf-8"))  # text/plain part plus its HTML share


def _encoded_size(image: CheckedImage) -> int:
    return int(len(image.data) * BASE64_GROWTH) + 256


def _fit_images(
    images: Sequence[CheckedImage], budget: int, shrink: Shrink
) -> tuple[list[list[CheckedImage]], bool, int]:
    """Groups of images, each group under ``budget``; (groups, scaled down?, pages omitted)."""
    scaled = False
    if sum(_encoded_size(i) for i in images) > budget:
        images = [shrink(i) for i in images]  # first try: everything at half the area
        scaled = True
    fitted: list[CheckedImage] = []
    omitted = 0
    for original in images:
        image, steps = original, 0
        while _encoded_size(image) > budget and steps < MAX_SHRINK_STEPS:
            image, steps, scaled = shrink(image), steps + 1, True
        if _encoded_size(image) > budget:
            omitted += 1
            continue
        fitted.append(image)
    groups: list[list[CheckedImage]] = [[]]
    used = 0
    for image in fitted:
        size = _encoded_size(image)
        if groups[-1] and used + size > budget:
            if len(groups) == MAX_PARTS:
                omitted += 1
                continue
            groups.append([])
            used = 0
        groups[-1].append(image)
        used += size
    return groups, scaled, omitted


def _compose(
    mail: CheckedMail,
    options: NotifyOptions,
    words: dict[str, str],
    images: list[CheckedImage],
    shown: _Shown,
    *,
    part: int,
    total: int,
    scaled: bool,
    omitted: int,
    now: float,
    to: Sequence[str] = (),
) -> bytes:
    """multipart/alternative: text/plain, and multipart/related of text/html and the pages.

    Only the header block carries text from the internet; ``_header_block`` encodes and folds
    it. The MIME skeleton below it is ours alone: fixed content types, cids built from a
    checked mail id, every body base64, and boundaries with ``_`` (not in the base64 alphabet),
    so no body can contain a boundary. Building the parts as ``EmailMessage`` objects cost about
    three times as much CPU as the whole rest of the notification.
    """
    manifest = mail.manifest
    spoofed = shown.spoofed
    notes = _notes(
        manifest, words, options.language, part=part, total=total, scaled=scaled, omitted=omitted
    )
    outer, related = (f"=_maildiode_{secrets.token_hex(12)}_{n}" for n in "ar")
    cids = [f"page{part}-{index}.{manifest.mail_id}@maildiode" for index in range(len(images))]
    text = _text_part(mail, options, words, shown, notes, first=part == 1)
    html_body = _html_part(words, shown, notes, cids, first=part == 1)
    headers = _header_block(
        manifest, options=options, words=words, spoofed=spoofed, part=part, total=total, now=now,
        to=to,
    )  # fmt: skip
    chunks = [
        headers,
        b"MIME-Version: 1.0\r\n",
        f'Content-Type: multipart/alternative;\r\n boundary="{outer}"\r\n\r\n'.encode(),
        f"--{outer}\r\n".encode(),
        _TEXT_HEADERS.format(subtype="plain").encode(),
        _base64_lines(text.encode("utf-8")),
        f"\r\n--{outer}\r\n".encode(),
        f'Content-Type: multipart/related;\r\n boundary="{related}"\r\n\r\n'.encode(),
        f"--{related}\r\n".encode(),
        _TEXT_HEADERS.format(subtype="html").encode(),
        _base64_lines(html_body.encode("utf-8")),
    ]
    for image, cid in zip(images, cids, strict=True):
        subtype = image.media_type.split("/")[1]
        name = f"page-{cid.split('.')[0]}.{subtype}"
        chunks.append(f"\r\n--{related}\r\n".encode())
        chunks.append(_IMAGE_HEADERS.format(type=image.media_type, cid=cid, name=name).encode())
        chunks.append(_base64_lines(image.data))
    chunks.append(f"\r\n--{related}--\r\n\r\n--{outer}--\r\n".encode())
    return b"".join(chunks)


_TEXT_HEADERS = (
    'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
)
_IMAGE_HEADERS = (
    "Content-Type: {type}\r\nContent-Transfer-Encoding: base64\r\n"
    'Content-Disposition: inline; filename="{name}"\r\nContent-ID: <{cid}>\r\n\r\n'
)


# Base64 lines of a MIME body: 76 characters, CRLF after each (RFC 2045 6.8), cut from one
# encoded string 64 lines at a time by struct in C. pybase64's encodebytes makes the lines
# itself but took 0.24 ms for a 95 kB page (its b64encode: 1.3 us) and the LF -> CRLF copy
# 0.1 ms more; this takes about 0.07 ms for the same bytes.
BASE64_LINE = 76
_BASE64_BLOCK = struct.Struct(f"{BASE64_LINE}s" * 64)


def _base64_lines(data: bytes) -> bytes:
    """Base64 in 76-character lines ending in CRLF, as ``email.policy.SMTP`` writes it."""
    encoded = pybase64.b64encode(data)
    whole = len(encoded) - len(encoded) % _BASE64_BLOCK.size
    blocks = _BASE64_BLOCK.iter_unpack(memoryview(encoded)[:whole])
    lines = list(chain.from_iterable(blocks))
    lines += [encoded[i : i + BASE64_LINE] for i in range(whole, len(encoded), BASE64_LINE)]
    lines.append(b"")  # the last line's CRLF
    return b"\r\n".join(lines) if encoded else b""


def _header_block(
    manifest: Manifest,
    *,
    options: NotifyOptions,
    words: dict[str, str],
    spoofed: str | None,
    part: int,
    total: int,
    now: float,
    to: Sequence[str] = (),
) -> bytes:
    """The notification's own headers: From, To and Subject (which carry internet text) through
    the encoder below, the rest ASCII of ours."""
    display, local, domain = _from_header(manifest, options, words, spoofed)
    recipients = [a for a in (_valid_address(r) for r in (to or manifest.envelope.rcpt_to)) if a]
    subject = _subject(
        manifest, options=options, words=words, spoofed=spoofed, part=part, total=total
    )
    own_domain = _domain_of(options.from_address) or "maildiode.invalid"
    return (
        _encode_from(display, local, domain)
        + _encode_to(recipients or [options.from_address])
        + _encode_subject(subject)
        + f"Date: {formatdate(now, localtime=False)}\r\n"
        f"Message-ID: <{manifest.mail_id}.{part}@{own_domain}>\r\n"
        "Auto-Submitted: auto-generated\r\n"
        f"{MARKER_HEADER}: {OwnMailKind.INBOUND}\r\n"
        f"X-Maildiode-Mail-Id: {manifest.mail_id}\r\n"
        f"X-Maildiode-Part: {part}/{total}\r\n"
    ).encode("ascii")  # every encoder writes ASCII only; anything else is a bug, so fail loudly


def _from_header(
    manifest: Manifest, options: NotifyOptions, words: dict[str, str], spoofed: str | None
) -> tuple[str, str, str]:
    """(display name, local part, domain) for our From header."""
    display, untrusted_addr = split_from(manifest.headers.from_)
    display = shown_header_text(display, 200)
    address = _valid_address(untrusted_addr)
    if spoofed or address is None:
        untrusted_addr = shown_header_text(untrusted_addr, 320)
        shown = f"{display} ({untrusted_addr})" if display else untrusted_addr
        prefix = words["spoof_subject"] + " " if spoofed else ""
        local, _, domain = options.from_address.partition("@")
        return clean_header_text(prefix + shown, 200), local, domain
    their_local, _, their_domain = address.rpartition("@")
    return display, their_local, their_domain


# --------------------------------------------------------------------------- header encoding

# RFC 5322 §2.1.1: a line SHOULD be at most 78 characters and MUST be at most 998.
FOLD_AT = 78
MAX_LINE = 998
# RFC 2047 §2: an encoded word is at most 75 characters.
MAX_ENCODED_WORD = 75
_UTF8 = Charset("utf-8")
# Characters that stop a local part being a dot-atom (RFC 5322 §3.2.3); quoted as Address did.
_LOCAL_PART_QUOTE = frozenset('()<>@,:;\\"[] ')


def _refuse_line_breaks(*values: str) -> None:
    """ValueError if any value holds CR, LF or any other control character or line separator.

    Every caller passes text already cleaned by ``clean_header_text``, so this never fires for
    mail; it is the second line of defence against header injection should that ever change.
    """
    for value in values:
        if "\r" in value or "\n" in value or _HEADER_UNSAFE.search(value):
            raise ValueError("refusing a header value with a line break or control character")


def _fold(name: str, words: Sequence[str]) -> str:
    """``Name: word word ...`` and CRLF, with CRLF before a space wherever the next word would
    carry the line past 78 characters. Unfolding removes only the CRLF, so the value read back
    is exactly the words joined by single spaces."""
    _refuse_line_breaks(*words)
    lines = [f"{name}:"]
    for word in words:
        if not word or " " in word:
            raise ValueError("a header word must be non-empty and hold no space")
        # a word longer than the room left starts a new line, unless nothing is written yet
        if len(lines[-1]) + 1 + len(word) > FOLD_AT and lines != [f"{name}:"]:
            lines.append("")
        lines[-1] += " " + word
    if any(len(line) > MAX_LINE for line in lines):
        raise ValueError(f"{name} header word longer than a line may be")
    return "\r\n".join(lines) + "\r\n"


def _plain_words(text: str, room: int) -> list[str] | None:
    """The words of ``text`` when it can be written as it is, each at most ``room`` long;
    None when it must be encoded instead.

    Plain means ASCII without ``=?`` (a reader would decode that as an encoded word and show
    something else than the sender wrote), single spaces only (folding keeps nothing else),
    and no word too long to fold.
    """
    words = text.split(" ")
    if not text.isascii() or "=?" in text or "" in words or max(map(len, words)) > room:
        return None
    return words


def _encoded_words(text: str, first: int) -> list[str]:
    """``text`` as UTF-8 RFC 2047 encoded words (B or Q, whichever is shorter), the first at
    most ``first`` characters, the rest at most 75. Readers join adjacent encoded words without
    the space between them, so the split points add nothing to the text."""
    words = _UTF8.header_encode_lines(text, chain([first], repeat(MAX_ENCODED_WORD)))
    # None stands for a first line too short for one character, which then opens the next word
    return [word for word in words if word is not None]


def _encode_from(display: str, local: str, domain: str) -> str:
    """``From: display <local@domain>``: the display name plain (quoted by ``formataddr`` when
    it holds specials) or as encoded words; the address must be ASCII (no SMTPUTF8)."""
    _refuse_line_breaks(display, local, domain)
    if set(local) & _LOCAL_PART_QUOTE:
        local = '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"'
    address = f"{local}@{domain}"
    if not address.isascii():
        raise ValueError("an address in our headers must be ASCII")
    if not display:
        return _fold("From", [address])
    # An ASCII name stays plain, as it always was: quoted by formataddr when it holds specials,
    # folded at its spaces (inside a quoted string too). A word too long to fold stays whole up
    # to the hard limit; split into encoded words, Python's parser reads a space into the name
    # at every split.
    if _plain_words(display, MAX_LINE) is not None:
        phrase = formataddr((display, address)).split(" ")
        if max(map(len, phrase)) <= MAX_LINE - len("From: "):
            return _fold("From", phrase)
    return _fold("From", [*_encoded_words(display, FOLD_AT - len("From: ")), f"<{address}>"])


def _encode_to(addresses: Sequence[str]) -> str:
    """``To:`` the addresses, several to a line while they fit in 78 characters."""
    _refuse_line_breaks(*addresses)
    if not all(a.isascii() for a in addresses):
        raise ValueError("an address in our headers must be ASCII")
    return _fold("To", [a + "," for a in addresses[:-1]] + list(addresses[-1:]))


def _encode_subject(subject: str) -> str:
    """``Subject:`` plain ASCII folded at its spaces when that fits, otherwise encoded words."""
    _refuse_line_breaks(subject)
    if not subject:
        return _fold("Subject", [])
    room = FOLD_AT - len("Subject: ")
    words = _plain_words(subject, room)
    return _fold("Subject", words if words is not None else _encoded_words(subject, room))


def _subject(
    manifest: Manifest,
    *,
    options: NotifyOptions,
    words: dict[str, str],
    spoofed: str | None,
    part: int,
    total: int,
) -> str:
    pieces = [options.subject_prefix]
    mark = manifest.inbound
    if mark is not None and f"subject_{mark.action}" in words:
        pieces.append(words[f"subject_{mark.action}"])
    if spoofed:
        pieces.append(words["spoof_subject"])
    if total > 1:
        pieces.append(f"({part}/{total})")
    pieces.append(shown_header_text(manifest.headers.subject, MAX_SUBJECT_CHARS))
    return clean_header_text(" ".join(p for p in pieces if p), MAX_SUBJECT_CHARS + 80)


def _notes(
    manifest: Manifest,
    words: dict[str, str],
    language: str,
    *,
    part: int,
    total: int,
    scaled: bool,
    omitted: int,
) -> list[str]:
    notes: list[str] = _filter_notes(manifest, words) if part == 1 else []
    if manifest.status == "not_displayable":
        reason = reason_words(clean_header_text(manifest.reason or "unknown", 100), language)
        notes.append(words["not_displayable"].format(reason=reason))
    if total > 1:
        notes.append(words["split"].format(total=total, part=part))
    if scaled:
        notes.append(words["scaled"])
    if omitted:
        notes.append(words["omitted"].format(count=omitted))
    if part == 1:
        notes.extend(
            shown_header_text(translate(clean_header_text(n, 500), language), 600)
            for n in manifest.notes[:50]
        )
    return notes


def _filter_notes(manifest: Manifest, words: dict[str, str]) -> list[str]:
    """What the receive filters made of the mail, in the reader's words (issue 17)."""
    mark = manifest.inbound
    if mark is None:
        return []
    rule = clean_header_text(mark.rule, 64)
    sender = split_from(manifest.headers.from_)[1] or manifest.envelope.mail_from or "?"
    values = {
        "rule": words["rule"].format(rule=rule) if rule else words["default_rule"],
        "sender": shown_header_text(sender, 320),
        "rcpts": shown_header_text(", ".join(manifest.envelope.rcpt_to), 600),
        "mail_id": manifest.mail_id,
        "until": clean_header_text(mark.held_until, 40),
        "by": shown_header_text(mark.decided_by, 320),
    }  # fmt: skip
    notes = [words[f"filter_{mark.action}"].format(**values)] if mark.action != "allow" else []
    # What was masked, and where, the renderer's notes say (docs/rendering.md, "Masking"); here
    # the rule that chose it, when anything was.
    done = dict.fromkeys(item.type for item in manifest.masked)
    if done and mark.action in ("allow", "monitor", "released"):
        mask_rule = clean_header_text(mark.mask_rule, 64)
        kinds = [words.get(f"pii_{kind}", clean_header_text(kind, 32)) for kind in done]
        shown = (words["rule_name"].format(rule=mask_rule) if mask_rule
                 else words["default_rule_name"])  # fmt: skip
        notes.append(words["filter_masked"].format(rule=shown, types=", ".join(kinds)))
    return notes


def _header_rows(manifest: Manifest, words: dict[str, str]) -> list[tuple[str, str]]:
    headers, auth = manifest.headers, manifest.auth
    parts = (("spf", auth.spf), ("dkim", auth.dkim), ("dmarc", auth.dmarc))
    auth_text = " ".join(f"{name}={value}" for name, value in parts if value)
    auth_shown = clean_header_text(auth.summary or auth_text)
    rows = [
        (words["from"], headers.from_),
        (words["to"], headers.to),
        (words["cc"], headers.cc),
        (words["date"], headers.date),
        (words["subject"], headers.subject),
        (words["auth_people"], words[f"auth_{auth_verdict(auth)}"]),
        (words["auth"], auth_shown or words["no_auth"]),
        (words["envelope"], _envelope_shown(manifest, words)),
    ]
    threading = " ".join(
        v for v in (headers.message_id, headers.in_reply_to, headers.references) if v
    )
    rows.append((words["threading"], threading))
    # defanged: a URL in a Subject or an address row would be a link in either part
    return [(label, defang_text(shown_header_text(value))) for label, value in rows if value]


AuthWord = str  # "pass", "fail", "unknown", "not_checked"
_UNCHECKED = frozenset({"", "not_checked"})


def auth_verdict(auth: AuthResults) -> AuthWord:
    """The sender authentication in one word for people (issue 20.5): ``pass`` only when DMARC
    passed (the From domain itself is confirmed: a DKIM or SPF pass of another domain says
    nothing about the From address); ``fail`` when DMARC failed, or SPF or DKIM failed and
    DMARC did not pass; ``not_checked`` when nothing was checked; else ``unknown`` (none,
    neutral, softfail, temperror, permerror: the domain publishes no policy or the check
    could not finish)."""
    results = {auth.spf.lower(), auth.dkim.lower(), auth.dmarc.lower()}
    if auth.dmarc.lower() == "pass":
        return "pass"
    if auth.dmarc.lower() == "fail" or "fail" in results:
        return "fail"
    if results <= _UNCHECKED:
        return "not_checked"
    return "unknown"


def _envelope_shown(manifest: Manifest, words: dict[str, str]) -> str:
    """The envelope sender, explained when its domain is not the From address's."""
    envelope = manifest.envelope.mail_from
    author = split_from(manifest.headers.from_)[1]
    domain, author_domain = _domain(envelope), _domain(author)
    related = domain.endswith("." + author_domain) or author_domain.endswith("." + domain)
    if domain and author_domain and domain != author_domain and not related:
        return words["envelope_differs"].format(envelope=envelope, author=author_domain)
    return envelope or "<>"


def _domain(address: str) -> str:
    return address.rpartition("@")[2].strip(" >").lower().rstrip(".") if "@" in address else ""


def _withheld_rows(manifest: Manifest, language: str) -> list[tuple[str, str, str, str]]:
    return [
        (shown_header_text(w.filename, 255), shown_header_text(w.content_type, 100),
         _human_size(w.size), reason_words(clean_header_text(w.reason, 100), language))
        for w in manifest.withheld
    ]  # fmt: skip


def _human_size(size: int) -> str:
    if size >= 1 << 20:
        return f"{size / (1 << 20):.1f} MB"
    if size >= 1 << 10:
        return f"{size / (1 << 10):.0f} KB"
    return f"{size} B"


def _text_part(
    mail: CheckedMail,
    options: NotifyOptions,
    words: dict[str, str],
    shown: _Shown,
    notes: list[str],
    *,
    first: bool,
) -> str:
    lines = [words["banner"], ""]
    if shown.spoofed:
        lines[:0] = [words["spoof"].format(domain=shown.spoofed), ""]
    lines += [f"{label}: {value}" for label, value in shown.header_rows]
    lines += [""] + [f"* {note}" for note in notes]
    withheld = shown.withheld if first else []
    if withheld:
        lines += ["", words["withheld"] + ":"]
        lines += [f"  - {n} ({t}, {s}): {r}" for n, t, s, r in withheld]
    if first and options.carry_text and mail.text:
        lines += ["", f"----- {words['text']} -----", _clean_body_text(mail.text)]
    return "\n".join(lines) + "\n"


_STYLE_BANNER = "background:#fff4ce;border:1px solid #e0b400;padding:8px;margin:0 0 8px 0"
_STYLE_SPOOF = "background:#fde7e9;border:1px solid #c50f1f;padding:8px;margin:0 0 8px 0"
_STYLE_CELL = "padding:2px 8px;vertical-align:top;text-align:left"


def _html_part(
    words: dict[str, str],
    shown: _Shown,
    notes: list[str],
    cids: list[str],
    *,
    first: bool,
) -> str:
    e = html.escape
    out = ['<!DOCTYPE html><html><head><meta charset="utf-8"></head>',
           '<body style="font-family:sans-serif">']  # fmt: skip
    if shown.spoofed:
        out.append(
            f'<p style="{_STYLE_SPOOF}"><b>{e(words["spoof"].format(domain=shown.spoofed))}</b></p>'
        )
    out.append(f'<p style="{_STYLE_BANNER}">{e(words["banner"])}</p>')
    out.append('<table style="border-collapse:collapse;margin-bottom:8px">')
    for label, value in shown.header_rows:
        cells = (
            f'<th style="{_STYLE_CELL}">{e(label)}</th><td style="{_STYLE_CELL}">{e(value)}</td>'
        )
        out.append(f"<tr>{cells}</tr>")
    out.append("</table>")
    out += [f"<p>{e(note)}</p>" for note in notes]
    for index, cid in enumerate(cids):
        alt = f"{words['page']} {index + 1}"
        out.append(f'<div><img src="cid:{e(cid)}" alt="{e(alt)}" style="max-width:100%"></div>')
    withheld = shown.withheld if first else []
    if withheld:
        out.append(f'<h3>{e(words["withheld"])}</h3><table style="border-collapse:collapse">')
        titles = (words[k] for k in ("name", "type", "size", "reason"))
        out.append(
            "<tr>" + "".join(f'<th style="{_STYLE_CELL}">{e(t)}</th>' for t in titles) + "</tr>"
        )
        for row in withheld:
            cells = "".join(f'<td style="{_STYLE_CELL}">{e(c)}</td>' for c in row)
            out.append(f"<tr>{cells}</tr>")
        out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out)


def valid_mail_id(untrusted: str) -> bool:
    """Mail ids appear in our headers and cids: only a short safe alphabet is accepted."""
    return bool(_MAIL_ID.match(untrusted))
