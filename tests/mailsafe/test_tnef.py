"""Outlook TNEF (winmail.dat): its body and attachments become the mail's own parts; a corrupt
or hostile one is withheld with a reason, in bounded time. Files from tests/support/tnef.py;
two real ones read in place from ../shared/corpus."""

from __future__ import annotations

import email
import email.message
import logging
import struct
import time
from email.policy import compat32
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsafe.mime import parse_message
from mailsafe.render import render_message
from mailsafe.render.options import RenderOptions
from mailsafe.tnef import MAX_EMBEDDED_DEPTH, tnef_message
from tests.support.documents import make_docx, make_screenshot
from tests.support.tnef import (
    ATT_ATTACHMENT,
    ATT_MAPI_PROPS,
    ATT_RECIPIENTS,
    ATT_TNEF_VERSION,
    LEVEL_ATTACHMENT,
    LEVEL_MESSAGE,
    MULTI_VALUE,
    PR_BODY,
    PT_SHORT,
    TYPE_BYTE,
    TYPE_DWORD,
    TnefAttachment,
    TnefMessage,
    attribute,
    mail_with_winmail,
    prop_unicode,
    properties,
)

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"


def _outlook_tnef() -> bytes:
    inner = TnefMessage(subject="회의록 전달", plain="내부 회의록 본문").build()
    return TnefMessage(
        html="<p>견적서 본문입니다. 확인 부탁드립니다.</p>".encode("euc-kr"),
        internet_code_page=51949,  # EUC-KR: tnefparse alone would decode it as cp1252
        attachments=[
            TnefAttachment("견적서.docx", make_docx("견적 금액 1,200,000원")),
            TnefAttachment("도면.png", make_screenshot(["DRAWING 도면"]), "image/png"),
            TnefAttachment("회의록", embedded=inner),
        ],
    ).build()


def test_a_winmail_dat_s_body_and_attachments_become_the_mail_s_own() -> None:
    """Before: the whole winmail.dat was one withheld attachment ("tnef")."""
    mail = parse_message(mail_with_winmail(_outlook_tnef()))
    assert "tnef" not in mail.security
    assert (mail.html or "").strip() == "<p>견적서 본문입니다. 확인 부탁드립니다.</p>"
    assert mail.text == "본문은 첨부를 보세요."
    assert [(a.filename, a.content_type) for a in mail.attachments] == [
        ("견적서.docx", "application/octet-stream"),
        ("도면.png", "image/png"),
    ]
    assert [(f.subject, f.text) for f in mail.forwarded] == [("회의록 전달", "내부 회의록 본문")]
    assert any("TNEF" in defect for defect in mail.defects)


def test_an_rtf_only_body_becomes_a_document_for_the_converter() -> None:
    from compressed_rtf import compress

    rtf = rb"{\rtf1\ansi\ansicpg949 {\fonttbl\f0 Arial;}\f0 RTF BODY TEXT\par}"
    tnef = TnefMessage(rtf_compressed=compress(rtf)).build()
    mail = parse_message(mail_with_winmail(tnef))
    (body,) = mail.attachments
    assert (body.filename, body.content_type) == ("message.rtf", "application/rtf")
    assert body.data.startswith(rtf)


def test_the_winmail_dat_s_parts_are_drawn_like_the_mail_s_own() -> None:
    rendered = render_message(mail_with_winmail(_outlook_tnef()), RenderOptions())
    sources = {page.source for page in rendered.manifest.pages}
    assert "attachment:도면.png" in sources
    withheld = {w.filename: w.reason for w in rendered.manifest.withheld}
    assert "winmail.dat" not in withheld
    # No converter here: the document is withheld as any office attachment would be.
    assert withheld["견적서.docx"] in {"office_unavailable", "not_rendered_type"}


def _mapi(*entries: bytes, count: int | None = None) -> bytes:
    return attribute(LEVEL_MESSAGE, ATT_MAPI_PROPS, TYPE_BYTE, properties(*entries, count=count))


def _nested(depth: int) -> bytes:
    tnef = TnefMessage(plain="deepest").build()
    for _ in range(depth):
        tnef = TnefMessage(attachments=[TnefAttachment("item", embedded=tnef)]).build()
    return tnef


_GOOD = TnefMessage(plain="본문").build()
_SHORTS = struct.pack("<HHI", PT_SHORT | MULTI_VALUE, 0x0017, 0xFFFFFFFF) + b"\x00" * 8

