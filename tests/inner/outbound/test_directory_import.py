"""The directory's second version: Korean or English headers and role names in CSV and XLSX,
ranks, groups, managers, the department tree, disabled people; a preview per person before an
import applies; the schema migrated forward in place from a store the first release made."""

from __future__ import annotations

import io
import shutil
import sqlite3
from pathlib import Path

import pytest
from openpyxl import Workbook

from inner_agent.outbound.approvers import Approvers
from inner_agent.outbound.directory import Directory
from inner_agent.outbound.directory_file import parse_hr_file
from inner_agent.outbound.directory_model import Snapshot, User
from inner_agent.outbound.directory_schema import SCHEMA_VERSION
from inner_agent.outbound.errors import DirectoryError
from inner_agent.outbound.senders import SenderCheck
from protocol.errors import NewerStateError

# Made by the first release's code (main at 88ef688: Directory.import_csv(HR_CSV), a password
# and a TOTP secret for lee), checkpointed: what a site upgrading has on disk.
V0_STORE = Path(__file__).parents[2] / "data" / "directory-v0.db"

KOREAN_ROWS = [
    ["이메일", "이름", "부서", "상위부서", "직급", "역할", "그룹", "비고"],
    ["kim@corp.example", "김철수", "영업1팀", "영업부", "대리", "", "고객정보 취급자", "x"],
    ["lee@corp.example", "이영희", "영업1팀", "영업부", "팀장", "부서장", "", ""],
    [
        "park@corp.example",
        "박민수",
        "영업1팀",
        "영업부",
        "과장",
        "대결자",
        "고객정보 취급자;CS",
        "",
    ],
    ["choi@corp.example", "최고위", "영업부", "", "부장", "부서장", "", ""],
    ["jung@corp.example", "정보안", "보안팀", "", "차장", "보안담당자", "", ""],
    ["han@corp.example", "한관리", "보안팀", "", "과장", "관리자", "", ""],
]


def csv_bytes(rows, encoding="utf-8") -> bytes:
    return "\n".join(",".join(row) for row in rows).encode(encoding) + b"\n"


def xlsx_bytes(rows) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.mark.parametrize(
    "raw",
    [csv_bytes(KOREAN_ROWS), csv_bytes(KOREAN_ROWS, "cp949"), xlsx_bytes(KOREAN_ROWS)],
    ids=["csv-utf8", "csv-cp949", "xlsx"],
)
def test_korean_headers_and_role_names(tmp_path, raw):
    directory = Directory(tmp_path / "d.db")
    report = directory.import_file(raw, "인사.csv")
    assert len(report.users.added) == 6
    kim = directory.user("kim@corp.example")
    assert (kim.department, kim.rank, kim.role, kim.groups) == (
        "영업1팀",
        "대리",
        "",
        ("고객정보 취급자",),
    )
    roles = {u.email.split("@")[0]: u.role for u in directory.users()}
    assert roles == {"kim": "", "lee": "head", "park": "delegate", "choi": "head",
                     "jung": "security-officer", "han": "administrator"}  # fmt: skip
    assert directory.department("영업1팀").parent == "영업부"
    assert directory.approvers_of("영업1팀") == ("lee@corp.example", "park@corp.example")
    assert directory.security_officers() == ("jung@corp.example",)
    assert directory.administrators() == ("han@corp.example",)
    assert directory.group_members("고객정보 취급자") == ("kim@corp.example", "park@corp.example")
    assert directory.groups() == ["CS", "고객정보 취급자"]
    assert directory.with_rank("과장") == ("han@corp.example", "park@corp.example")
    assert directory.sub_departments("영업부") == {"영업부", "영업1팀"}


def test_english_names_of_the_new_columns_and_roles():
    snapshot = parse_hr_file(
        b"Email,Name,Department,Parent,Rank,Role,Manager\n"
        b"a@x.kr,A,Sales,HQ,Manager,approver,\n"
        b"b@x.kr,B,Sales,HQ,Staff,,a@x.kr\n"
        b"c@x.kr,C,HQ,,Director,Security Officer,\n",
        "hr.csv",
    )
    a, b, c = snapshot.users
    assert (a.role, a.rank, b.manager, c.role) == ("head", "Manager", "a@x.kr", "security-officer")
    assert {d.name: d.parent for d in snapshot.departments} == {"HQ": None, "Sales": "HQ"}


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [["이메일", "부서", "역할"], ["a@x.kr", "A", "사장"]],
            "line 2: column role: '사장' is not",
        ),
        ([["이메일", "이름"], ["a@x.kr", "김"]], "line 1: missing column(s) department"),
        (
            [["이메일", "email", "부서"], ["a@x.kr", "a@x.kr", "A"]],
            "line 1: column email appears twice",
        ),
        ([["이메일", "부서", "상사"], ["a@x.kr", "A", "boss"]], "line 2: column manager"),
        ([["이메일", "부서", "상사"], ["a@x.kr", "A", "a@x.kr"]], "a@x.kr is their own manager"),
        (
            [["이메일", "부서", "역할"], ["a@x.kr", "A", "부서장"], ["b@x.kr", "A", "head"]],
            "department A has two heads",
        ),
    ],
)
def test_refusals_name_file_line_and_column(rows, message):
    for raw in (csv_bytes(rows), xlsx_bytes(rows)):
        with pytest.raises(DirectoryError) as refused:
            parse_hr_file(raw, "인사.xlsx")
        assert str(refused.value).startswith("인사.xlsx: ")
        assert message in str(refused.value)


