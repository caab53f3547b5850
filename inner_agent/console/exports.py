"""The console's downloads: search results, statistics and access records as XLSX or CSV (the
mail index's writers: Korean headers, one column per field, text cells never formulas, CSV
with a byte-order mark), and the monthly access review. Each is made whole in memory, in a
worker thread, and answered as an attachment; the caller records it as an export.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterable
from datetime import datetime, tzinfo
from typing import Literal

from starlette.responses import Response

from agentkit.access import ACTION_NAMES_KO, AccessRecord
from agentkit.mailindex.export import Table, csv_chunks, write_xlsx
from inner_agent.console.text import Language

__all__ = ["ACCESS_COLUMNS", "FORMATS", "Format", "access_table", "download", "encode"]

Format = Literal["xlsx", "csv"]
FORMATS: tuple[Format, ...] = ("xlsx", "csv")
# field, Korean header, English header
ACCESS_COLUMNS = (
    ("time", "시각", "time"),
    ("account", "계정", "account"),
    ("address", "접속 주소", "address"),
    ("action", "행위", "action"),
    ("mail", "메일 ID", "mail id"),
    ("detail", "내용", "detail"),
    ("count", "건수", "count"),
)
MEDIA_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
}


def access_table(records: Iterable[AccessRecord], language: Language, zone: tzinfo,
                 zone_name: str) -> Table:  # fmt: skip
    """Access records as a header and rows: local times of ``zone`` (named in the header),
    actions named in the language."""
    pick = 1 if language == "ko" else 2
    header = [f"{c[pick]} ({zone_name})" if c[0] == "time" else c[pick] for c in ACCESS_COLUMNS]
    rows: list[list[str | int | float | datetime | None]] = [
        [datetime.fromtimestamp(r.ts, zone).replace(tzinfo=None), r.account, r.address,
         ACTION_NAMES_KO.get(r.action, r.action) if language == "ko" else r.action,
         r.mail or "", r.detail, r.count]
        for r in records
    ]  # fmt: skip
    return header, rows


def encode(table: Table, format_: Format, title: str) -> bytes:
    """The table as the bytes of an XLSX workbook or a CSV file (UTF-8 with BOM)."""
    if format_ == "csv":
        return "".join(csv_chunks(table)).encode("utf-8")
    buffer = io.BytesIO()
    write_xlsx(table, buffer, title=title)
    return buffer.getvalue()


def download(body: bytes, format_: Format, name: str) -> Response:
    """An attachment named ``maildiode-NAME-YYYYMMDD-HHMMSS.EXT`` (ASCII: every browser keeps
    it as it is)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Response(
        body,
        media_type=MEDIA_TYPES[format_],
        headers={
            "Content-Disposition": f'attachment; filename="maildiode-{name}-{stamp}.{format_}"'
        },
    )
