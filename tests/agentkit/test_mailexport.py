"""Search results and statistics exported to Excel and CSV: Korean headers, nothing runs."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from openpyxl import load_workbook

from agentkit.audit import AuditLog
from agentkit.mailindex import MailIndex, MailQuery, StatsQuery
from agentkit.mailindex.export import csv_chunks, mail_table, stats_table, write_xlsx

SEOUL = ZoneInfo("Asia/Seoul")
EVIL = '=HYPERLINK("http://evil.example","클릭")'


def index_of(tmp_path: Path) -> MailIndex:
    log = AuditLog(tmp_path / "audit.db", agent="inner", clock=lambda: 1_793_500_200.0)
    log.record("m1", "received_inside", mail_from="a@partner.example", subject=EVIL,
               rcpts=["u1@corp.example", "u2@corp.example"], attachments=["+cmd.xlsx"],
               attachment_count=1, client="203.0.113.5")  # fmt: skip
    log.record("m1", "injected", part=1)
    log.record("m2", "accepted_outbound", mail_from="kim@corp.example", rcpts=["-x@ext.example"])
    log.close()
    index = MailIndex(tmp_path / "audit.db")
    index.catch_up()
    return index


def test_search_results_open_in_excel_with_korean_headers_and_inert_text(tmp_path: Path) -> None:
    index = index_of(tmp_path)
    table = mail_table(index.iter_mails(MailQuery(), SEOUL), "ko", "Asia/Seoul")
    write_xlsx(table, tmp_path / "mails.xlsx", title="메일 검색")
    sheet = load_workbook(tmp_path / "mails.xlsx").active
    rows = [list(r) for r in sheet.iter_rows()]
    header = [c.value for c in rows[0]]
    assert header[:6] == [
        "시각 (Asia/Seoul)",
        "방향",
        "처리 결과",
        "보낸 사람",
        "받는 사람",
        "제목",
    ]
    assert "첨부파일" in header
    assert "접속 IP" in header
    inbound = next(r for r in rows[1:] if r[header.index("메일 ID")].value == "m1")
    cell = inbound[header.index("제목")]
    assert (cell.data_type, cell.value) == ("s", EVIL)  # text, exactly as it came
    assert inbound[header.index("첨부파일")].data_type == "s"
    assert [inbound[i].value for i in (1, 2)] == ["수신", "전달"]
    assert inbound[header.index("받는 사람")].value == "u1@corp.example, u2@corp.example"
    assert inbound[0].value == datetime(2026, 11, 1, 11, 30)  # local time in Seoul, a date cell
    assert inbound[header.index("첨부 수")].value == 1  # counts stay numbers
    assert sheet.freeze_panes == "A2"


def test_search_results_as_csv_with_a_byte_order_mark_and_neutral_formulas(tmp_path: Path) -> None:
    index = index_of(tmp_path)
    text = "".join(csv_chunks(mail_table(index.iter_mails(MailQuery(), SEOUL), "ko", "Asia/Seoul")))
    assert text.startswith("\ufeff시각 (Asia/Seoul),방향,처리 결과")
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    header = rows[0]
    by_id = {r[header.index("메일 ID")]: r for r in rows[1:]}
    assert by_id["m1"][header.index("제목")] == "'" + EVIL
    assert by_id["m1"][header.index("첨부파일")] == "'+cmd.xlsx"
    assert by_id["m2"][header.index("받는 사람")] == "'-x@ext.example"
    assert by_id["m2"][header.index("처리 결과")] == "처리 중"
    assert by_id["m1"][0] == "2026-11-01 11:30:00"
    assert text.encode("utf-8").startswith(b"\xef\xbb\xbf")


def test_english_headers_and_labels(tmp_path: Path) -> None:
    index = index_of(tmp_path)
    header, rows = mail_table(index.iter_mails(MailQuery(direction="in"), SEOUL), "en", "UTC")
    assert header[:3] == ["time (UTC)", "direction", "outcome"]
    assert rows[0][1:3] == ["inbound", "delivered"]


def test_statistics_to_excel_and_csv(tmp_path: Path) -> None:
    index = index_of(tmp_path)
    query = StatsQuery("month", "outcome", SEOUL)
    table = stats_table(index.statistics(query), query, "ko")
    assert table == (
        ["월", "처리 결과", "메일 수"],
        [["2026-11", "전달", 1], ["2026-11", "처리 중", 1]],
    )
    write_xlsx(table, tmp_path / "stats.xlsx", title="통계")
    sheet = load_workbook(tmp_path / "stats.xlsx").active
    assert [[c.value for c in r] for r in sheet.iter_rows()] == [
        ["월", "처리 결과", "메일 수"], ["2026-11", "전달", 1], ["2026-11", "처리 중", 1]]  # fmt: skip
    by_domain = StatsQuery("year", "sender-domain", SEOUL)
    header, _ = stats_table(index.statistics(by_domain), by_domain, "en")
    assert header == ["year", "sender domain", "mails"]
    text = "".join(csv_chunks(stats_table(index.statistics(by_domain), by_domain, "ko")))
    assert text.splitlines()[0] == "\ufeff연도,보낸 도메인,메일 수"
