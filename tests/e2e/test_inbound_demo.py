"""``maildiode demo``: a newcomer sees the sample notifications, Korean included, within a minute."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from maildiode.demo.stack import free_port, wait_for

pytestmark = pytest.mark.e2e


def test_demo_delivers_every_sample_and_stops_cleanly(tmp_path: Path) -> None:
    web_port = free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "maildiode", "demo", "--dir", str(tmp_path / "demo"),
         "--web-port", str(web_port), "--exit-after", "15"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    new = tmp_path / "demo" / "mailbox" / "new"
    try:
        wait_for(lambda: new.is_dir() and len(list(new.iterdir())) >= 4, 90, "4 notifications")
        page = urllib.request.urlopen(f"http://127.0.0.1:{web_port}/").read().decode()
        output, _ = demo.communicate(timeout=90)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode == 0, output.decode(errors="replace")
    assert "[외부메일] 견적서 송부드립니다" in page
    messages = [message_from_bytes(p.read_bytes(), policy=policy.default) for p in new.iterdir()]
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
