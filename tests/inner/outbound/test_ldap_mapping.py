"""LDAP entries to a directory snapshot, without a server: Active Directory's disabled flag,
a department attribute instead of the ou= tree, groups from memberOf, and what is skipped."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from inner_agent.outbound.ldap_config import LdapAttributes, LdapSection
from inner_agent.outbound.ldap_sync import LdapEntry, snapshot_from_entries

AD = LdapAttributes(department="department", groups="memberOf", role="extensionAttribute1")


def entry(dn: str, **attributes: str | list[str]) -> LdapEntry:
    return LdapEntry(
        dn, {k.lower(): v if isinstance(v, list) else [v] for k, v in attributes.items()}
    )


def test_active_directory_accounts_disabled_by_user_account_control():
    mapped = snapshot_from_entries(
        [
            entry("CN=Kim,OU=Users,DC=corp", mail="Kim@Corp.Example", displayName="김철수",
                  department="영업부", userAccountControl="512", manager="CN=Lee,OU=Users,DC=corp",
                  memberOf=["CN=고객정보 취급자,OU=Groups,DC=corp", "CN=CS,OU=Groups,DC=corp"]),
            entry("CN=Lee,OU=Users,DC=corp", mail="lee@corp.example", cn="이영희",
                  department="영업부", userAccountControl="514", extensionAttribute1="부서장"),
        ],
        AD,
        "active-directory",
    )  # fmt: skip
    kim, lee = mapped.snapshot.users
    assert (kim.email, kim.name, kim.department, kim.manager) == (
        "kim@corp.example", "김철수", "영업부", "lee@corp.example",
    )  # fmt: skip
    assert kim.groups == ("CS", "고객정보 취급자")
    assert not kim.disabled
    assert lee.disabled  # 514 = NORMAL_ACCOUNT | ACCOUNTDISABLE
    assert (lee.name, lee.role) == ("이영희", "head")
    assert [(d.name, d.parent) for d in mapped.snapshot.departments] == [("영업부", None)]


def test_what_cannot_be_used_is_noted_not_fatal():
    mapped = snapshot_from_entries(
        [
            entry("uid=a,ou=영업부,dc=corp", mail="a@corp.example", manager="uid=zz,dc=corp"),
            entry("uid=b,ou=영업부,dc=corp"),
            entry("uid=c,dc=corp", mail="c@corp.example"),
            entry("uid=d,ou=영업부,dc=corp", mail="A@corp.example"),
            entry("uid=e,ou=영업부,dc=corp", mail="e@corp.example", employeeType="사장"),
        ],
        LdapAttributes(role="employeeType"),
        "openldap",
    )
    assert [u.email for u in mapped.snapshot.users] == ["a@corp.example", "e@corp.example"]
    notes = "\n".join(mapped.notes)
    assert "uid=a,ou=영업부,dc=corp: manager uid=zz,dc=corp is not among the people found" in notes
    assert "uid=b,ou=영업부,dc=corp: skipped: no mail address" in notes
    assert "uid=c,dc=corp: skipped: no department" in notes
    assert "uid=d,ou=영업부,dc=corp: skipped: a@corp.example is another entry's address" in notes
    assert "uid=e,ou=영업부,dc=corp: role '사장' unknown" in notes


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"url": "http://x", "base_dn": "dc=x"}, "ldap:// or ldaps://"),
        ({"url": "ldap://x", "base_dn": "dc=x", "bind_dn": "cn=a"}, "bind_password_file"),
        ({"url": "ldap://x", "base_dn": "dc=x", "user_filter": "objectClass=*"}, "parentheses"),
        ({"url": "ldap://x", "base_dn": "dc=x", "interval_s": 1}, "greater than or equal"),
        ({"url": "ldap://x", "base_dn": "dc=x", "attributes": {"mial": "x"}}, "mial"),
    ],
)
def test_bad_ldap_settings_are_refused(document, message):
    with pytest.raises(ValidationError, match=message):
        LdapSection.model_validate(document)


def test_the_people_filter_follows_the_flavor():
    assert (
        LdapSection(url="ldap://x", base_dn="dc=x").people_filter() == "(objectClass=inetOrgPerson)"
    )
    ad = LdapSection(url="ldaps://x", base_dn="dc=x", flavor="active-directory")
    assert ad.people_filter() == "(&(objectCategory=person)(objectClass=user))"


def test_the_example_section_names_every_key_and_loads_uncommented(tmp_path):
    import re
    import tomllib

    from inner_agent.outbound.ldap_config import DirectorySection, example_toml_section

    lines = example_toml_section().splitlines()
    text = "\n".join(line[2:] for line in lines if re.match(r"# (\[|\w+ = )", line))
    document = tomllib.loads(text)
    section = DirectorySection.model_validate(
        document["directory"], context={"config_dir": tmp_path}
    )
    assert section.ldap is not None
    assert set(document["directory"]["ldap"]) == set(LdapSection.model_fields)
    assert set(document["directory"]["ldap"]["attributes"]) == set(LdapAttributes.model_fields)
    assert (
        example_toml_section()
        in (Path(__file__).parents[3] / "deploy/examples/inner.toml").read_text()
    )


def test_a_failed_pass_keeps_the_directory_and_logs_one_line(tmp_path, caplog):
    import logging

    from inner_agent.outbound.directory import Directory
    from inner_agent.outbound.directory_sync import DirectorySync, sync_duty
    from inner_agent.outbound.errors import DirectoryError
    from tests.support.outbound import HR_CSV

    directory = Directory(tmp_path / "d.db")
    directory.import_csv(HR_CSV)
    section = LdapSection(url="ldap://127.0.0.1:1", base_dn="dc=corp")

    def down(_section):
        raise DirectoryError("LDAP ldap://127.0.0.1:1: LDAPSocketOpenError: refused")

    for fetch in (down, lambda _section: []):  # unreachable; reachable but finds nobody
        duty = sync_duty(DirectorySync(section, directory, lambda *a, **k: None, fetch=fetch))
        with caplog.at_level(logging.ERROR):
            duty.one_pass()  # never raises: the next pass tries again
        assert "directory sync failed, the directory is kept as it was: LDAP" in caplog.text
        assert "Traceback" not in caplog.text
        assert len(directory.users()) == 5
        caplog.clear()
    directory.close()
