"""The demo's outbound side: a small staff directory and two mails an employee should not send
without the department head's approval.

An employee of the sales department sends a customer list to a partner, once as a spreadsheet
and once as a screenshot. The inner agent holds both, and the department head finds the
approval requests (personal data masked) in the demo mailbox and decides on the web page.
"""

from __future__ import annotations

import io
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid
from pathlib import Path

import openpyxl
from PIL import Image, ImageDraw, ImageFont

from inner_agent.outbound.directory import Directory

__all__ = [
    "APPROVER",
    "APPROVER_PASSWORD",
    "PARTNER",
    "SENDER",
    "fill_directory",
    "outbound_samples",
]

SENDER = "kim@corp.example"
APPROVER = "lee@corp.example"
# A demo on loopback only: the password is printed for the newcomer to sign in with.
APPROVER_PASSWORD = "demo-approver"  # noqa: S105
PARTNER = "buyer@partner.example"
_HR_CSV = f"""email,name,department,parent_department,role
{SENDER},김민수,영업부,경영본부,
{APPROVER},이부장,영업부,경영본부,head
ceo@corp.example,최대표,경영본부,,head
""".encode()
_CUSTOMERS = [
    ("이름", "주민등록번호", "연락처"),
    ("홍길동", "800101-1234567", "010-1234-5678"),
    ("성춘향", "900215-2345678", "010-2345-6789"),
]
_SCREEN_FONT = Path("/usr/share/fonts/truetype/nanum/NanumGothic.ttf")


def fill_directory(directory_db: Path) -> None:
    """The HR export imported and the department head's password set (before the agent runs)."""
    directory_db.parent.mkdir(parents=True, exist_ok=True)
    directory = Directory(directory_db)
    try:
        directory.import_csv(_HR_CSV, "demo HR export")
        directory.set_password(APPROVER, APPROVER_PASSWORD)
    finally:
        directory.close()


def outbound_samples() -> list[tuple[str, bytes]]:
    """(what it shows, the mail) for each outbound sample; the screenshot only where the
    Korean font to draw it is installed."""
    samples = [("customer list as a spreadsheet: held for approval", _spreadsheet_mail())]
    if _SCREEN_FONT.is_file():
        samples.append(("customer list as a screenshot: held (read by OCR)", _screenshot_mail()))
    return samples


def _base(subject: str, text: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"김민수 <{SENDER}>"
    message["To"] = PARTNER
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain="corp.example")
    message.set_content(text)
    return message


def _spreadsheet_mail() -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in _CUSTOMERS:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    message = _base("고객 명단 송부", "요청하신 고객 명단을 첨부합니다.")
    message.add_attachment(
        out.getvalue(), maintype="application",
        subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet", filename="고객명단.xlsx",
    )  # fmt: skip
    return message.as_bytes(policy=SMTP)


def _screenshot_mail() -> bytes:
    font = ImageFont.truetype(str(_SCREEN_FONT), 16)
    lines = ["   ".join(row) for row in _CUSTOMERS]
    width = 40 + max(int(font.getlength(line)) for line in lines)
    picture = Image.new("RGB", (width, 40 + 26 * len(lines)), "white")
    draw = ImageDraw.Draw(picture)
    for number, line in enumerate(lines):
        draw.text((20, 20 + 26 * number), line, fill="black", font=font)
    out = io.BytesIO()
    picture.save(out, format="PNG")
    message = _base("화면 캡처 보내드립니다", "고객 화면 캡처입니다.")
    message.add_attachment(out.getvalue(), maintype="image", subtype="png", filename="화면.png")
    return message.as_bytes(policy=SMTP)
