"""The approval preview masks names with phone numbers (issue 19, Done line 5).

The newcomer trial's brochure listed customers as "홍길동 010-1234-5678, ... 등" and the
"masked" preview printed the numbers in clear: a name with a phone number is personal data.
Asserted on the text the preview shows (``masked_view``: what the request mail's picture and
the approval page draw), in every place it shows: subject, body and an attached list.
"""

from __future__ import annotations

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
