"""The demo's sample mails: what an employee's inbox gets from the internet on a normal day."""

from __future__ import annotations

from email.header import Header
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid
from pathlib import Path

from mailsafe.mupdf import pymupdf as fitz

__all__ = ["sample_mails"]

KOREAN_FONTS = (
    Path("/usr/share/fonts/truetype/nanum/NanumGothic.ttf"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
)


def _base(sender: str, rcpt: str, subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = rcpt
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain="partner.example")
    return message


def newsletter(rcpt: str) -> EmailMessage:
    message = _base("한국산업뉴스 <news@partner.example>", rcpt, "[뉴스레터] 11월 산업 동향")
    message.set_content(
        "11월 산업 동향: 반도체 수출이 늘었습니다. 자세한 내용은 HTML 본문을 보세요."
    )
    message.add_alternative(
        """<html><body style="font-family:sans-serif">
<h1 style="color:#1a4d8f">11월 산업 동향</h1>
<p>안녕하세요, 구독자 여러분. 이번 달 주요 소식을 전해 드립니다.</p>
<ul><li>반도체 수출 12% 증가</li><li>전기차 배터리 신규 공장 착공</li>
<li>금융권 망분리 규제 완화 논의</li></ul>
<table border="1" cellpadding="4"><tr><th>품목</th><th>전월 대비</th></tr>
<tr><td>반도체</td><td>+12%</td></tr><tr><td>자동차</td><td>+3%</td></tr></table>
<p><a href="https://partner.example/unsubscribe">수신 거부</a>
<img src="https://tracker.partner.example/open.gif" width="1" height="1"></p>
<script>alert('this never runs')</script>
</body></html>""",
        subtype="html",
    )
    return message


def quote_pdf() -> bytes:
    document = fitz.open()
    page = document.new_page()
    font = next((p for p in KOREAN_FONTS if p.exists()), None)
    lines = ["견적서 (Quotation)", "", "품목: 산업용 센서 100개", "단가: 12,000원",
             "합계: 1,200,000원 (부가세 별도)", "", "유효기간: 30일"]  # fmt: skip
    for index, line in enumerate(lines):
        if font is not None:
            page.insert_text((72, 90 + 24 * index), line, fontsize=14, fontname="kr",
                             fontfile=str(font))  # fmt: skip
        else:
            page.insert_text((72, 90 + 24 * index), line, fontsize=14, fontname="korea")
    document.subset_fonts()  # a whole CJK font would make a 6 MB attachment
    data = document.tobytes(garbage=3, deflate=True)
    document.close()
    return bytes(data)


def pdf_attachment(rcpt: str) -> EmailMessage:
    message = _base("박영희 <park@supplier.example>", rcpt, "견적서 송부드립니다")
    message.set_content("안녕하세요,\n요청하신 견적서를 첨부합니다.\n감사합니다.\n박영희 드림")
    message.add_attachment(quote_pdf(), maintype="application", subtype="pdf",
                           filename="견적서.pdf")  # fmt: skip
    return message


def withheld_exe(rcpt: str) -> EmailMessage:
    message = _base("IT Support <support@vendor.example>", rcpt, "Urgent: install the update")
    message.set_content("Please run the attached installer today.")
    installer = b"MZ\x90\x00" + b"\x00" * 1020 + b"This program cannot be run in DOS mode." * 30000
    message.add_attachment(installer, maintype="application", subtype="octet-stream",
                           filename="setup.exe")  # fmt: skip
    return message


def legacy_charset(rcpt: str) -> bytes:
    """A mail as old Korean systems still send it: EUC-KR body and subject, no UTF-8."""
    subject = Header("회의 일정 안내 (EUC-KR)", "euc-kr").encode()
    body = "다음 주 화요일 오후 2시에 정기 회의가 있습니다.\n장소: 본사 3층 회의실\n".encode(
        "euc-kr"
    )
    headers = (
        f"From: =?euc-kr?B?wMyxuLnO?= <lee@oldsystem.example>\r\nTo: {rcpt}\r\n"
        f"Subject: {subject}\r\nDate: {formatdate(localtime=True)}\r\n"
        f"Message-ID: {make_msgid(domain='oldsystem.example')}\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=euc-kr\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    )
    return headers.encode("ascii") + body.replace(b"\n", b"\r\n")


def sample_mails(rcpt: str) -> list[tuple[str, bytes]]:
    """(what it shows, raw message) for each sample."""
    return [
        (
            "Korean HTML newsletter (links, tracker and script removed)",
            newsletter(rcpt).as_bytes(policy=SMTP),
        ),
        (
            "PDF quotation attachment, rendered page by page",
            pdf_attachment(rcpt).as_bytes(policy=SMTP),
        ),
        ("setup.exe attachment: withheld and listed", withheld_exe(rcpt).as_bytes(policy=SMTP)),
        ("EUC-KR legacy-charset mail", legacy_charset(rcpt)),
    ]