CORRUPT = {
    "bad signature": b"\x00" + _GOOD[1:],
    "a signature and no attribute": _GOOD[:6],
    "truncated": _GOOD[:-7],
    "bad checksum": TnefMessage(extra=attribute(LEVEL_MESSAGE, 0x8004, 7, b"x\x00", 1)).build(),
    "length past the end": TnefMessage(
        extra=struct.pack("<BHHI", LEVEL_MESSAGE, 0x8004, 7, 10**6) + b"\x00" * 20
    ).build(),
    # tnefparse alone loops 4 billion times on this one ...
    "property count 2**32-1": TnefMessage(extra=_mapi(count=0xFFFFFFFF)).build(),
    # ... and builds 4 billion objects on this one.
    "multi-value count 2**32-1": TnefMessage(extra=_mapi(_SHORTS)).build(),
    "unknown property type": TnefMessage(
        extra=_mapi(struct.pack("<HHI", 0x0999, 0x0017, 0))
    ).build(),
    "embedded past the depth limit": _nested(MAX_EMBEDDED_DEPTH + 1),
    "attachment properties cut": TnefMessage(
        extra=attribute(LEVEL_ATTACHMENT, ATT_ATTACHMENT, TYPE_BYTE, struct.pack("<I", 3))
    ).build(),
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_a_corrupt_or_hostile_winmail_dat_is_withheld_with_a_reason(case: str) -> None:
    started = time.monotonic()
    mail = parse_message(mail_with_winmail(CORRUPT[case]))
    assert time.monotonic() - started < 2
    assert "tnef" in mail.security
    assert [a.filename for a in mail.attachments] == ["winmail.dat"]
    rendered = render_message(mail_with_winmail(CORRUPT[case]), RenderOptions())
    reasons = {w.filename: w.reason for w in rendered.manifest.withheld}
    assert reasons == {"winmail.dat": "unreadable_tnef"}
    assert any("winmail.dat" in n and "could not be read" in n for n in rendered.manifest.notes)


def test_attached_items_nest_to_the_depth_limit() -> None:
    mail = parse_message(mail_with_winmail(_nested(MAX_EMBEDDED_DEPTH)))
    depth = 0
    while mail.forwarded:
        (mail,) = mail.forwarded
        depth += 1
    assert (depth, (mail.text or "").strip()) == (MAX_EMBEDDED_DEPTH, "deepest")


def test_the_recipient_table_is_never_given_to_tnefparse() -> None:
    """tnefparse reads each recipient row from where the last one stopped, past any check: a
    name it cannot decode (a lone UTF-16 surrogate) makes the next row's property count the
    item count 2**32-1 after it, and tnefparse alone loops 4 billion times."""
    bad_name = struct.pack("<HHII", 0x001F, 0x3001, 0xFFFFFFFF, 4) + b"\x00\xd8\x00\x00"
    table = struct.pack("<I", 2) + properties(bad_name, count=1)
    tnef = TnefMessage(
        plain="본문", extra=attribute(LEVEL_MESSAGE, ATT_RECIPIENTS, TYPE_BYTE, table)
    ).build()
    started = time.monotonic()
    mail = parse_message(mail_with_winmail(tnef))
    assert time.monotonic() - started < 2
    assert "본문" in (mail.text or "")


def _tnef_of(path: Path) -> bytes:
    message = email.message_from_bytes(path.read_bytes(), policy=compat32)
    part = next(p for p in message.walk() if p.get_content_type() == "application/ms-tnef")
    data = part.get_payload(decode=True)
    assert isinstance(data, bytes)
    return data


def test_real_winmail_dat_files_are_read() -> None:
    rich = parse_message((CORPUS / "mimekit-rich-text.eml").read_bytes())
    assert "tnef" not in rich.security
    names = [a.filename for a in rich.attachments]
    assert names[:2] == ["message.rtf", "kitten-playing-with-a-christmas-tree.jpg"]
    assert rich.attachments[0].data.startswith(b"{\\rtf1")
    assert [f.subject for f in rich.forwarded] == ["Build a train table", "Christmas Celebration!"]
    ukrainian = parse_message((CORPUS / "mimekit-ukr.eml").read_bytes())
    assert "tnef" not in ukrainian.security
    assert "шостий" in (ukrainian.html or "")


def test_the_walk_changes_a_copy_not_the_caller_s_bytes() -> None:
    """The walk hides the internet code page and the recipient table from tnefparse on a
    copy; the caller's bytes are not changed."""
    tnef = _tnef_of(CORPUS / "mimekit-ukr.eml")
    before = bytes(tnef)
    assert tnef_message(tnef) is not None
    assert tnef == before
    assert tnef_message(tnef[:-1]) is None


def test_a_plain_body_property_is_read() -> None:
    tnef = TnefMessage(code_page=1252, extra=_mapi(prop_unicode(PR_BODY, "unicode body"))).build()
    mail = parse_message(mail_with_winmail(tnef))
    assert "unicode body" in (mail.text or "")


_SMALL = TnefMessage(
    plain="본문",
    html=b"<p>html</p>",
    attachments=[
        TnefAttachment("a.txt", b"attached text", "text/plain"),
        TnefAttachment("item", embedded=TnefMessage(subject="inner", plain="x").build()),
    ],
).build()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_after_the_signature_read_or_refuse(tail: bytes) -> None:
    result = tnef_message(_GOOD[:6] + tail)
    assert result is None or isinstance(result, email.message.Message)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(_SMALL) - 1), st.integers(0, 255))
def test_a_changed_byte_reads_or_refuses(position: int, value: int) -> None:
    changed = bytearray(_SMALL)
    changed[position] = value
    result = tnef_message(bytes(changed))
    assert result is None or isinstance(result, email.message.Message)


def test_what_tnefparse_says_about_a_sender_s_file_is_dropped_and_only_that(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Before: importing mailsafe.tnef set the "tnefparse" logger to CRITICAL for the whole
    process, so an application that uses tnefparse itself lost its warnings too."""
    caplog.set_level(logging.DEBUG)  # the root's level only: tnefparse's own is left alone
    false_version = attribute(LEVEL_MESSAGE, ATT_TNEF_VERSION, TYPE_DWORD, struct.pack("<I", 7))
    hostile = TnefMessage(plain="본문", extra=false_version).build()
    assert tnef_message(hostile) is not None  # read, with tnefparse's "Invalid TNEF Version"
    assert [r.getMessage() for r in caplog.records if r.name == "tnefparse"] == []
    assert logging.getLogger("tnefparse").level == logging.NOTSET
    logging.getLogger("tnefparse").warning("another program's own file")
    assert [r.getMessage() for r in caplog.records if r.name == "tnefparse"] == [
        "another program's own file"
    ]
