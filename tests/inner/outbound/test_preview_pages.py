"""Approval previews as the mail's pages, redacted (issue 18.3): a held mail with a resident
number in its body, an XLSX, a DOCX and a PNG screenshot is drawn by a real render worker
(LibreOffice in its sandbox for the office files, OCR for the picture); every page, read back
by OCR, shows none of the number's digit runs and still the words around it; each page says
what was painted on it; the request mail carries every page and no digits in its text. And
the pure part: pictures whose pixels could not be checked are left out, named."""

from __future__ import annotations

import email
import email.policy
import re
import time

import pytest

from inner_agent.outbound.preview import Previewer, preview_pool
from inner_agent.outbound.previews import LeftOut, Preview, PreviewPage, from_rendered
from inner_agent.outbound.spool import SpooledMail, new_mail_id
from mailsafe.extract.limits import Budget, ExtractLimits
from mailsafe.extract.ocr import picture_text
from mailsafe.notes import reason_words
from mailsafe.payload import (
    PACKAGE_VERSION,
    HeaderBlock,
    Manifest,
    Masked,
    PageInfo,
    RenderedMail,
    Unchecked,
)
from mailsafe.render.pool import headers_only
from tests.support.outbound import EVERYWHERE_RRN as RRN
from tests.support.outbound import RRN as OTHER_RRN
from tests.support.outbound import build_workflow, held_mail_everywhere, rrn_mail

DIGIT_RUNS = ("800101", "1234560", "8001011234560")
# Words near the number on each page, which must stay readable (OCR reads them at 96 dpi).
READABLE = {
    "body": "안녕하세요",
    "attachment:명단.xlsx": "이름",
    "attachment:계약.docx": "계약서",
    "attachment:화면.png": "서울시",
}
READ = ExtractLimits(ocr_languages="kor+eng")


def _digits_shown(text: str) -> list[str]:
    squeezed = re.sub(r"\s", "", text)
    return [run for run in DIGIT_RUNS if run in squeezed]


@pytest.fixture(scope="module")
def held(tmp_path_factory):
    """The mail held through the workflow with a real preview worker; its preview, the
    request mail and the seconds the hold (scan and preview) took."""
    with preview_pool("kor+eng") as pool:
        parts = build_workflow(tmp_path_factory.mktemp("preview"), previewer=Previewer(pool))
        data = held_mail_everywhere()
        mail = SpooledMail(new_mail_id(), "kim@corp.example", ("partner@example.com",),
                           parts.clock(), "127.0.0.1", "mx")  # fmt: skip
        parts.spool.store(mail, data)
        parts.workflow.accepted(mail)
        started = time.monotonic()
        parts.workflow.process_received()
        seconds = time.monotonic() - started
    assert parts.state.mail(mail.mail_id).state == "held"
    request = parts.state.request_for_mail(mail.mail_id)
    preview = parts.workflow.effects.stored_preview(request.request_id)
    asks = [n for n in parts.state.notices() if n.kind == "request"]
    return preview, asks, seconds


def test_every_part_is_drawn_as_pages_and_ocr_reads_no_digit_of_the_number(held) -> None:
    preview, _asks, _seconds = held
    sources = {page.source for page in preview.pages}
    assert set(READABLE) <= sources, sources
    for page in preview.pages:
        text = picture_text(page.data, Budget(READ))
        assert _digits_shown(text) == [], (page.title, text)
        if page.source in READABLE and page.page == 1:
            assert READABLE[page.source] in text.replace(" ", ""), (page.title, text)


def test_each_page_says_where_a_finding_was_painted_over(held) -> None:
    preview, _asks, _seconds = held
    painted = {
        page.source: {(place.type, place.method) for place in page.places}
        for page in preview.pages
        if page.page == 1
    }
    assert ("rrn", "text") in painted["body"]
    assert ("rrn", "text") in painted["attachment:명단.xlsx"]  # a cell drawn cut short, too
    assert ("rrn", "text") in painted["attachment:계약.docx"]
    assert ("rrn", "ocr") in painted["attachment:화면.png"]
    assert preview.left_out == ()
    # The extracted text stays for search, masked.
    assert any("명단.xlsx" in title for title, _text in preview.sections)
    assert RRN not in repr(preview.sections)


def test_the_request_mail_carries_every_page_and_no_number_in_its_text(held) -> None:
    preview, asks, _seconds = held
    assert asks
    for ask in asks:
        message = email.message_from_bytes(ask.data, policy=email.policy.default)
        pictures = [p for p in message.walk() if p.get_content_maintype() == "image"]
        assert len(pictures) == len(preview.pages)
        text = "\n".join(p.get_content() for p in message.walk()
                         if p.get_content_maintype() == "text")  # fmt: skip
        assert RRN not in text
        assert "1234560" not in text
        assert "첨부 명단.xlsx" in text
        assert "주민등록번호 1건 가림" in text


