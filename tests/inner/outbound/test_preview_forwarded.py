"""A held mail's preview shows a forwarded mail's attachments (a message/rfc822 part's own
attachments) in its text sections, redacted like the mail's own and titled with where they
came from ("전달된 메일의 첨부: 고객명단.xlsx"). The scan reads them, so its findings may be
there; before, the sections showed neither the forwarded mail's body nor its attachments.

1. ``masked_view`` on a parsed mail and what the scan's extraction read (fast): the section,
   its title, the list of attachment names; nested forwards to ``PREVIEW_FORWARD_DEPTH``
   levels, deeper ones named, their contents not shown.
2. The real path (slow): the scan in the reader's child process, the preview drawn by a real
   preview worker with LibreOffice; the sections of the kept preview.
"""

from __future__ import annotations

import email.message
from collections.abc import Iterator
from email.policy import SMTP

import pytest

from inner_agent.outbound.preview import PREVIEW_FORWARD_DEPTH, Previewer, masked_view, preview_pool
from inner_agent.outbound.scanning import Scanner
from inner_agent.outbound.spool import SpooledMail, new_mail_id
from mailsafe.extract import extract_locations
from mailsafe.extract.isolated import AttachmentReader
from mailsafe.extract.limits import ExtractLimits
from mailsafe.mime import parse_message
from mailsafe.policy import default_rules
from tests.support.outbound import RRN, RRN_MASKED, forwarded_list_mail

OTHER_RRN = "900202-2345678"
TITLE = "전달된 메일의 첨부: 고객명단.xlsx"


def _sections(data: bytes) -> dict[str, str]:
    parsed = parse_message(data)
    return dict(masked_view(parsed, extract_locations(parsed)).sections)


def test_a_forwarded_mails_attachment_is_a_section_saying_where_it_came_from() -> None:
    sections = _sections(forwarded_list_mail((("김고객", RRN), ("박고객", OTHER_RRN))))
    assert TITLE in sections, list(sections)
    text = sections[TITLE]
    for word in ("김고객", "박고객", "강남지점"):  # the list stays readable
        assert word in text, (word, text)
    assert RRN_MASKED in text, text
    shown = repr(sections)
    for digits in ("1234567", "2345678"):
        assert digits not in shown, shown
    assert "요청하신 고객 명단을 정리했습니다." in sections["전달된 메일의 본문"]
    assert "고객 명단 정리본" in sections["전달된 메일의 본문"]  # its subject
    assert TITLE in sections["첨부 파일 목록"]


def test_a_number_in_a_forwarded_attachments_name_is_hidden_whole() -> None:
    inner = email.message.EmailMessage()
    inner["From"], inner["To"], inner["Subject"] = "lee@corp.example", "kim@corp.example", "원본"
    inner.set_content("원본입니다.")
    inner.add_attachment(b"plain", maintype="text", subtype="plain",
                         filename=f"김철수_{RRN}.txt")  # fmt: skip
    outer = email.message.EmailMessage()
    outer["From"], outer["To"], outer["Subject"] = "kim@corp.example", "p@x.example", "FW"
    outer.set_content("전달")
    outer.add_attachment(inner)
    sections = _sections(outer.as_bytes(policy=SMTP))
    titles = [t for t in sections if t.startswith("전달된 메일의 첨부: 김철수_")]
    assert titles, list(sections)
    shown = repr(sections)
    for digits in ("800101", "1234567"):
        assert digits not in shown, shown


def _nested(levels: int) -> bytes:
    """A mail forwarded ``levels`` times in itself; level N attaches 명단N.txt holding the word
    내용N and a resident number."""
    mail: email.message.EmailMessage | None = None
    for level in range(levels, -1, -1):
        outer = email.message.EmailMessage()
        outer["From"], outer["To"] = "kim@corp.example", "partner@example.com"
        outer["Subject"] = f"단계{level}"
        outer.set_content(f"단계{level} 본문")
        if level:
            outer.add_attachment(f"내용{level} {RRN}".encode(), maintype="text", subtype="plain",
                                 filename=f"명단{level}.txt")  # fmt: skip
        if mail is not None:
            outer.add_attachment(mail)
        mail = outer
    assert mail is not None
    return mail.as_bytes(policy=SMTP)


def test_nested_forwards_are_shown_to_the_bound_and_deeper_ones_named_as_left_out() -> None:
    levels = PREVIEW_FORWARD_DEPTH + 2
    parsed = parse_message(_nested(levels))
    found = extract_locations(parsed)
    assert any(f.where.endswith(f"attachment:명단{levels}.txt") for f in found)  # scan reads all
    sections = dict(masked_view(parsed, found).sections)
    for level in range(1, PREVIEW_FORWARD_DEPTH + 1):
        origin = "전달된 메일" if level == 1 else f"전달된 메일({level}단계)"
        title = f"{origin}의 첨부: 명단{level}.txt"
        assert f"내용{level} {RRN_MASKED}" in sections.get(title, ""), (title, list(sections))
        assert f"단계{level} 본문" in sections[f"{origin}의 본문"]
    deeper = sections["더 깊이 전달된 메일"]
    assert f"{PREVIEW_FORWARD_DEPTH}단계보다 깊이 전달된 메일 2통" in deeper, deeper
    for level in range(PREVIEW_FORWARD_DEPTH + 1, levels + 1):
        assert f"명단{level}.txt" in deeper, deeper
        assert all(f"내용{level}" not in text for text in sections.values()), sections
    assert "1234567" not in repr(sections)


def test_a_mail_without_forwards_has_the_sections_it_had() -> None:
    parsed = parse_message(_nested(0))
    sections = masked_view(parsed, extract_locations(parsed)).sections
    assert [(title, text.strip()) for title, text in sections] == [("본문", "단계0 본문")]


# ------------------------------------------------------------------ 2. the real preview worker


@pytest.fixture(scope="module")
def held() -> Iterator[tuple[AttachmentReader, Previewer]]:
    with AttachmentReader(ExtractLimits()) as reader, preview_pool("kor+eng") as pool:
        yield reader, Previewer(pool)


@pytest.mark.slow
def test_the_preview_worker_path_keeps_the_forwarded_attachment_section(held) -> None:  # type: ignore[no-untyped-def]
    """The scan in the reader's child finds the number in the forwarded XLSX and holds the
    mail; the preview drawn by the real worker (LibreOffice) carries the XLSX's page and a
    text section naming where it came from, its number masked."""
    reader, previewer = held
    data = forwarded_list_mail()
    mail = SpooledMail(new_mail_id(), "kim@corp.example", ("partner@example.com",), 0.0,
                       "127.0.0.1", "mx")  # fmt: skip
    scanned = Scanner(default_rules(), reader).scan(mail, data, lambda _address: None)
    assert scanned.result.decision.action == "approve", scanned.result.decision
    wheres = {f.where for f in scanned.result.findings}
    assert "forwarded[1].attachment:고객명단.xlsx" in wheres, wheres
    preview = previewer.preview(data, scanned)
    assert "attachment:고객명단.xlsx" in {page.source for page in preview.pages}, preview.left_out
    sections = dict(preview.sections)
    assert TITLE in sections, list(sections)
    assert "김고객" in sections[TITLE], sections[TITLE]
    assert RRN_MASKED in sections[TITLE], sections[TITLE]
    assert "1234567" not in repr(preview.sections)
