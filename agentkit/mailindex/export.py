"""Search results and statistics as spreadsheets: XLSX and CSV, Korean or English headers.

The tables are pure (``mail_table``, ``stats_table``: header and rows of cells, one column
per field); the writers put them in a file or a stream. Korean is the default language: the
headers, the directions and the outcomes are in Korean; English names them in English.

Every value that came from a mail (a subject, an address, a file name) is written so a
spreadsheet never runs it nor reorders it (each invisible character a ``⟨U+XXXX⟩``): in XLSX
every text cell is typed as text (``=HYPERLINK(...)`` stays those characters, unchanged), in
CSV a cell starting like a formula gets the leading apostrophe of ``agentkit.csvsafe``. CSV files
start with a UTF-8 byte-order mark: without it Excel reads UTF-8 as the local code page and
Korean turns to mojibake.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Literal

from agentkit.csvsafe import InertWriter
from agentkit.mailindex.query import StatsQuery
from mailsafe.lookalike import reveal_invisible

__all__ = [
    "DIRECTION_LABELS",
    "LANGUAGES",
    "MAIL_COLUMNS",
    "OUTCOME_LABELS",
    "Language",
    "csv_chunks",
    "mail_table",
    "stats_table",
    "write_xlsx",
]

Language = Literal["ko", "en"]
LANGUAGES: tuple[Language, ...] = ("ko", "en")
Cell = str | int | float | datetime | None
Table = tuple[list[str], list[list[Cell]]]

# field of a mail (shapes.MAIL_FIELDS), Korean header, English header
MAIL_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("time", "시각", "time"),
    ("direction", "방향", "direction"),
    ("outcome", "처리 결과", "outcome"),
    ("sender", "보낸 사람", "sender"),
    ("recipients", "받는 사람", "recipients"),
    ("subject", "제목", "subject"),
    ("client", "접속 IP", "client address"),
    ("rule", "규칙", "rule"),
    ("reason", "사유", "reason"),
    ("attachments", "첨부파일", "attachments"),
    ("attachment_count", "첨부 수", "attachment count"),
    ("size", "크기(바이트)", "size (bytes)"),
    ("department", "부서", "department"),
    ("last_time", "마지막 처리 시각", "last event"),
    ("id", "메일 ID", "mail id"),
)
DIRECTION_LABELS: dict[str, tuple[str, str]] = {
    "in": ("수신", "inbound"),
    "out": ("발신", "outbound"),
}
OUTCOME_LABELS: dict[str, tuple[str, str]] = {
    "delivered": ("전달", "delivered"),
    "withheld": ("첨부 제외 전달", "delivered, attachments withheld"),
    "quarantined": ("격리", "quarantined"),
    "refused": ("거부", "refused"),
    "deferred": ("전달 지연", "deferred"),
    "bounced": ("반송", "bounced"),
    "blocked": ("차단", "blocked"),
    "rejected": ("반려", "rejected"),
    "expired": ("기한 만료", "expired"),
    "withdrawn": ("발송 취소", "withdrawn by the sender"),
    "approved": ("승인", "approved"),
    "held": ("승인 대기", "held"),
    "monitored": ("모니터링", "monitored"),
    "masked": ("개인정보 가림 전달", "delivered, personal data masked"),
    "sent": ("발송", "sent"),
    "duplicate": ("중복 수신", "duplicate of a mail received on another stream"),
    "in_progress": ("처리 중", "in progress"),
}
PERIOD_LABELS = {"day": ("일자", "day"), "month": ("월", "month"), "year": ("연도", "year")}
GROUP_LABELS = {
    "none": ("구분", "group"), "rule": ("규칙", "rule"),
    "sender-domain": ("보낸 도메인", "sender domain"),
    "recipient-domain": ("받는 도메인", "recipient domain"),
    "sender-user": ("보낸 사람", "sender"), "department": ("부서", "department"),
    "outcome": ("처리 결과", "outcome"), "reason": ("사유", "reason"),
    "direction": ("방향", "direction"),
}  # fmt: skip
COUNT_LABEL = ("메일 수", "mails")
MAX_CELL_CHARS = 32_767  # Excel's limit for one cell


def mail_table(items: Iterable[Mapping[str, Any]], language: Language, zone_name: str) -> Table:
    """Mails (as ``MailIndex.search`` gives them) as a header and rows: times as local
    date-times of the zone the items were made in (its name in the header), lists joined."""
    pick = LANGUAGES.index(language)
    header = [
        f"{names[pick]} ({zone_name})" if field in ("time", "last_time") else names[pick]
        for field, *names in MAIL_COLUMNS
    ]
    rows = [[_mail_cell(field, item.get(field), pick) for field, *_ in MAIL_COLUMNS]
            for item in items]  # fmt: skip
    return header, rows


def stats_table(stats: Mapping[str, Any], query: StatsQuery, language: Language) -> Table:
    """Statistics (as ``MailIndex.statistics`` gives them) as a header and rows."""
    pick = LANGUAGES.index(language)
    header = [PERIOD_LABELS[query.by][pick], GROUP_LABELS[query.group][pick], COUNT_LABEL[pick]]
    labels = {"outcome": OUTCOME_LABELS, "direction": DIRECTION_LABELS}.get(query.group)
    rows: list[list[Cell]] = []
    for row in stats["rows"]:
        group = row["group"]
        shown = labels[group][pick] if labels and group in labels else group
        rows.append([row["period"], shown, int(row["count"])])
    return header, rows


def write_xlsx(table: Table, target: Path | IO[bytes], *, title: str) -> None:
    """One sheet, the header row bold and frozen; text cells typed as text, never formulas."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    header, rows = table
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=title[:31])  # Excel's limit for a sheet name
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    sheet.append([_xlsx_cell(sheet, name, font=bold) for name in header])
    for row in rows:
        sheet.append([_xlsx_cell(sheet, value) for value in row])
    book.save(target)


def csv_chunks(table: Table) -> Iterator[str]:
    """The table as CSV text, a row at a time, starting with the byte-order mark."""
    header, rows = table
    yield "\ufeff"
    buffer = io.StringIO()
    writer = InertWriter(buffer)
    lines: list[list[Cell]] = [list(header), *rows]
    for line in lines:
        writer.writerow([_csv_cell(value) for value in line])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def _mail_cell(field: str, value: Any, pick: int) -> Cell:
    if field in ("time", "last_time") and isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=None)  # local time of the zone
    if field == "direction":
        return DIRECTION_LABELS.get(str(value), (str(value),) * 2)[pick]
    if field == "outcome":
        return OUTCOME_LABELS.get(str(value), (str(value),) * 2)[pick]
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return "" if value is None else str(value)


def _xlsx_cell(sheet: Any, value: Cell, *, font: Any = None) -> Any:
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    if isinstance(value, str):  # invisible characters marked, as agentkit.csvsafe does
        value = ILLEGAL_CHARACTERS_RE.sub("", reveal_invisible(value))[:MAX_CELL_CHARS]
    cell = WriteOnlyCell(sheet, value=value)
    if isinstance(value, str):
        cell.data_type = "s"  # text, never a formula, whatever it starts with
    elif isinstance(value, datetime):
        cell.number_format = "yyyy-mm-dd hh:mm:ss"
    if font is not None:
        cell.font = font
    return cell


def _csv_cell(value: Cell) -> str | int:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value if isinstance(value, int) else str(value)
    return "" if value is None else str(value)
