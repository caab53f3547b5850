"""Hostile values in the directory's sources (S6 red-team pass): an HR file (CSV or XLSX) or an
LDAP attribute holding a line break, a bidi control, a megabyte, a second address, or an
XLSX that unpacks to hundreds of megabytes. Before the fix each was stored as it came: a
department ``영업부\\n임원`` became two names in a rule's scope list when picked from the
policy editor's search, a 200 KB workbook made a 200 MB department name (450 MB, 11 s)."""

from __future__ import annotations

import io
import resource
import time
import unicodedata
import zipfile

import pytest
from openpyxl import Workbook

from inner_agent.outbound.directory_file import MAX_UNPACKED_BYTES, parse_hr_file
from inner_agent.outbound.errors import DirectoryError
from inner_agent.outbound.ldap_config import LdapAttributes
from inner_agent.outbound.ldap_sync import LdapEntry, snapshot_from_entries

HEADER = ["email", "name", "department", "rank", "groups"]
GOOD = ["kim@corp.example", "김철수", "영업부", "대리", "CS"]


def _csv(*rows: list[str]) -> bytes:
    import csv

    out = io.StringIO()
    csv.writer(out).writerows([HEADER, GOOD, *rows])
    return out.getvalue().encode()


def _xlsx(*rows: list[str]) -> bytes:
    book = Workbook()
    sheet = book.active
    for row in (HEADER, GOOD, *rows):
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


HOSTILE_ROWS = [
    (["lee@corp.example", "이영희", "영업부\n임원", "", ""], "line 3: column department: holds a control"),
    (["lee@corp.example", "이영희\r\nX-Injected: 1", "영업부", "", ""], "line 3: column name: holds"),
    (["lee@corp.example", "이영희", "영업부", "", "CS;고객\u2028정보"], "line 3: column groups: holds"),
    (["lee@corp.example", "\u202e희영이", "영업부", "", ""], "line 3: column name: holds a bidi"),
    (["lee@corp.example", "이영희", "영업부", "\u2067부장", ""], "line 3: column rank: holds a bidi"),
    (["lee@corp.example", "이" * 100_000, "영업부", "", ""], "line 3: column name: longer than"),
    (["lee@corp.example", "이" * 1_000_000, "영업부", "", ""], "line 3: (column name: longer|not readable)"),
    (["x@evil.example,lee@corp.example", "이영희", "영업부", "", ""], "column email: "),
    (["lee@corp.example>, <x@evil.example", "이영희", "영업부", "", ""], "column email: "),
    (["lee\u200b@corp.example", "이영희", "영업부", "", ""], "column email: "),
    (["lee@corp.example", "이영희", "영업\u200b부", "", ""], "line 3: column department: holds an"),
    (["lee@corp.example", "이영희", "영업부", "", ""], None),  # the same, honest: imported
]  # fmt: skip


@pytest.mark.parametrize("made", [_csv, _xlsx])
@pytest.mark.parametrize(("row", "message"), HOSTILE_ROWS)
def test_an_hr_file_with_a_hostile_value_is_refused_naming_line_and_column(made, row, message):
    raw = made(row)
    if message is None:
        assert len(parse_hr_file(raw, "hr.file").users) == 2
        return
    with pytest.raises(DirectoryError, match=message):
        parse_hr_file(raw, "hr.file")


