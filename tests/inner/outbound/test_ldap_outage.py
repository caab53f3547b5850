"""An LDAP outage is not a wrong password (decision "An LDAP outage is not a wrong password"):
against a real OpenLDAP (Debian's slapd) that is stopped, and a server that accepts and never
answers. Nobody is locked or counted for spraying, each try is told the directory cannot be
reached, local accounts still sign in, the dashboard and ``maildiode status`` say it; once the
server is back the right password signs in."""

from __future__ import annotations

import socket
import time
from datetime import UTC
from types import SimpleNamespace

import pytest

from agentkit.audit import AuditLog
from inner_agent.console.data import ConsoleData
from inner_agent.console.places import ConsolePlaces
from inner_agent.outbound.directory_health import health_recorder, read_health
from inner_agent.outbound.directory_sync import DirectorySync, sync_duty
from inner_agent.outbound.errors import DirectoryUnreachable
from inner_agent.outbound.ldap_bind import DirectoryState, LdapPasswords
from inner_agent.outbound.ldap_sync import fetch_entries
from inner_agent.web.pages import UNREACHABLE, WRONG
from maildiode.commands.status import describe_directory, directory_status
from maildiode.trial.stack import free_port
from tests.inner.outbound.test_ldap_signin import KIM, KIM_PASSWORD, signing_in
from tests.inner.outbound.test_ldap_sync import (  # noqa: F401 - slapd is a fixture
    SALES,
    Recorded,
    ldap_section,
    slapd,
    syncer,
)
from tests.support.outbound import PASSWORDS, approval_app, build_workflow

pytestmark = pytest.mark.e2e

LEE = "lee@corp.example"  # has a password of our own as well (an approver's account)
PEOPLE = [KIM, "park@corp.example", "choi@corp.example", "jung@corp.example", LEE]
# A sign-in against a server that never answers: the default signin_timeout_s (3 s) for
# the first answer, and some slack for a busy test machine; the old code waited 10 s.
SLOW_SIGNIN_LIMIT_S = 7.0


class Ticking:
    """The sign-in's clock and the directory pause's, moved by the test."""

    def __init__(self, clock) -> None:
        self.clock = clock

    def __call__(self) -> float:
        return self.clock.now


@pytest.fixture
def site(tmp_path, slapd):  # noqa: F811 - the fixture of the same name
    slapd.modify(f"uid=kim,{SALES}", {"userPassword": [KIM_PASSWORD]})
    parts = build_workflow(tmp_path)
    syncer(tmp_path, slapd, parts, Recorded()).run_once()
    state_dir = parts.section.spool_dir.parent / "inner"  # the listener's (listener_for)
    state_dir.mkdir(exist_ok=True)
    passwords = LdapPasswords(ldap_section(tmp_path, slapd.url), clock=Ticking(parts.clock),
                              on_state=health_recorder(state_dir, "sign-in"))  # fmt: skip
    parts.directory.accounts.directory_password = passwords.check  # as the agent opens it
    return parts, approval_app(parts), state_dir


def _dashboard_alarms(parts, state_dir) -> dict[str, dict]:
    places = ConsolePlaces(directory_db=parts.section.directory_db, state_dir=state_dir)
    data = ConsoleData(places, zone=UTC, language="ko", clock=parts.clock)
    return {a["code"]: a for a in data.status("ko")["alarms"]}


