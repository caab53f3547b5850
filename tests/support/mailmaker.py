"""Build test mails (raw bytes) and PDFs; shared by the mailsafe tests and the render benchmark."""

from __future__ import annotations

import base64
import io
from email.message import EmailMessage
from email.policy import SMTP

from PIL import Image

from mailsafe.mupdf import pymupdf

KOREAN = "안녕하세요 똠방각하 한국어 메일입니다"  # 똠 is only in CP949, not in EUC-KR


def korean_legacy_mail(charset: str, encoding: str = "base64") -> bytes:
    """A text mail whose subject and body are in ``charset`` (EUC-KR family, ISO-2022-KR)."""
    codec = {"ks_c_5601-1987": "cp949", "euc-kr": "cp949"}.get(charset.lower(), charset)
    text = KOREAN if codec == "cp949" else KOREAN.replace("똠", "돔")
    body = text.encode(codec)
    subject = base64.b64encode(text.encode(codec)).decode()
    payload = base64.encodebytes(body).decode() if encoding == "base64" else body.decode("latin-1")
    return (
        f"From: =?{charset}?B?{subject}?= <a@example.com>\r\n"
        "To: b@example.org\r\n"
        f"Subject: =?{charset}?B?{subject}?=\r\n"
        "MIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset={charset}\r\n"
        f"Content-Transfer-Encoding: {encoding}\r\n\r\n" + payload
    ).encode("latin-1")


def html_mail(
    html: str, subject: str = "HTML mail", images: dict[str, bytes] | None = None
) -> bytes:
    message = EmailMessage()
    message["From"] = "보내는 사람 <sender@example.com>"
    message["To"] = "receiver@example.org"
    message["Subject"] = subject
    message.set_content("plain alternative")
    message.add_alternative(html, subtype="html")
    html_part = message.get_payload()[1]
    for cid, data in (images or {}).items():
        html_part.add_related(data, "image", "png", cid=f"<{cid}>")
    return message.as_bytes(policy=SMTP)


def png(width: int = 40, height: int = 30, colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


def pdf_pages(count: int, text: str = "PDF page") -> bytes:
    document = pymupdf.open()
    for number in range(count):
        page = document.new_page()
        page.insert_text((72, 72), f"{text} {number + 1}", fontsize=20)
        for line in range(40):
            page.insert_text(
                (72, 110 + line * 16), f"line {line} of a typical report " * 2, fontsize=10
            )
    data = document.tobytes()
    document.close()
    return bytes(data)


def pdf_of_sizes(sizes: list[tuple[float, float]]) -> bytes:
    """A PDF with one page per (width, height) in points, each saying its size."""
    document = pymupdf.open()
    for width, height in sizes:
        page = document.new_page(width=width, height=height)
        page.insert_text((36, 60), f"page of {width:g} x {height:g} pt", fontsize=20)
    data = document.tobytes()
    document.close()
    return bytes(data)


def mail_with_attachment(data: bytes, filename: str, maintype: str, subtype: str) -> bytes:
    message = EmailMessage()
    message["From"] = "sender@example.com"
    message["To"] = "receiver@example.org"
    message["Subject"] = f"with {filename}"
    message.set_content("See the attachment.")
    message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes(policy=SMTP)


TYPICAL_HTML = (
    """<html><body style="font-family: sans-serif">
<table width="100%" cellpadding="8"><tr><td bgcolor="#1d4e89" style="color: #ffffff">
<h2>주간 소식 Weekly update</h2></td></tr>
<tr><td><p>안녕하세요, 고객님. This is a typical newsletter with a few paragraphs of text,
a table and an inline logo.</p>
<img src="cid:logo" width="120" height="40" alt="logo">
<table border="1" cellpadding="4"><tr><th>항목</th><th>금액</th></tr>
<tr><td>서비스 이용료</td><td>12,000원</td></tr><tr><td>부가세</td><td>1,200원</td></tr></table>
"""
    + "<p>본문 문단입니다. Paragraph of body text that wraps over several lines in a mail client "
    * 12
    + """
</td></tr></table></body></html>"""
)


def cpu_heavy_pdf(lines: int = 20000) -> bytes:
    """One page of ``lines`` random strokes: small file, seconds of rasterising (a CPU bomb)."""
    import random

    document = pymupdf.open()
    page = document.new_page()
    page.insert_text((10, 10), "x")
    rng = random.Random(1)
    ops = [
        f"{rng.randint(0, 595)} {rng.randint(0, 842)} m {rng.randint(0, 595)} {rng.randint(0, 842)} l S"
        for _ in range(lines)
    ]
    document.update_stream(page.get_contents()[0], ("0.1 w\n" + "\n".join(ops)).encode())
    data = document.tobytes(deflate=True)
    document.close()
    return bytes(data)


def newsletter_html(number: int) -> str:
    """A typical newsletter-style HTML body: headings, a table, Korean and English text, a
    remote tracker (never fetched). Shared by the intake and end-to-end benchmarks."""
    rows = "".join(
        f"<tr><td>{i}</td><td>상품 {i} 안내</td><td style='text-align:right'>{i * 1200:,}원</td></tr>"
        for i in range(1, 25)
    )
    paragraph = (
        "고객님께 이번 달 새 소식을 전해 드립니다. 자세한 내용은 아래 표를 확인해 주십시오. "
        "This month's news for our partners, with the price list below. "
    ) * 6
    return (
        "<html><head><style>body{font-family:sans-serif;color:#222} h1{color:#0a4}"
        "td{border-bottom:1px solid #ddd;padding:4px}</style></head><body>"
        f"<h1>월간 소식 {number}</h1><p>{paragraph}</p><table>{rows}</table>"
        f"<h2>공지</h2><p>{paragraph}</p><p><a href='https://example.com/x'>자세히 보기</a></p>"
        "<img src='https://example.com/track.png' width=1 height=1></body></html>"
    )