def _bomb(unpacked_mib: int) -> bytes:
    """An XLSX whose one shared string unpacks to ``unpacked_mib`` MiB (about 1 KB a MiB)."""
    good = zipfile.ZipFile(io.BytesIO(_xlsx()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bomb:
        for part in good.infolist():
            if part.filename != "xl/worksheets/sheet1.xml":
                bomb.writestr(part.filename, good.read(part))
        bomb.writestr("xl/worksheets/sheet1.xml", (
            '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            '<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>email</t></is></c>'
            '<c r="B1" t="inlineStr"><is><t>department</t></is></c></row><row r="2">'
            '<c r="A2" t="inlineStr"><is><t>a@corp.example</t></is></c><c r="B2" t="inlineStr">'
            '<is><t>' + "a" * (unpacked_mib << 20) + "</t></is></c></row></sheetData></worksheet>"
        ))  # fmt: skip
    return out.getvalue()


def test_an_xlsx_zip_bomb_is_refused_before_it_is_unpacked():
    raw = _bomb((MAX_UNPACKED_BYTES >> 20) + 16)
    assert len(raw) < 1 << 20  # a small upload
    started, peak_before = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DirectoryError, match="unpacks to .* bytes"):
        parse_hr_file(raw, "bomb.xlsx")
    assert time.monotonic() - started < 2.0
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    assert grown_kib < 64 << 10, f"peak memory grew by {grown_kib} KiB"


AD = LdapAttributes(department="department", groups="memberOf")


def _entry(uid: str, **attributes: str) -> LdapEntry:
    values = {"mail": f"{uid}@corp.example", "displayName": uid, "department": "영업부",
              **attributes}  # fmt: skip
    return LdapEntry(f"CN={uid},OU=Users,DC=corp", {k.lower(): [v] for k, v in values.items()})


def test_an_ldap_entry_with_a_hostile_attribute_is_skipped_and_noted():
    mapped = snapshot_from_entries([
        _entry("kim"),
        _entry("crlf", displayName="최\r\n관리자"),
        _entry("bidi", displayName="\u202e희영이"),
        _entry("huge", displayName="가" * (1 << 20)),
        _entry("dept", department="영업부\n임원"),
        _entry("rank", title="부장\u2066"),
        _entry("group", memberOf="CN=고객\n정보,OU=Groups,DC=corp"),
        _entry("two", mail="two@corp.example,ceo@corp.example"),
    ], LdapAttributes(department="department", groups="memberOf", rank="title"),
        "active-directory")  # fmt: skip
    assert [u.email for u in mapped.snapshot.users] == ["kim@corp.example"]
    assert [d.name for d in mapped.snapshot.departments] == ["영업부"]
    notes = "\n".join(mapped.notes)
    for uid, what in (("crlf", "name"), ("bidi", "name"), ("huge", "name"), ("dept", "department"),
                      ("rank", "rank"), ("group", "group")):  # fmt: skip
        assert f"CN={uid},OU=Users,DC=corp: skipped: its {what} " in notes, uid
    assert "CN=two,OU=Users,DC=corp: skipped: no mail address" in notes
    assert len(notes) < 2000  # the megabyte is not copied into the notes


@pytest.fixture
def names(tmp_path):
    from inner_agent.outbound.directory import Directory

    directory = Directory(tmp_path / "directory.db")
    decomposed = unicodedata.normalize("NFD", "영업부")
    directory.import_csv((
        "email,name,department,rank,groups\n"
        "a@corp.example,Émile Zola,Équipe Paris,Directeur,Ärzte\n"
        f"b@corp.example,김철수,{decomposed},대리,CS\n"
        "c@corp.example,Bob,R&D_1%,사원,고객정보 취급자\n"
    ).encode())  # fmt: skip
    yield directory
    directory.close()


@pytest.mark.parametrize(("kind", "text", "found"), [
    ("departments", "équipe", ["Équipe Paris"]),  # LIKE folded ASCII letters only
    ("users", "ÉMILE", ["a@corp.example"]),
    ("groups", "ärzte", ["Ärzte"]),
    ("departments", "영업", ["영업부"]),  # a Mac's decomposed Hangul, searched as typed
    ("departments", "%", ["R&D_1%"]),  # wildcards are characters
    ("departments", "_", ["R&D_1%"]),
    ("departments", "D_1", ["R&D_1%"]),
    ("departments", "D%1", []),
    ("departments", "*", []),
    ("departments", "x" * 100_000, []),  # past SQLite's LIKE limit: an error before
])  # fmt: skip
def test_the_policy_editors_name_search_folds_case_and_composition(names, kind, text, found):
    assert names.find_names(kind, text, 10) == (found, len(found))


def test_a_decomposed_name_from_an_hr_file_is_the_department_a_rule_names(names):
    """A rule scoped to "영업부" (typed, composed) must cover the people HR wrote decomposed."""
    assert names.user("b@corp.example").department == "영업부"
    assert "영업부" in names.department_names()
