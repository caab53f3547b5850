"""Signing in with the directory password against a real OpenLDAP (Debian's slapd, started
by the test): the service account finds the person's entry, a bind as that entry checks the
password. Right password: signed in without any account of ours; wrong: refused and counted
for the lockout; a disabled account, an empty password, a filter in the address: refused."""

from __future__ import annotations

import pytest

from inner_agent.outbound.ldap_bind import LdapPasswords, person_filter
from tests.inner.outbound.test_ldap_sync import (  # noqa: F401 - slapd is a fixture
    SALES,
    Recorded,
    ldap_section,
    slapd,
    syncer,
)
from tests.inner.outbound.test_web import client_for, csrf_of
from tests.support.outbound import approval_app, build_workflow

pytestmark = pytest.mark.e2e

KIM, KIM_PASSWORD = "kim@corp.example", "김-디렉터리-비밀번호-1"
OLD, OLD_PASSWORD = "old@corp.example", "old-password-2"


@pytest.fixture
def site(tmp_path, slapd):  # noqa: F811 - the fixture of the same name
    slapd.modify(f"uid=kim,{SALES}", {"userPassword": [KIM_PASSWORD]})
    slapd.modify(f"uid=old,{SALES}", {"userPassword": [OLD_PASSWORD]})
    parts = build_workflow(tmp_path)
    syncer(tmp_path, slapd, parts, Recorded()).run_once()
    passwords = LdapPasswords(ldap_section(tmp_path, slapd.url))
    parts.directory.accounts.directory_password = passwords.check  # as the agent opens it
    return parts, approval_app(parts), passwords


def signing_in(app, email: str, password: str):
    client = client_for(app)
    page = client.get("/login").text
    answer = client.post("/login", data={"csrf": csrf_of(page), "email": email,
                                         "password": password, "next": "/my/sent"})  # fmt: skip
    return client, answer


def test_the_directory_password_signs_in_a_person_without_an_account(site):
    parts, app, _ = site
    assert not parts.directory.has_account(KIM)
    client, answer = signing_in(app, KIM, KIM_PASSWORD)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/my/sent"
    assert client.get("/my/sent").status_code == 200


def test_a_wrong_password_is_refused_and_counted_for_the_lockout(site):
    _parts, app, _ = site
    for _ in range(5):  # lock_after
        assert signing_in(app, KIM, "wrong-password")[1].status_code == 401
    _client, locked = signing_in(app, KIM, KIM_PASSWORD)
    assert locked.status_code == 401  # the right password, but locked for the window


def test_a_disabled_account_is_refused(site, slapd):  # noqa: F811
    parts, app, passwords = site
    assert parts.directory.user(OLD).disabled  # synced as disabled
    assert passwords.check(OLD, OLD_PASSWORD) is False  # the search leaves it out
    assert signing_in(app, OLD, OLD_PASSWORD)[1].status_code == 401
    # disabled in LDAP after the last sync: refused at once, not at the next pass
    slapd.modify(f"uid=kim,{SALES}", {"description": ["disabled"]})
    assert signing_in(app, KIM, KIM_PASSWORD)[1].status_code == 401


def test_an_empty_password_or_a_filter_in_the_address_signs_nobody_in(site):
    _parts, app, passwords = site
    assert passwords.check(KIM, "") is False  # an unauthenticated bind is no sign-in
    assert signing_in(app, KIM, "")[1].status_code == 401
    # the address is a filter value, escaped: "k*" finds no entry to bind as
    assert passwords.check("k*@corp.example", KIM_PASSWORD) is False
    assert passwords.check("*", KIM_PASSWORD) is False
    assert passwords.check(KIM, KIM_PASSWORD) is True


def test_the_person_filter_escapes_the_address(tmp_path):
    section = ldap_section(tmp_path, "ldap://127.0.0.1:1")
    assert person_filter(section, "a*)(uid=*\\@x") == (
        r"(&(objectClass=inetOrgPerson)(mail=a\2a\29\28uid=\2a\5c@x)(!(description=disabled)))"
    )


def test_the_agent_checks_directory_passwords_when_ldap_is_set(tmp_path, slapd):  # noqa: F811
    """The whole service, as the agent starts it with [directory.ldap]: its first sync pass
    brings 김 in, and 김 signs in to its web listener with the directory password."""
    from types import SimpleNamespace

    import httpx

    from tests.support.outbound import MemoryAudit, RecordingPublisher, start_outbound, wait_for

    slapd.modify(f"uid=kim,{SALES}", {"userPassword": [KIM_PASSWORD]})
    config = SimpleNamespace(directory=SimpleNamespace(ldap=ldap_section(tmp_path, slapd.url)))
    running = start_outbound(tmp_path, config=config, audit=MemoryAudit(),
                             publisher=RecordingPublisher())  # fmt: skip
    try:
        directory = running.service.workflow.directory
        wait_for(lambda: directory.user(KIM) is not None, what="the first sync pass")
        with httpx.Client(base_url=running.web_url, follow_redirects=False) as client:
            page = client.get("/login").text
            answer = client.post("/login", data={"csrf": csrf_of(page), "email": KIM,
                                                 "password": KIM_PASSWORD, "next": "/my/sent"})  # fmt: skip
            assert answer.status_code == 303, answer.text
            assert client.get("/my/sent").status_code == 200
    finally:
        running.stop()