def test_the_preview_is_built_in_seconds(held) -> None:
    """The scan and the preview of a held mail with two office documents and a screenshot,
    LibreOffice started cold: the approvers' mail must not wait tens of seconds."""
    _preview, _asks, seconds = held
    assert seconds < 30


# ------------------------------------------------------------------------------ pure part


def _rendered(pages: list[PageInfo], unchecked: tuple[Unchecked, ...] = (),
              masked: tuple[Masked, ...] = ()) -> RenderedMail:  # fmt: skip
    manifest = Manifest(version=PACKAGE_VERSION, mail_id="", status="rendered", reason=None,
                        headers=HeaderBlock(), pages=tuple(pages), masked=masked,
                        unchecked=unchecked)  # fmt: skip
    return RenderedMail(manifest=manifest, images=tuple(b"img%d" % i for i in range(len(pages))))


def test_a_picture_that_could_not_be_checked_is_left_out_and_named() -> None:
    pages = [PageInfo("image/png", 800, 200, "body", 0),
             PageInfo("image/jpeg", 200, 100, "attachment:shot.png", 0),
             PageInfo("image/png", 800, 1100, "attachment:scan.pdf", 0),
             PageInfo("image/png", 800, 1100, "attachment:scan.pdf", 1)]  # fmt: skip
    unchecked = (Unchecked("attachment:shot.png", 0, "ocr_budget"),
                 Unchecked("attachment:scan.pdf", 2, "ocr_unavailable"))  # fmt: skip
    masked = (Masked("rrn", "header", 0, "text", 1), Masked("rrn", "attachment:scan.pdf", 1,
                                                             "ocr", 2))  # fmt: skip
    preview = from_rendered(_rendered(pages, unchecked, masked), ())
    assert [(p.source, p.page) for p in preview.pages] == [("body", 1), ("attachment:scan.pdf", 1)]
    assert [p.places[0].count for p in preview.pages] == [1, 2]
    assert [item.name for item in preview.left_out] == ["첨부 shot.png", "첨부 scan.pdf 2쪽"]


def test_a_stored_preview_decodes_as_it_was_and_an_old_png_as_one_page() -> None:
    preview = Preview((PreviewPage("image/png", b"\x89PNG...", "body", 1),),
                      (LeftOut("첨부 a.bin", "그림으로 바꾸지 않는 파일 형식입니다"),),
                      ("note",), (("본문", "text"),))  # fmt: skip
    assert Preview.decode(preview.encode()) == preview
    old = b"\x89PNG\r\n\x1a\nold"
    assert Preview.decode(old).pages == (PreviewPage("image/png", old, "text", 1),)
    with pytest.raises(ValueError):
        Preview.decode(b"garbage")


class _FailingPool:
    """A render worker that died on the mail: the pool answers with the headers alone."""

    def __init__(self) -> None:
        self.known: tuple[tuple[str, str], ...] = ()
        self.positions: tuple[object, ...] | None = None
        self.values: tuple[tuple[str, str], ...] = ()

    def render(
        self,
        raw: bytes,
        *,
        known: tuple[tuple[str, str], ...] = (),
        positions: tuple[object, ...] = (),
        values: tuple[tuple[str, str], ...] = (),
    ) -> RenderedMail:
        self.known, self.positions, self.values = known, positions, values
        return headers_only(raw, "timeout")


def test_when_the_worker_draws_nothing_the_scan_text_is_the_preview_and_why_is_named(
    tmp_path,
) -> None:
    pool = _FailingPool()
    parts = build_workflow(tmp_path, previewer=Previewer(pool))
    mail = SpooledMail(new_mail_id(), "kim@corp.example", ("partner@example.com",),
                       parts.clock(), "127.0.0.1", "mx")  # fmt: skip
    parts.spool.store(mail, rrn_mail())
    parts.workflow.accepted(mail)
    parts.workflow.process_received()
    request = parts.state.request_for_mail(mail.mail_id)
    preview = parts.workflow.effects.stored_preview(request.request_id)
    # The scan's numbers went to the worker as digits, to be hidden wherever they are drawn.
    assert pool.known == (("rrn", OTHER_RRN.replace("-", "")),)
    assert pool.positions == ()  # no picture in this mail: no word boxes to paint
    assert pool.values == (("rrn", OTHER_RRN),)  # and its characters, to be found as drawn
    assert [page.source for page in preview.pages] == ["text"]
    assert preview.left_out == (LeftOut("메일 전체", reason_words("timeout", "ko")),)
    assert OTHER_RRN not in repr(preview.sections)
