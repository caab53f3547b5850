"""Two domain controllers (D92): ``[directory.ldap] url`` a list, asked in order. Against two
real OpenLDAP servers (Debian's slapd, the same people on each): with the first stopped,
sign-in goes through the second at once and a wrong password is still wrong; the sync reads
the second; ``maildiode status`` and the dashboard name the server that answered and the one
that is down; only when both are down is the directory unreachable (503, the status command's
warning exit); when the first is back it answers again. The old form (one URL) still loads."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from inner_agent.console.data import ConsoleData
from inner_agent.console.places import ConsolePlaces
from inner_agent.outbound.directory_health import health_recorder
from inner_agent.outbound.directory_sync import DirectorySync, sync_duty
from inner_agent.outbound.ldap_bind import DirectoryState, LdapPasswords
from inner_agent.outbound.ldap_config import LdapSection
from inner_agent.web.pages import UNREACHABLE, WRONG
from maildiode.commands.status import describe_directory, directory_down, directory_status
from tests.inner.outbound.test_ldap_outage import Ticking
from tests.inner.outbound.test_ldap_signin import KIM, KIM_PASSWORD, signing_in
from tests.inner.outbound.test_ldap_sync import (  # noqa: F401 - slapd is a fixture
    ENTRIES,
    SALES,
    Recorded,
    ldap_section,
    slapd,
)
from tests.support.outbound import approval_app, build_workflow
from tests.support.slapd import Slapd, running_slapd

pytestmark = pytest.mark.e2e

# "At once": the stopped first server refuses the connection, no timeout is waited for; a
# loaded test machine's sign-in (argon2, two LDAP round trips) stays well under this.
AT_ONCE_S = 2.5


@pytest.fixture
def second(tmp_path) -> Iterator[Slapd]:
    folder = tmp_path / "slapd-2"
    folder.mkdir()
    servers = running_slapd(folder)
    server = next(servers)
    server.add(ENTRIES)
    yield server
    servers.close()


def two_servers(tmp_path, first: Slapd, second: Slapd) -> LdapSection:
    one = ldap_section(tmp_path, first.url)
    return LdapSection.model_validate({**one.model_dump(), "url": [first.url, second.url]})


@pytest.fixture
def site(tmp_path, slapd, second):  # noqa: F811 - the fixture of the same name
    for server in (slapd, second):
        server.modify(f"uid=kim,{SALES}", {"userPassword": [KIM_PASSWORD]})
    section = two_servers(tmp_path, slapd, second)
    parts = build_workflow(tmp_path)
    DirectorySync(section, parts.directory, Recorded()).run_once()
    state_dir = parts.section.spool_dir.parent / "inner"
    state_dir.mkdir(exist_ok=True)
    passwords = LdapPasswords(section, clock=Ticking(parts.clock),
                              on_state=health_recorder(state_dir, "sign-in"))  # fmt: skip
    parts.directory.accounts.directory_password = passwords.check
    config = SimpleNamespace(state=SimpleNamespace(dir=state_dir),
                             directory=SimpleNamespace(ldap=section))  # fmt: skip
    return parts, approval_app(parts), config


def alarms(parts, config) -> dict[str, dict]:
    places = ConsolePlaces(directory_db=parts.section.directory_db, state_dir=config.state.dir)
    data = ConsoleData(places, zone=UTC, language="ko", clock=parts.clock)
    return {a["code"]: a for a in data.status("ko")["alarms"]}


def test_sign_in_goes_through_the_second_server_at_once_when_the_first_is_down(
    site,
    slapd,  # noqa: F811
    second,
):
    parts, app, config = site
    assert signing_in(app, KIM, KIM_PASSWORD)[1].status_code == 303
    slapd.stop()
    started = time.monotonic()
    client, answer = signing_in(app, KIM, KIM_PASSWORD)
    took = time.monotonic() - started
    assert answer.status_code == 303, answer.text
    assert took < AT_ONCE_S, took
    assert client.get("/my/sent").status_code == 200
    assert "ldap_unreachable" not in parts.audit.steps()  # the directory answered
    assert signing_in(app, KIM, "wrong-password")[1].status_code == 401  # still wrong

    found = directory_status(config)
    assert (found["state"], found["answered_by"]) == ("reachable", second.url)
    assert [s["server"] for s in found["down"]] == [slapd.url]
    assert not directory_down({"directory": found})
    (line,) = describe_directory(found)
    assert f"LDAP {second.url}: reachable (seen by sign-in); {slapd.url}: unreachable" in line
    alarm = alarms(parts, config)["directory_server_down"]
    assert slapd.url in alarm["message"]
    assert second.url in alarm["message"]
    assert "directory_unreachable" not in alarms(parts, config)

    second.stop()  # both down: now the directory is unreachable
    parts.clock.now += 2
    answer = signing_in(app, KIM, KIM_PASSWORD)[1]
    assert answer.status_code == 503
    assert UNREACHABLE in answer.text
    assert WRONG not in answer.text
    (event,) = [f for _m, step, f in parts.audit.events if step == "ldap_unreachable"]
    assert event["server"] == f"{slapd.url}, {second.url}"
    found = directory_status(config)
    assert found["state"] == "unreachable"
    assert {s["server"] for s in found["down"]} == {slapd.url, second.url}
    assert directory_down({"directory": found})
    assert "directory_unreachable" in alarms(parts, config)

    slapd.start()  # the first is back: asked again once its pause is over
    parts.clock.now += 16
    assert signing_in(app, KIM, KIM_PASSWORD)[1].status_code == 303
    found = directory_status(config)
    assert (found["state"], found["answered_by"]) == ("reachable", slapd.url)
    assert [s["server"] for s in found["down"]] == [second.url]


def test_the_sync_reads_the_second_server_and_says_the_first_is_down(
    tmp_path,
    slapd,  # noqa: F811
    second,
):
    section = two_servers(tmp_path, slapd, second)
    parts = build_workflow(tmp_path)
    slapd.stop()
    seen: list[DirectoryState] = []
    sync = DirectorySync(section, parts.directory, Recorded())
    sync_duty(sync, seen.append).one_pass()
    assert parts.directory.user(KIM) is not None
    (state,) = seen
    assert (state.reachable, state.server) == (True, second.url)
    assert [(s.server, s.reachable) for s in state.servers] == [(second.url, True),
                                                                (slapd.url, False)]  # fmt: skip
    second.stop()
    sync_duty(sync, seen.append).one_pass()
    assert (seen[-1].reachable, seen[-1].server) == (False, f"{slapd.url}, {second.url}")
    assert {s.server for s in seen[-1].servers} == {slapd.url, second.url}


def test_one_url_or_a_list_of_servers_and_nothing_else(tmp_path):
    one = ldap_section(tmp_path, "ldaps://dc1.corp.example:636")
    assert one.url == ("ldaps://dc1.corp.example:636",)
    base = one.model_dump()
    two = LdapSection.model_validate({**base, "url": ["ldaps://dc1:636", "ldaps://dc2:636"]})
    assert two.url == ("ldaps://dc1:636", "ldaps://dc2:636")
    for wrong, said in (([], "names no server"), (["ldaps://dc1", "ldaps://dc1"], "twice"),
                        (["ldaps://dc1", "http://dc2"], "ldap:// or ldaps://"),
                        ([f"ldap://dc{n}" for n in range(9)], "at most 8")):  # fmt: skip
        with pytest.raises(ValidationError, match=said):
            LdapSection.model_validate({**base, "url": wrong})