def test_an_outage_locks_nobody_out_and_the_right_password_works_once_it_is_back(site, slapd):  # noqa: F811
    parts, app, state_dir = site
    slapd.stop()
    # kim past lock_after (5), right and wrong passwords; then five accounts in all from one
    # client, as the spraying watch counts them
    tries = [(KIM, KIM_PASSWORD if n % 2 else f"wrong-{n}") for n in range(7)]
    tries += [(email, f"wrong-{email}") for email in PEOPLE[1:]] + [(KIM, KIM_PASSWORD)]
    for n, (email, password) in enumerate(tries):
        parts.clock.now += 2  # within the per-client bucket (10 a minute), across the pause
        _client, answer = signing_in(app, email, password)
        assert answer.status_code == 503, (n, answer.text)
        assert UNREACHABLE in answer.text
        assert WRONG not in answer.text
    unreachable = [f for _m, step, f in parts.audit.events if step == "ldap_unreachable"]
    assert unreachable, parts.audit.events
    assert {f["server"] for f in unreachable} == {slapd.url}
    assert all("Socket" in f["reason"] or "refused" in f["reason"] for f in unreachable)
    assert "signin_spraying" not in parts.audit.steps()
    real = AuditLog(parts.section.spool_dir.parent / "audit-check.db", agent="inner")
    real.record("-", "ldap_unreachable", **unreachable[0])  # a step the audit log takes
    real.close()
    # an account's own password does not need the directory
    assert signing_in(app, LEE, PASSWORDS[LEE])[1].status_code == 303
    alarm = _dashboard_alarms(parts, state_dir)["directory_unreachable"]
    assert slapd.url in alarm["message"]

    slapd.start()
    parts.clock.now += 16  # past signin_pause_s: the directory is asked again
    client, answer = signing_in(app, KIM, KIM_PASSWORD)
    assert answer.status_code == 303, answer.text  # not locked: no try was counted
    assert client.get("/my/sent").status_code == 200
    assert read_health(state_dir)["reachable"] is True
    assert "directory_unreachable" not in _dashboard_alarms(parts, state_dir)
    # and a wrong password is a wrong password again
    answer = signing_in(app, KIM, "wrong-again")[1]
    assert answer.status_code == 401
    assert WRONG in answer.text


def test_a_server_that_never_answers_costs_seconds_and_is_not_a_wrong_password(tmp_path):
    with socket.socket() as blackhole:  # accepts connections (the backlog) and never answers
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(8)
        url = f"ldap://127.0.0.1:{blackhole.getsockname()[1]}"
        passwords = LdapPasswords(ldap_section(tmp_path, url))  # the default timeouts
        started = time.monotonic()
        with pytest.raises(DirectoryUnreachable) as raised:
            passwords.check(KIM, KIM_PASSWORD)
        took = time.monotonic() - started
    assert took < SLOW_SIGNIN_LIMIT_S, took
    assert raised.value.server == url
    assert raised.value.asked


def test_after_a_failure_the_directory_is_not_asked_for_the_pause(tmp_path):
    clock = SimpleNamespace(now=1000.0)
    seen: list[DirectoryState] = []
    section = ldap_section(tmp_path, f"ldap://127.0.0.1:{free_port()}")  # nobody listens
    passwords = LdapPasswords(section, clock=lambda: clock.now, on_state=seen.append)
    with pytest.raises(DirectoryUnreachable) as first:
        passwords.check(KIM, KIM_PASSWORD)
    assert first.value.asked
    clock.now += section.signin_pause_s - 1
    with pytest.raises(DirectoryUnreachable) as paused:
        passwords.check(KIM, "wrong")
    assert not paused.value.asked
    assert "not asked for 1 s more" in paused.value.reason
    clock.now += 2
    with pytest.raises(DirectoryUnreachable) as again:
        passwords.check(KIM, KIM_PASSWORD)
    assert again.value.asked
    assert [s.reachable for s in seen] == [False]  # said once, when it went down


def test_a_busy_or_unavailable_answer_is_not_a_wrong_password(tmp_path):
    from inner_agent.outbound.ldap_bind import _raise_if_not_now

    section = ldap_section(tmp_path, "ldap://127.0.0.1:1")
    for code in (51, 52):
        with pytest.raises(DirectoryUnreachable, match=str(code)):
            _raise_if_not_now(section.url[0], {"result": code, "message": "later"})
    url = section.url[0]
    _raise_if_not_now(url, {"result": 49, "description": "invalidCredentials"})  # an answer


def test_the_sync_and_the_status_command_say_the_directory_is_unreachable(tmp_path, slapd):  # noqa: F811
    section = ldap_section(tmp_path, slapd.url)
    slapd.stop()
    with pytest.raises(DirectoryUnreachable):
        fetch_entries(section)
    seen: list[DirectoryState] = []
    parts = build_workflow(tmp_path)
    duty = sync_duty(DirectorySync(section, parts.directory, Recorded()), seen.append)
    duty.one_pass()
    assert [(s.server, s.reachable) for s in seen] == [(slapd.url, False)]
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    health_recorder(state_dir, "sync")(seen[0])
    config = SimpleNamespace(state=SimpleNamespace(dir=state_dir),
                             directory=SimpleNamespace(ldap=section))  # fmt: skip
    found = directory_status(config)
    assert found["state"] == "unreachable"
    assert found["source"] == "sync"
    (line,) = describe_directory(found)
    assert f"LDAP {slapd.url}: unreachable" in line

    slapd.start()
    duty.one_pass()
    assert [s.reachable for s in seen] == [False, True]
