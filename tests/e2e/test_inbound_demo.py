"""``maildiode demo``: a newcomer sees the sample notifications, Korean included, and the
approval requests for two held outbound mails, within a minute."""

from __future__ import annotations

import io
import re
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from email import message_from_bytes, policy
from pathlib import Path

import openpyxl
import pytest

from maildiode.trial.stack import free_port, wait_for

pytestmark = pytest.mark.e2e


def test_demo_delivers_every_sample_and_stops_cleanly(tmp_path: Path) -> None:
    web_port = free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "maildiode", "demo", "--dir", str(tmp_path / "demo"),
         "--web-port", str(web_port), "--exit-after", "120"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    new = tmp_path / "demo" / "mailbox" / "new"
    try:
        # 4 notifications, and for each of the 2 held outbound mails a request and a notice
        wait_for(lambda: new.is_dir() and len(list(new.iterdir())) >= 8, 90, "8 mails")
        page = urllib.request.urlopen(f"http://127.0.0.1:{web_port}/").read().decode()
        approve_as_the_head(new, "고객 명단 송부")
        internet = tmp_path / "demo" / "internet" / "new"
        wait_for(lambda: any(internet.iterdir()), 60, "the approved mail on the internet side")
        demo.send_signal(signal.SIGINT)  # Ctrl-C
        output, _ = demo.communicate(timeout=90)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode == 0, output.decode(errors="replace")
    assert "[외부메일] 견적서 송부드립니다" in page
    everything = [message_from_bytes(p.read_bytes(), policy=policy.default) for p in new.iterdir()]
    messages = [m for m in everything if str(m["To"]) == "user@corp.example"]
    subjects = sorted(str(m["Subject"]) for m in messages)
    assert subjects == sorted([
        "[외부메일] [뉴스레터] 11월 산업 동향", "[외부메일] 견적서 송부드립니다",
        "[외부메일] Urgent: install the update", "[외부메일] 회의 일정 안내 (EUC-KR)",
    ])  # fmt: skip
    by_subject = {str(m["Subject"]): m for m in messages}
    exe = by_subject["[외부메일] Urgent: install the update"].get_body(("plain",)).get_content()
    assert "setup.exe" in exe
    legacy = by_subject["[외부메일] 회의 일정 안내 (EUC-KR)"].get_body(("plain",)).get_content()
    assert "정기 회의" in legacy  # EUC-KR body decoded
    pdf = by_subject["[외부메일] 견적서 송부드립니다"]
    images = [p for p in pdf.walk() if p.get_content_maintype() == "image"]
    assert len(images) >= 2  # the body and the PDF's page
    assert b"stopped." in output
    # Outbound: the spreadsheet and the screenshot (read by OCR) are both held for the head.
    requests = sorted(str(m["Subject"]) for m in everything if str(m["To"]) == "lee@corp.example")
    assert requests == [
        "[승인 요청] kim@corp.example: 고객 명단 송부",
        "[승인 요청] kim@corp.example: 화면 캡처 보내드립니다",
    ]
    for message in everything:
        texts = [p.get_content() for p in message.walk() if p.get_content_maintype() == "text"]
        assert "800101-1234567" not in "".join(texts)  # masked everywhere
    request = next(m for m in everything if str(m["To"]) == "lee@corp.example")
    assert "800101-1******" in request.get_body(("plain",)).get_content()
    assert b"password: demo-approver" in output
    delivered = [message_from_bytes(p.read_bytes(), policy=policy.default)
                 for p in internet.iterdir()]  # fmt: skip
    assert [str(m["To"]) for m in delivered] == ["buyer@partner.example"]
    sheet = next(part for part in delivered[0].walk() if part.get_filename() == "고객명단.xlsx")
    workbook = openpyxl.load_workbook(io.BytesIO(sheet.get_content()))
    cells = [cell for row in workbook.active.iter_rows(values_only=True) for cell in row]
    assert "800101-1234567" in cells  # the original mail, unmasked, left after approval


def approve_as_the_head(mailbox: Path, subject: str) -> None:
    """Follow the request mail's approve link, sign in with the printed password, approve."""
    request = next(
        m for m in (message_from_bytes(p.read_bytes(), policy=policy.default)
                    for p in mailbox.iterdir())
        if str(m["Subject"]).endswith(subject) and "승인 요청" in str(m["Subject"])
    )  # fmt: skip
    link = re.search(r"승인: (\S+)", request.get_body(("plain",)).get_content()).group(1)
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    login = browser.open(link).read().decode()  # redirected to the sign-in page
    fields = dict(re.findall(r'name="(csrf|next)" value="([^"]*)"', login))
    form = {**fields, "email": "lee@corp.example", "password": "demo-approver"}
    page = browser.open(link.split("/requests/")[0] + "/login",
                        urllib.parse.urlencode(form).encode()).read().decode()  # fmt: skip
    approve = re.search(r'action="([^"]+/decide)".*?name="csrf" value="([^"]+)".*?'
                        r'name="token" value="([^"]+)"', page, re.S)  # fmt: skip
    assert approve is not None, page[:500]
    target, csrf, token = approve.groups()
    form = {"csrf": csrf, "token": token, "action": "approve"}
    base = link.split("/requests/")[0]
    browser.open(base + target, urllib.parse.urlencode(form).encode()).read()
