"""The receive side reads a mail's documents' text before drawing them (D97): what is read,
for which types, and that a mail without an office document or PDF reads nothing.
(The pictures themselves, OCR-read after LibreOffice drew them: tests/outer/
test_inbound_document_values.py.)"""

from __future__ import annotations

import pytest

import mailsafe.render.masking.documents as documents
from mailsafe.inbound_filter import FilterJob, filter_message, parse_published
from mailsafe.inbound_rules import DEFAULT_INBOUND_RULES_TOML, published_text
from mailsafe.mime import parse_message
from mailsafe.render import render_message, with_document_values
from mailsafe.render.masking.documents import document_values
from mailsafe.render.options import RenderOptions
from tests.support.documents import (
    make_mail,
    make_narrow_table_docx,
    make_pdf,
    make_screenshot,
)

RRN = "800101-1234567"
EMAIL = "chulsoo.kim.sales@naver.com"
DOCX = make_narrow_table_docx("명단", [["이름", "번호", "메일"], ["김철수", RRN, EMAIL]])
READING = RenderOptions(mask_types=frozenset({"rrn", "email"}), mask_document_text=True,
                        ocr_languages="")  # fmt: skip


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the files the documents' reading opens."""
    opened: list[str] = []
    real = documents.attachment_locations

    def spy(name, data, budget):  # type: ignore[no-untyped-def]
        opened.append(name)
        return real(name, data, budget)

    monkeypatch.setattr(documents, "attachment_locations", spy)
    return opened


def test_a_documents_values_are_found_for_the_masked_types_only() -> None:
    assert document_values([("명단.docx", DOCX)], {"rrn", "email"}) == (
        ("rrn", RRN),
        ("email", EMAIL),
    )
    assert document_values([("명단.docx", DOCX)], {"email"}) == (("email", EMAIL),)
    assert document_values([("명단.docx", DOCX)], {"passport"}) == ()
    assert document_values([("깨진.docx", b"PK\x03\x04broken")], {"email"}) == ()


def test_a_plain_mail_reads_nothing_before_it_is_drawn(reads: list[str]) -> None:
    """An HTML mail, a picture and a text file: nothing the page could break is read."""
    raw = make_mail(html=f"<p>담당 {EMAIL}</p>", attachments=[
        ("화면.png", make_screenshot(["화면"])), ("메모.txt", EMAIL.encode()),
    ])  # fmt: skip
    rendered = render_message(raw, READING)
    assert rendered.manifest.status == "rendered"
    assert reads == []
    options = with_document_values(parse_message(raw), READING, READING.mask_types)
    assert (options.mask_document_text, options.mask_values) == (False, ())
    assert reads == []


def test_a_pdfs_values_join_the_values_hidden_and_are_read_once(reads: list[str]) -> None:
    raw = make_mail(attachments=[("명단.pdf", make_pdf(f"담당 {EMAIL}"))])
    options = with_document_values(parse_message(raw), READING, frozenset({"email"}))
    assert options.mask_values == (("email", EMAIL),)
    assert not options.mask_document_text  # read: a second call reads nothing
    assert with_document_values(parse_message(raw), options, frozenset({"email"})) == options
    assert reads == ["명단.pdf"]
    unasked = RenderOptions(mask_types=frozenset({"email"}))  # an approval preview's options
    assert with_document_values(parse_message(raw), unasked, frozenset({"email"})) == unasked
    assert reads == ["명단.pdf"]


def test_the_receive_filters_read_a_mails_documents_once_for_all_its_packages(
    reads: list[str],
) -> None:
    rules = DEFAULT_INBOUND_RULES_TOML + (
        "\n[[rule]]\nid = 'desk'\naction = 'mask'\nmask = ['email']\n"
        "scope = 'users'\nusers = ['desk@corp.example']\n"
    )
    rcpts = ("user@corp.example", "desk@corp.example")
    raw = make_mail(attachments=[("명단.docx", DOCX)], to=", ".join(rcpts))
    result = filter_message(raw, parse_published(published_text(rules, {}, {}), 1),
                            FilterJob(1, None, "p@partner.example", rcpts), READING)  # fmt: skip
    assert len(result.packages) == 2  # two masks, two renderings
    assert reads == ["명단.docx"]
