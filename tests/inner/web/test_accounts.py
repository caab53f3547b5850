"""The one account store (issue 16.2): directory accounts and console-only accounts in the
directory database; roles as the one answer to "what may this account do now"; the HR import
never touches an account, its role, password or second factor."""

from __future__ import annotations

import sqlite3

import pytest

from inner_agent.outbound.directory import Directory
from inner_agent.web.accounts import AccountStore
from inner_agent.web.errors import AccountRefused
from inner_agent.web.roles import DIRECTORY_ROLES, Role
from tests.support.console import browser, console_site, sign_in
from tests.support.outbound import HR_CSV

AUDITOR = "outside.auditor@audit.example"  # an external auditor: not an employee


@pytest.fixture
def directory(tmp_path):
    directory = Directory(tmp_path / "directory.db")
    directory.import_csv(HR_CSV)
    yield directory
    directory.close()


def test_roles_of_each_kind_of_account(directory):
    accounts = directory.accounts
    accounts.add(AUDITOR, Role.AUDITOR, "auditor-password-1")
    accounts.add("choi@corp.example", Role.ADMIN, "choi-password-3")
    directory.set_password("lee@corp.example", "lee-password-1")
    assert accounts.roles(AUDITOR) == {Role.AUDITOR}
    assert accounts.roles("CHOI@corp.example") == {Role.ADMIN} | DIRECTORY_ROLES
    assert accounts.roles("lee@corp.example") == DIRECTORY_ROLES
    assert accounts.roles("kim@corp.example") == frozenset()  # in the export, no account
    assert accounts.roles("nobody@corp.example") == frozenset()
    assert accounts.account(AUDITOR).console_only
    assert not accounts.account("choi@corp.example").console_only


def test_the_hr_import_keeps_console_accounts_roles_passwords_and_second_factors(directory):
    accounts = directory.accounts
    accounts.add(AUDITOR, Role.AUDITOR, "auditor-password-1")
    accounts.set_totp(AUDITOR, "JBSWY3DPEHPK3PXP")
    accounts.add("choi@corp.example", Role.ADMIN, "choi-password-3")
    before = accounts.accounts()
    changed = HR_CSV.decode().replace("choi@corp.example,최고위,경영본부,,head\n", "")
    directory.import_csv(changed.encode())
    directory.import_csv(HR_CSV)  # and back: a second import of the usual export
    directory.import_csv(changed.encode())
    assert accounts.accounts() == before
    assert accounts.check_password(AUDITOR, "auditor-password-1")
    assert accounts.totp_secret(AUDITOR) == "JBSWY3DPEHPK3PXP"
    assert accounts.roles(AUDITOR) == {Role.AUDITOR}
    # A directory account of someone the export no longer lists: no role, no sign-in ...
    assert accounts.roles("choi@corp.example") == frozenset()
    assert not accounts.check_password("choi@corp.example", "choi-password-3")
    directory.import_csv(HR_CSV)  # ... until they are listed again, role and all
    assert accounts.roles("choi@corp.example") == {Role.ADMIN} | DIRECTORY_ROLES


def test_a_console_only_account_signs_in_through_the_one_sign_in(tmp_path):
    site = console_site(tmp_path)
    accounts = site.parts.directory.accounts
    accounts.add(AUDITOR, Role.AUDITOR, "auditor-password-1")
    site.parts.directory.import_csv(HR_CSV)  # a nightly import in between
    client = browser(site.app)
    assert sign_in(client, AUDITOR, "auditor-password-1").status_code == 303
    assert client.get("/").status_code == 200
    accounts.set_disabled(AUDITOR, True)  # a session ends at its next request
    assert client.get("/").headers["location"].startswith("/login")
    assert sign_in(browser(site.app), AUDITOR, "auditor-password-1").status_code == 401


def test_changes_refused_with_the_account_and_the_reason(directory):
    accounts = directory.accounts
    accounts.add(AUDITOR, Role.AUDITOR, "auditor-password-1")
    cases = [
        (lambda: accounts.add(AUDITOR, Role.ADMIN, "x" * 12), "already has an account"),
        (lambda: accounts.add("not an address", Role.ADMIN, "x" * 12), "not a mail address"),
        (lambda: accounts.set_role(AUDITOR, None), "console-only account needs a role"),
        (lambda: accounts.set_role("nobody@x.kr", Role.ADMIN), "nobody@x.kr: has no account"),
        (lambda: accounts.set_password("stranger@x.kr", "x" * 12), "not in the directory"),
        (lambda: accounts.set_totp("kim@corp.example", "JBSWY3DPEHPK3PXP"), "no account"),
        (lambda: accounts.remove("nobody@x.kr"), "has no account"),
    ]
    for change, message in cases:
        with pytest.raises(AccountRefused, match=message):
            change()


def test_a_directory_person_gets_a_console_role_and_loses_it(directory):
    accounts = directory.accounts
    directory.set_password("jung@corp.example", "jung-password-4")
    accounts.set_role("jung@corp.example", Role.SECURITY)
    assert accounts.roles("jung@corp.example") == {Role.SECURITY} | DIRECTORY_ROLES
    accounts.set_role("jung@corp.example", None)
    assert accounts.roles("jung@corp.example") == DIRECTORY_ROLES


def test_the_directorys_security_officer_role_does_not_open_the_console(directory):
    """The HR export's security-officer approves mismatched senders; reading every held mail
    on the console is a right granted with `maildiode account`, and recorded there."""
    directory.set_password("jung@corp.example", "jung-password-4")
    assert Role.SECURITY not in directory.accounts.roles("jung@corp.example")


def test_unknown_and_console_only_addresses_cost_the_same_verify(directory, monkeypatch):
    import argon2

    accounts = directory.accounts
    accounts.add(AUDITOR, Role.AUDITOR, "auditor-password-1")
    accounts.add("gone@audit.example", Role.AUDITOR, "gone-password-1")
    accounts.set_disabled("gone@audit.example", True)
    accounts.check_password("stranger@x.kr", "x")  # the stand-in hash is made once
    verified = []
    real = argon2.PasswordHasher.verify
    monkeypatch.setattr(argon2.PasswordHasher, "verify",
                        lambda self, d, pw: verified.append(d) or real(self, d, pw))  # fmt: skip
    for address in (AUDITOR, "gone@audit.example", "stranger@x.kr", "kim@corp.example"):
        assert not accounts.check_password(address, "wrong-password")
    assert len(verified) == 4
    assert accounts.check_password(AUDITOR, "auditor-password-1")


def test_an_old_accounts_table_gains_the_new_columns(tmp_path):
    """A directory database from before roles: its approvers keep their accounts."""
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE accounts (email TEXT PRIMARY KEY, hash TEXT NOT NULL, totp TEXT)")
    old.commit()
    old.close()
    directory = Directory(path)
    directory.import_csv(HR_CSV)
    directory.set_password("lee@corp.example", "lee-password-1")
    directory.close()
    accounts = AccountStore(path, Directory(path))
    found = accounts.account("lee@corp.example")
    assert found is not None
    assert (found.role, found.console_only, found.disabled) == (None, False, False)
    assert accounts.roles("lee@corp.example") == DIRECTORY_ROLES
