"""The HR import: parsed, re-runnable with what changed, refusals naming line and column;
approvers and escalation; web accounts."""

from __future__ import annotations

import sqlite3

import pytest

from inner_agent.outbound.directory import Directory, parse_hr_csv
from inner_agent.outbound.errors import DirectoryError
from tests.support.outbound import HR_CSV


def test_import_then_lookups(tmp_path):
    directory = Directory(tmp_path / "d.db")
    users, departments = directory.import_csv(HR_CSV)
    assert len(users.added) == 5
    assert not users.changed
    assert not users.removed
    assert departments.added == ["경영본부", "보안팀", "영업부"]
    assert directory.user("KIM@corp.example").department == "영업부"
    assert directory.approvers_of("영업부") == ("lee@corp.example", "park@corp.example")
    assert directory.approvers_of("영업부", exclude="lee@corp.example") == ("park@corp.example",)
    assert directory.approvers_of("보안팀") == ()
    assert directory.approvers_above("보안팀") == ("choi@corp.example",)


def test_reimport_reports_changes(tmp_path):
    directory = Directory(tmp_path / "d.db")
    directory.import_csv(HR_CSV)
    changed = HR_CSV.decode().replace(
        "jung@corp.example,정보안,보안팀", "jung@corp.example,정보안,영업부"
    )
    changed = changed.replace("park@corp.example,박민수,영업부,경영본부,delegate\n", "")
    changed += "new@corp.example,신입,보안팀,경영본부,\n"
    users, departments = directory.import_csv(changed.encode("cp949"))
    assert (users.added, users.changed, users.removed) == (
        ["new@corp.example"],
        ["jung@corp.example"],
        ["park@corp.example"],
    )
    assert not departments
    assert (
        directory.import_csv(changed.encode())[0].summary("users")
        == "users: 0 added, 0 changed, 0 removed"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name,department\n김,영업부\n", "line 1: missing column(s) email"),
        ("email,department\nnot-an-address,영업부\n", "line 2: column email"),
        ("email,department\na@x.kr,\n", "line 2: column department: empty"),
        ("email,department,role\na@x.kr,영업부,boss\n", "line 2: column role"),
        ("email,department\na@x.kr,A\nA@x.kr,B\n", "line 3: email a@x.kr appears twice"),
        ("email,department,role\na@x.kr,A,head\nb@x.kr,A,head\n", "department A has two heads"),
        (
            "email,department,parent_department\na@x.kr,A,B\nb@x.kr,A,C\n",
            "line 3: column parent_department",
        ),
    ],
)
def test_refusals_name_line_and_column(text, message):
    with pytest.raises(DirectoryError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_hr_csv(text.encode(), "hr.csv")


def test_failed_import_changes_nothing(tmp_path):
    directory = Directory(tmp_path / "d.db")
    directory.import_csv(HR_CSV)
    with pytest.raises(DirectoryError):
        directory.import_csv(b"email,department\nbroken,\n")
    assert len(directory.users()) == 5


def test_accounts(tmp_path):
    directory = Directory(tmp_path / "d.db")
    directory.import_csv(HR_CSV)
    directory.set_password("lee@corp.example", "정확한 비밀번호")
    assert directory.check_password("LEE@corp.example", "정확한 비밀번호")
    assert not directory.check_password("lee@corp.example", "틀린 비밀번호")
    assert not directory.check_password("nobody@corp.example", "정확한 비밀번호")
    with pytest.raises(DirectoryError, match="not in the directory"):
        directory.set_password("nobody@corp.example", "x")
    stored = directory._db.execute("SELECT hash FROM accounts").fetchone()[0]
    assert stored.startswith("$argon2id$")
    assert "정확한" not in stored
    directory.import_csv(
        HR_CSV.decode().replace("lee@corp.example,이영희,영업부,경영본부,head\n", "").encode()
    )
    assert not directory.check_password("lee@corp.example", "정확한 비밀번호")  # left the company


def test_every_address_costs_one_argon2_verify_with_the_same_parameters(tmp_path, monkeypatch):
    """No telling by time who has an account (issue 15.3): a known account, a directory user
    without one and a stranger are each one verify, against hashes with the same cost."""
    import argon2

    directory = Directory(tmp_path / "d.db")
    directory.import_csv(HR_CSV)
    directory.set_password("lee@corp.example", "정확한 비밀번호")
    directory.check_password("stranger@corp.example", "x")  # the stand-in hash is made once
    verified, hashed = [], []
    real_verify, real_hash = argon2.PasswordHasher.verify, argon2.PasswordHasher.hash
    monkeypatch.setattr(
        argon2.PasswordHasher,
        "verify",
        lambda self, digest, pw: verified.append(digest) or real_verify(self, digest, pw),
    )
    monkeypatch.setattr(
        argon2.PasswordHasher,
        "hash",
        lambda self, pw, **kw: hashed.append(pw) or real_hash(self, pw, **kw),
    )
    for address in ("lee@corp.example", "kim@corp.example", "nobody@corp.example"):
        assert not directory.check_password(address, "틀린 비밀번호")
    assert hashed == []
    assert len(verified) == 3
    parameters = [argon2.extract_parameters(digest) for digest in verified]
    assert parameters[0] == parameters[1] == parameters[2]


def test_totp_secrets_belong_to_accounts(tmp_path):
    directory = Directory(tmp_path / "d.db")
    directory.import_csv(HR_CSV)
    with pytest.raises(DirectoryError, match="set a password first"):
        directory.set_totp("lee@corp.example", "JBSWY3DPEHPK3PXP")
    directory.set_password("lee@corp.example", "정확한 비밀번호")
    directory.set_totp("LEE@corp.example", "JBSWY3DPEHPK3PXP")
    assert directory.totp_secret("lee@corp.example") == "JBSWY3DPEHPK3PXP"
    assert directory.totp_secret("kim@corp.example") is None
    directory.close()
    old = sqlite3.connect(tmp_path / "old.db")  # a database from before the second factor
    old.execute("CREATE TABLE accounts (email TEXT PRIMARY KEY, hash TEXT NOT NULL)")
    old.commit()
    old.close()
    upgraded = Directory(tmp_path / "old.db")
    upgraded.import_csv(HR_CSV)
    upgraded.set_password("lee@corp.example", "정확한 비밀번호")
    assert upgraded.totp_secret("lee@corp.example") is None


def test_security_officers_are_a_role_of_their_own(tmp_path):
    directory = Directory(tmp_path / "d.db")
    directory.import_csv(
        "email,department,role\n"
        "a@x.kr,보안팀,security-officer\nb@x.kr,보안팀,SECURITY-OFFICER\n"
        "c@x.kr,영업부,security-officer\nh@x.kr,보안팀,head\n".encode()
    )
    assert directory.security_officers() == ("a@x.kr", "b@x.kr", "c@x.kr")  # several allowed
    assert directory.approvers_of("보안팀") == ("h@x.kr",)  # not department approvers
    assert directory.approvers_of("영업부") == ()
    with pytest.raises(DirectoryError, match="not head, delegate, security-officer or empty"):
        parse_hr_csv(b"email,department,role\na@x.kr,A,officer\n")
