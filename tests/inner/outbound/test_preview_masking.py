"""The approval preview masks names with phone numbers (issue 19, Done line 5).

The newcomer trial's brochure listed customers as "홍길동 010-1234-5678, ... 등" and the
"masked" preview printed the numbers in clear: a name with a phone number is personal data.
Asserted on the text the preview shows (``masked_view``: what the request mail's picture and
the approval page draw), in every place it shows: subject, body and an attached list.
"""

from __future__ import annotations

import email
import email.message
import email.policy

from inner_agent.outbound.preview import masked_view
from mailsafe.extract import extract_locations
from mailsafe.mime import parse_message
from tests.support.documents import make_mail

CUSTOMERS = (
    ("홍길동", "010-1234-5678"),
    ("김영희", "010-2345-6789"),
    ("박철수", "02-345-6789"),
    ("이순신", "031-456-7890"),
)


def _preview_text(data: bytes) -> str:
    parsed = parse_message(data)
    view = masked_view(parsed, extract_locations(parsed))
    return "\n".join(text for _, text in (*view.headers, *view.sections))


def test_names_with_phone_numbers_are_masked_in_every_place_the_preview_shows() -> None:
    listed = ", ".join(f"{name} {phone}" for name, phone in CUSTOMERS) + " 등"
    rows = "이름,연락처\n" + "\n".join(f"{name},{phone}" for name, phone in CUSTOMERS)
    data = make_mail(
        subject=f"참석 고객 {CUSTOMERS[0][0]} {CUSTOMERS[0][1]} 외",
        text=f"행사 참석 고객 명단입니다.\n{listed}\n",
        attachments=[("고객명단.csv", rows.encode("utf-8"))],
    )
    shown = _preview_text(data)
    for name, phone in CUSTOMERS:
        assert name in shown  # the approver still sees whose numbers they are
        subscriber = phone.split("-", 1)[1]  # the digits after the area or mobile prefix
        assert subscriber not in shown, f"{phone} shown in clear"
    assert shown.count("010-****-****") >= 3  # subject, body and the list
    assert "02-***-****" in shown
    assert "031-***-****" in shown


def test_a_mail_without_personal_data_is_shown_as_written() -> None:
    """The control: the preview masks findings, not every number."""
    text = "회의는 2026-12-07 14:00, 3층 회의실입니다. 참석 12명."
    assert text in _preview_text(make_mail(text=text))


# ----------------------------------------------------------- the preview as it is drawn


def _customer_list_picture() -> bytes:
    from tests.support.documents import make_screenshot

    return make_screenshot(["고객 명단", *(f"{name} {phone}" for name, phone in CUSTOMERS)])


def test_the_drawn_preview_shows_names_with_their_phone_numbers_painted_over() -> None:
    """The preview the approver sees is pictures drawn by a render worker: read back by OCR,
    no page shows a phone number's digits (the body's list and an attached screenshot of it),
    the names stay readable, and the screenshot's page says the numbers were painted."""
    from inner_agent.outbound.preview import Previewer, known_boxes, preview_pool
    from inner_agent.outbound.scanning import Scanner
    from inner_agent.outbound.spool import SpooledMail, new_mail_id
    from mailsafe.extract import ExtractLimits
    from mailsafe.extract.isolated import AttachmentReader
    from mailsafe.extract.limits import Budget
    from mailsafe.extract.ocr import picture_text
    from mailsafe.policy import default_rules

    listed = ", ".join(f"{name} {phone}" for name, phone in CUSTOMERS) + " 등"
    message = email.message_from_bytes(
        make_mail(text=f"행사 참석 고객 명단입니다.\n{listed}\n"), policy=email.policy.SMTP
    )
    assert isinstance(message, email.message.EmailMessage)
    message.add_attachment(_customer_list_picture(), maintype="image", subtype="png",
                           filename="명단.png")  # fmt: skip
    data = message.as_bytes()
    read = ExtractLimits(ocr_languages="kor+eng")
    mail = SpooledMail(new_mail_id(), "kim@corp.example", ("partner@example.com",), 0.0,
                       "127.0.0.1", "mx")  # fmt: skip
    with AttachmentReader(read) as reader:
        scanned = Scanner(default_rules(), reader).scan(mail, data, lambda _address: None)
    assert {position.file for _, position in known_boxes(scanned)} == {"명단.png"}
    with preview_pool("kor+eng") as pool:
        preview = Previewer(pool).preview(data, scanned)
    sources = {page.source for page in preview.pages}
    assert {"body", "attachment:명단.png"} <= sources, sources
    for page in preview.pages:
        shown = "".join(picture_text(page.data, Budget(read)).split())
        for _name, phone in CUSTOMERS:
            subscriber = phone.split("-", 1)[1].replace("-", "")
            assert subscriber not in shown.replace("-", ""), (page.title, shown)
        if page.source == "body":
            assert "홍길동" in shown, shown  # whose numbers they are stays readable
    pictured = next(p for p in preview.pages if p.source == "attachment:명단.png")
    assert ("phone", "ocr") in {(place.type, place.method) for place in pictured.places}