def test_a_broken_spreadsheet_is_refused_by_name():
    with pytest.raises(DirectoryError, match="hr.xlsx: not a readable XLSX workbook"):
        parse_hr_file(b"PK\x03\x04 not really a zip", "hr.xlsx")


def test_the_preview_says_per_person_what_would_change_and_changes_nothing(tmp_path):
    directory = Directory(tmp_path / "d.db")
    directory.import_file(csv_bytes(KOREAN_ROWS), "인사.csv")
    rows = [list(r) for r in KOREAN_ROWS]
    rows[1][4] = "과장"  # kim promoted
    rows[2][2:4] = ["보안팀", ""]  # lee moves
    del rows[6]  # han leaves
    rows.append(["new@corp.example", "신입", "보안팀", "", "사원", "", "", ""])
    preview = directory.import_file(csv_bytes(rows), "인사.csv", dry_run=True)
    assert preview.users.added == ["new@corp.example"]
    assert preview.users.removed == ["han@corp.example"]
    assert preview.users.details == {
        "kim@corp.example": "rank 대리 → 과장",
        "lee@corp.example": "department 영업1팀 → 보안팀",
    }
    assert "~ kim@corp.example: rank 대리 → 과장" in preview.users.lines()
    assert directory.user("kim@corp.example").rank == "대리"  # nothing applied
    assert directory.user("han@corp.example") is not None
    assert len(directory.reports()) == 1  # the first import's; the preview stores none
    applied = directory.import_file(csv_bytes(rows), "인사.csv")
    assert applied == preview
    assert directory.user("kim@corp.example").rank == "과장"
    assert directory.reports()[0].source == "import 인사.csv"
    assert "user ~ kim@corp.example: rank 대리 → 과장" in directory.reports()[0].lines


def test_a_store_made_by_the_first_release_is_migrated_in_place(tmp_path):
    store = tmp_path / "directory.db"
    shutil.copyfile(V0_STORE, store)
    assert sqlite3.connect(store).execute("PRAGMA user_version").fetchone() == (0,)
    directory = Directory(store)
    assert len(directory.users()) == 5
    lee = directory.user("lee@corp.example")
    assert (lee.role, lee.rank, lee.manager, lee.disabled, lee.groups) == (
        "head",
        "",
        "",
        False,
        (),
    )
    assert directory.check_password("lee@corp.example", "lee-비밀번호-1")  # accounts kept
    assert directory.totp_secret("lee@corp.example") == "JBSWY3DPEHPK3PXP"
    assert directory.approvers_of("영업부") == ("lee@corp.example", "park@corp.example")
    directory.close()
    assert sqlite3.connect(store).execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    again = Directory(store)  # a second opening migrates nothing
    again.import_file(csv_bytes(KOREAN_ROWS), "인사.csv")
    assert again.user("kim@corp.example").rank == "대리"
    again.close()


def test_a_store_from_a_newer_release_is_refused(tmp_path):
    store = tmp_path / "directory.db"
    Directory(store).close()
    db = sqlite3.connect(store)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(NewerStateError, match="newer than this release"):
        Directory(store)


def _check(user: User) -> SenderCheck:
    return SenderCheck(user.email, (user.email,), user, "")


def test_the_manager_approves_first_and_disabled_people_are_never_asked(tmp_path):
    directory = Directory(tmp_path / "d.db")
    people = (
        User("kim@x.kr", "김", "영업", "", manager="boss@x.kr"),
        User("boss@x.kr", "상사", "영업", ""),
        User("head@x.kr", "부서장", "영업", "head"),
        User("gone@x.kr", "퇴사", "영업", "delegate", disabled=True),
    )
    directory.replace(Snapshot(people, ()), "test")
    approvers = Approvers(directory, None)
    assert approvers.route(_check(people[0])).approvers == ("boss@x.kr",)
    assert approvers.route(_check(people[1])).approvers == ("head@x.kr",)  # no manager
    directory.replace(Snapshot((people[0], User("boss@x.kr", "상사", "영업", "", disabled=True),
                                *people[2:]), ()), "test")  # fmt: skip
    assert approvers.route(_check(people[0])).approvers == ("head@x.kr",)
    assert directory.approvers_of("영업") == ("head@x.kr",)
    assert directory.manager_of("kim@x.kr") is None


def test_a_disabled_person_cannot_sign_in(tmp_path):
    directory = Directory(tmp_path / "d.db")
    directory.replace(Snapshot((User("a@x.kr", "A", "영업", "head"),), ()), "test")
    directory.set_password("a@x.kr", "a long pass phrase")
    assert directory.check_password("a@x.kr", "a long pass phrase")
    directory.replace(Snapshot((User("a@x.kr", "A", "영업", "head", disabled=True),), ()), "test")
    assert not directory.check_password("a@x.kr", "a long pass phrase")
    assert directory.accounts.roles("a@x.kr") == frozenset()
