"""The monthly review of access records (issue 16.3): per account, with the anomalies an
auditor looks at first — night-time access, bulk exports, bursts of failed sign-ins — in the
site's zone; the workbook opens with openpyxl with Korean headers."""

from __future__ import annotations

import io
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from agentkit.access import AccessRecord, Action
from agentkit.access_review import (
    BULK_EXPORT_ROWS,
    FAILED_BURST,
    month_range,
    review,
    review_xlsx,
)

SEOUL = ZoneInfo("Asia/Seoul")
ADMIN, AUDITOR = "admin@ops.example", "auditor@audit.example"


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=SEOUL).timestamp()


def rec(
    time: str, account: str, action: Action, address: str = "10.1.1.20", **more
) -> AccessRecord:
    return AccessRecord(at(time), account, address, str(action), **more)


NOVEMBER = [
    rec("2026-11-02 09:00:00", ADMIN, Action.SIGNIN),
    rec("2026-11-02 09:05:00", ADMIN, Action.MAIL_VIEWED, mail="m1"),
    rec("2026-11-02 23:40:00", ADMIN, Action.SIGNIN, "10.9.9.9"),  # night
    rec("2026-11-03 01:15:00", ADMIN, Action.IMAGE_VIEWED, "10.9.9.9", mail="m1"),  # night
    rec(
        "2026-11-03 14:00:00",
        AUDITOR,
        Action.EXPORTED,
        count=BULK_EXPORT_ROWS + 200,
        detail="mail search",
    ),
    *(
        rec(f"2026-11-04 10:0{n}:00", AUDITOR, Action.SIGNIN_FAILED, f"10.6.6.{n}", detail="wrong")
        for n in range(FAILED_BURST)
    ),
    rec("2026-11-05 10:00:00", AUDITOR, Action.SIGNIN_FAILED, detail="wrong"),  # one alone
]


def test_month_range_is_in_the_sites_zone():
    since, until = month_range("2026-11", SEOUL)
    assert since == at("2026-11-01 00:00:00")
    assert until == at("2026-12-01 00:00:00")
    assert month_range("2026-12", SEOUL)[1] == at("2027-01-01 00:00:00")
    for bad in ("2026-13", "2026-1", "November", "2026/11"):
        with pytest.raises(ValueError, match="YYYY-MM"):
            month_range(bad, SEOUL)


def test_per_account_counts():
    result = review(NOVEMBER, "2026-11", SEOUL)
    admin, auditor = result.accounts
    assert (admin.account, admin.signins, admin.views, admin.images, admin.night) == (
        ADMIN, 2, 1, 1, 2)  # fmt: skip
    assert admin.addresses == ("10.1.1.20", "10.9.9.9")
    assert (auditor.exports, auditor.exported_rows, auditor.failed) == (
        1, BULK_EXPORT_ROWS + 200, FAILED_BURST + 1)  # fmt: skip


def test_anomalies_night_bulk_export_and_a_burst_of_failed_sign_ins():
    result = review(NOVEMBER, "2026-11", SEOUL)
    found = [(a.kind, a.account, a.detail) for a in result.anomalies]
    assert ("night", ADMIN, "1 access(es) at night, 23:40–23:40") in found
    assert ("night", ADMIN, "1 access(es) at night, 01:15–01:15") in found
    assert ("bulk_export", AUDITOR, "one export of 1200 mails: mail search") in found
    bursts = [a for a in result.anomalies if a.kind == "failed_signins"]
    assert len(bursts) == 1  # the lone failure the next day is no burst
    assert bursts[0].detail.startswith(f"{FAILED_BURST} failed sign-ins from 10.6.6.0, ")
    assert len(found) == 4


def test_office_hours_alone_raise_nothing():
    quiet = [rec("2026-11-02 09:00:00", ADMIN, Action.SIGNIN),
             *(rec(f"2026-11-02 1{n}:00:00", ADMIN, Action.SIGNIN_FAILED) for n in range(4)),
             rec("2026-11-02 21:59:00", ADMIN, Action.EXPORTED, count=10)]  # fmt: skip
    assert review(quiet, "2026-11", SEOUL).anomalies == ()


def test_many_exports_in_a_day_are_a_bulk_export():
    many = [rec(f"2026-11-02 10:{n:02d}:00", AUDITOR, Action.EXPORTED, count=5) for n in range(10)]
    found = [(a.kind, a.detail) for a in review(many, "2026-11", SEOUL).anomalies]
    assert found == [("bulk_export", "10 exports on 2026-11-02")]


def test_the_workbook_opens_with_korean_headers_and_flags_the_anomalies():
    data = review_xlsx(review(NOVEMBER, "2026-11", SEOUL), "ko")
    book = load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["계정별 요약", "이상 징후", "접속기록"]
    summary = list(book["계정별 요약"].values)
    assert summary[0][:3] == ("계정", "로그인", "로그인 실패")
    assert summary[1][0] == ADMIN
    anomalies = list(book["이상 징후"].values)
    assert anomalies[0] == ("시각", "계정", "주소", "종류", "내용")
    kinds = [row[3] for row in anomalies[1:]]
    assert kinds.count("야간 접속") == 2
    assert "로그인 실패 반복" in kinds
    assert "대량 내보내기" in kinds
    night = next(row for row in anomalies[1:] if row[3] == "야간 접속")
    assert night[0] == datetime(2026, 11, 2, 23, 40)  # local time of the site
    records = list(book["접속기록"].values)
    assert len(records) == 1 + len(NOVEMBER)
    assert records[1][3] == "로그인"


def test_the_workbook_keeps_formulas_inert_and_speaks_english_on_request():
    hostile = [rec("2026-11-02 10:00:00", '=HYPERLINK("http://evil.example","x")', Action.SIGNIN)]
    book = load_workbook(io.BytesIO(review_xlsx(review(hostile, "2026-11", SEOUL), "en")))
    assert book.sheetnames == ["accounts", "anomalies", "records"]
    cell = book["records"]["B2"]
    assert cell.data_type == "s"
    assert cell.value.startswith("=HYPERLINK")
    assert book["records"]["D2"].value == "signin"
