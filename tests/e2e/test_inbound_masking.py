"""Masking end to end (issue 17, the first "Done means" line): both agents as processes, a
hostile linkage both ways, a real Postfix. A mail carrying a valid resident registration
number in its body, in a text PDF and in a PNG screenshot reaches the mailbox, under the
built-in inbound rules, with the number masked: what OCR (``mailsafe.extract.ocr``, read as
text and as words with boxes) reads in every delivered picture, and the text layer, hold no
13-digit number, with or without its hyphen, and none of the digits the mask hides; the
notification says what was masked and by which rule.

The control: the same pipeline, after the rules gained a loan desk's exemption (``mask = []``),
carries the same mail to the loan desk with the number readable in every picture and in the
text; the same checks then find it, so they can fail.
"""

from __future__ import annotations

import html
import io
import re
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from PIL import Image

from maildiode.trial.stack import wait_for
from mailsafe.extract.limits import Budget, ExtractLimits
from mailsafe.extract.ocr import grey_picture, image_reading, picture_text
from mailsafe.inbound_rules import DEFAULT_INBOUND_RULES_TOML
from mailsafe.mupdf import pymupdf
from tests.support.documents import make_clipped_xlsx, make_page_break_docx, make_screenshot
from tests.support.receive_filters import FilterStack

pytestmark = pytest.mark.e2e

RRN = "850315-2749188"  # a valid date, gender digit and check digit
FRONT, GENDER, HIDDEN = RRN[:6], RRN[7], RRN[8:]  # the mask shows FRONT-GENDER, hides HIDDEN
RRN_MASKED = f"{FRONT}-{GENDER}******"
# What must never be read: 13 digits in a row, or 6 and 7 around a hyphen.
WHOLE_NUMBER_RE = re.compile(r"\d{13}|\d{6}-\d{7}")
# A digit read after the part the mask shows: the hidden digits begin there.
AFTER_SHOWN_RE = re.compile(rf"{FRONT}\s*[-‐‑‒–—]?\s*{GENDER}\s*\d")
# Any four hidden digits in a row, wherever OCR put them.
HIDDEN_PIECES = tuple(HIDDEN[i : i + 4] for i in range(len(HIDDEN) - 3))
# Words the test writes in each place, so each delivered picture is known by what OCR reads.
ANCHORS = {"body": "BODYTEXT", "pdf": "PDFPAGE", "screenshot": "SCREENSHOT"}
USER, LOAN = "user@corp.example", "loan@corp.example"
READ = ExtractLimits(ocr_languages="kor+eng", ocr_max_pixels=16_000_000, ocr_max_seconds=60,
                     max_seconds=70)  # fmt: skip
LOAN_DESK = """
[[rule]]
id = "loan-desk-full-numbers"
description = "여신팀은 대출 심사에 전체 번호가 필요함 (마스킹 예외)"
action = "mask"
mask = []
scope = "users"
users = ["loan@corp.example"]
"""


def _mail(token: str, rcpts: list[str]) -> EmailMessage:
    document = pymupdf.open()
    page = document.new_page()
    page.insert_text((72, 72), ANCHORS["pdf"], fontsize=14)
    page.insert_text((72, 100), f"주민등록번호 {RRN}", fontname="korea", fontsize=14)
    pdf = document.tobytes()
    shot = make_screenshot([ANCHORS["screenshot"], f"김철수 주민등록번호 {RRN}"])
    message = EmailMessage()
    message["From"] = "김철수 <kim@partner.example>"
    message["To"] = ", ".join(rcpts)
    message["Subject"] = f"{token} 대출 신청서 제출"
    message["Message-ID"] = f"<{token}@partner.example>"
    message.set_content(f"{ANCHORS['body']}\n주민등록번호: {RRN}\n")
    message.add_alternative(  # the number across an inline element, as mail writers make it
        f"<p>{ANCHORS['body']}</p><p>주민등록번호: <b>{RRN[:6]}</b>{RRN[6:]}</p>", subtype="html"
    )
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename="신청서.pdf")
    message.add_attachment(shot, maintype="image", subtype="png", filename="화면.png")
    return message


@dataclass(frozen=True)
class Shown:
    """What a reader of one notification sees: its text parts, and each picture as OCR reads
    it (as plain text, and as the words with boxes the masker reads)."""

    plain: str
    html_text: str
    pictures: tuple[str, ...]

    def picture(self, place: str) -> str:
        (found,) = [read for read in self.pictures if ANCHORS[place] in read]
        return found


def _read(notification: EmailMessage) -> Shown:
    plain = notification.get_body(("plain",))
    markup = notification.get_body(("html",))
    assert plain is not None
    assert markup is not None
    pictures = []
    for part in notification.walk():
        if part.get_content_maintype() == "image":
            data = part.get_content()
            assert grey_picture(data, READ.ocr_max_pixels) is not None  # big enough to be read
            words = image_reading(Image.open(io.BytesIO(data)), Budget(READ))
            assert not isinstance(words, str), words  # Tesseract ran
            lines = words.text
            pictures.append(picture_text(data, Budget(READ)) + "\n" + lines)
    text_of_html = html.unescape(re.sub(r"<[^>]+>", " ", markup.get_content()))
    return Shown(plain.get_content(), text_of_html, tuple(pictures))


def _leaks(read: str) -> list[str]:
    """What of the number ``read`` shows beyond its masked form (empty: nothing)."""
    flat = re.sub(r"\s", "", read)
    found = WHOLE_NUMBER_RE.findall(flat)
    found += [m.group() for line in read.splitlines() for m in AFTER_SHOWN_RE.finditer(line)]
    return found + [piece for piece in HIDDEN_PIECES if piece in flat]


