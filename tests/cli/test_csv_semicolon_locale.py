"""Every CSV export read as a German or French spreadsheet reads it: ``;`` as the separator.

Such a spreadsheet splits ``x;=cmd|' /C calc'!A0`` at the ``;`` and ran the second piece as a
formula (the stop-29 red-team pass noticed it). LibreOffice, the installed one, reads each of
the three exports (mail search, audit log, statistics) with ``;`` as separator here.
"""

from __future__ import annotations

import csv
import io
import subprocess
from pathlib import Path
from zoneinfo import ZoneInfo

from openpyxl import load_workbook

from agentkit.audit import AuditLog, export
from agentkit.csvsafe import inert
from agentkit.mailindex import MailIndex, MailQuery
from agentkit.mailindex.export import csv_chunks, mail_table
from maildiode.commands.check import load_agent_config
from tests.support.command import maildiode

HOSTILE = "x;=cmd|' /C calc'!A0"
FORMULA_START = ("=", "+", "-", "@")


def test_a_formula_after_a_semicolon_gets_the_apostrophe_and_nothing_else_changes() -> None:
    assert inert(HOSTILE) == "x;'=cmd|' /C calc'!A0"
    assert inert('a; "+1') == "a;' \"+1"  # what a reader may skip before the piece
    assert inert("=1;-2") == "'=1;'-2"
    for normal in ("a;b", "1;2", "회의; 오후 3시", "a-b@c.example", "x;"):
        assert inert(normal) == normal
    assert inert(7) == 7


def _exports(tmp_path: Path) -> dict[str, str]:
    root = tmp_path / "trial"
    assert maildiode("init", str(root)).returncode == 0
    config = root / "inner.toml"
    audit_path = load_agent_config(config, "inner").audit.path
    log = AuditLog(audit_path, agent="inner")
    log.record("m1;@SUM(1)", "received_inside", mail_from=f"a@{HOSTILE}", subject=HOSTILE,
               rcpts=["u@corp.example;+cmd"], attachments=[f"{HOSTILE}.xlsx"])  # fmt: skip
    log.close()
    index = MailIndex(audit_path)
    index.catch_up()
    mails = "".join(
        csv_chunks(mail_table(index.iter_mails(MailQuery(), ZoneInfo("UTC")), "en", "UTC"))
    )
    files = {"mails": mails, "audit": "".join(export(AuditLog(audit_path).query(), "csv"))}
    for group in ("sender-domain", "recipient"):
        shown = maildiode("stats", "-c", str(config), "--group", group, "--format", "csv")
        assert shown.returncode == 0, shown.stderr
        files[f"stats-{group}"] = shown.stdout
    return files


def _cells_read_with_semicolons(folder: Path, files: dict[str, str]) -> dict[str, list]:
    for name, text in files.items():
        (folder / f"{name}.csv").write_text(text, encoding="utf-8")
    # 59 = ";" as the separator, 34 = '"' as the text delimiter, 76 = UTF-8
    subprocess.run(
        ["soffice", "--headless", f"-env:UserInstallation=file://{folder}/profile",
         "--infilter=CSV:59,34,76", "--convert-to", "xlsx", "--outdir", str(folder / "read"),
         *[str(folder / f"{name}.csv") for name in files]],
        check=True, capture_output=True, timeout=180,
    )  # fmt: skip
    return {
        name: [cell for row in load_workbook(folder / "read" / f"{name}.xlsx").active.iter_rows()
               for cell in row if cell.value is not None]
        for name in files
    }  # fmt: skip


def test_no_export_read_with_a_semicolon_separator_has_a_formula_cell(tmp_path: Path) -> None:
    files = _exports(tmp_path)
    for name, text in files.items():
        assert ";'" in text, name  # hostile text is in every export, defused
    read = _cells_read_with_semicolons(tmp_path, files)
    for name, cells in read.items():
        for cell in cells:
            assert cell.data_type != "f", (name, cell.value)
            assert not str(cell.value).startswith(FORMULA_START), (name, cell.value)
        assert any(str(cell.value).startswith("'") for cell in cells), name  # split at ";"
    # read with "," as every test before this one does, the cell says what came, plus "'"
    rows = list(csv.reader(io.StringIO(files["mails"].removeprefix("\ufeff"))))
    assert "x;'=cmd|' /C calc'!A0" in rows[1]