def _notification(stack: FilterStack, token: str, to: str) -> EmailMessage:
    wait_for(lambda: stack.count(token, to=to) >= 1, 180, f"{token}'s notification to {to}")
    (found,) = [m for m in stack.stack.delivered()
                if str(m["To"]) == to and token in str(m["Subject"]).split()]  # fmt: skip
    return found


def _assert_masked_everywhere(shown: Shown) -> None:
    assert len(shown.pictures) == 3, shown.pictures  # the body, the PDF's page, the screenshot
    for place in ANCHORS:
        assert not _leaks(shown.picture(place)), (place, shown.picture(place))
    assert not _leaks(shown.plain), shown.plain
    assert not _leaks(shown.html_text), shown.html_text
    assert RRN_MASKED in shown.plain  # the text layer has the body, masked (not dropped)
    # what was masked, where, and by which rule
    (said,) = [line for line in shown.plain.splitlines() if "주민등록번호 3건을 가렸습니다" in line]
    assert all(place in said for place in ("body", "신청서.pdf", "화면.png")), said
    assert "가린 개인정보(주민등록번호)는 기본 수신 정책이 정한 것입니다." in shown.plain


def test_a_resident_number_in_body_pdf_and_screenshot_reaches_the_mailbox_masked(
    tmp_path: Path,
) -> None:
    with FilterStack(tmp_path / "stack", rules=None, seed=31) as stack:  # the built-in rules
        stack.wait_policy(1)
        stack.stack.send(_mail("mask-on", [USER]), [USER])
        _assert_masked_everywhere(_read(_notification(stack, "mask-on", USER)))
        masked = stack.outer_steps("inbound_masked")
        assert [(e["rule"], e["count"]) for e in masked] == [("default_mask", 3)]

        # The control: the same pipeline, a loan desk exempt by rule, the same mail to both.
        stack.use_rules(DEFAULT_INBOUND_RULES_TOML + LOAN_DESK)
        stack.wait_policy(2)
        stack.stack.send(_mail("mask-exempt", [USER, LOAN]), [USER, LOAN])
        _assert_masked_everywhere(_read(_notification(stack, "mask-exempt", USER)))
        exempt = _read(_notification(stack, "mask-exempt", LOAN))
        assert len(exempt.pictures) == 3
        for place in ANCHORS:  # the checks above find the number when it is there
            assert _leaks(exempt.picture(place)), (place, exempt.picture(place))
        assert RRN in exempt.plain
        assert _leaks(exempt.plain)
        assert "가렸습니다" not in exempt.plain
        # each notification once, replays and duplicates on the link or not
        wait_for(lambda: stack.stack.recv_empty() and stack.stack.carrier.idle()
                 and stack.out_carrier.idle(), 60, "the carriers' replays")  # fmt: skip
        counts = [stack.count(t, to=to) for t, to in
                  (("mask-on", USER), ("mask-exempt", USER), ("mask-exempt", LOAN))]  # fmt: skip
        assert counts == [1, 1, 1]


# Rules that read the documents' text (a condition that never holds): the receive filters read
# the mail's documents for them, and masking takes that reading (D105).
READING_RULES = (
    DEFAULT_INBOUND_RULES_TOML
    + """
[[rule]]
id = "never-matches"
action = "block"
[[rule.condition]]
field = "attachment_content"
contains = "NEVER-IN-THIS-MAIL"
"""
)


def _cut_mail(token: str) -> EmailMessage:
    """A DOCX whose first page ends with the number's first half and whose second begins
    with the rest; an XLSX whose narrow cell, not wrapped, shows only the number's start."""
    docx = make_page_break_docx(["줄 1", "줄 2", "줄 3", "DOCXPAGE"], f"번호 {RRN} ENDPAGE")
    xlsx = make_clipped_xlsx([["XLSXPAGE", "번호", "부서"], ["김철수", RRN, "영업부"]], 12)
    message = EmailMessage()
    message["From"] = "김철수 <kim@partner.example>"
    message["To"] = USER
    message["Subject"] = f"{token} 명단"
    message["Message-ID"] = f"<{token}@partner.example>"
    message.set_content("CUTBODY\n명단을 보냅니다.\n")
    for name, data, kind in (("쪽.docx", docx, "vnd.openxmlformats-officedocument."
                              "wordprocessingml.document"),
                             ("칸.xlsx", xlsx, "vnd.openxmlformats-officedocument."
                              "spreadsheetml.sheet")):  # fmt: skip
        message.add_attachment(data, maintype="application", subtype=kind, filename=name)
    return message


def test_a_number_cut_by_a_page_break_or_a_cells_border_reaches_the_mailbox_masked(
    tmp_path: Path,
) -> None:
    """D105, as an employee sees it: neither the second page's half of the number nor the
    digits a narrow cell shows of it are readable in the delivered pictures."""
    with FilterStack(tmp_path / "stack", rules=READING_RULES, seed=32) as stack:
        stack.wait_policy(1)
        stack.stack.send(_cut_mail("mask-cut"), [USER])
        shown = _read(_notification(stack, "mask-cut", USER))
    first, second, cells = (next(read for read in shown.pictures if anchor in read)
                            for anchor in ("DOCXPAGE", "ENDPAGE", "XLSXPAGE"))  # fmt: skip
    assert FRONT in re.sub(r"\s", "", first)  # the break fell inside the number
    for read in (first, second, cells):
        assert not _leaks(read), read
    assert not re.search(rf"{GENDER}\s*{HIDDEN[:2]}", re.sub(r"\s", "", second)), second
