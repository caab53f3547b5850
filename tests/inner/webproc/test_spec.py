"""What the agent tells its web process crosses as JSON and is checked like a config file."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from agentkit.settings import LogSection
from inner_agent.web.config import ConsoleSection
from inner_agent.webproc.errors import WebProcessFailed
from inner_agent.webproc.spec import MAX_SPEC_BYTES, WebSpec, read_spec
from tests.support.outbound import make_section


def spec(tmp_path) -> WebSpec:
    return WebSpec(
        outbound=make_section(tmp_path, web={"nice": 7}),
        console=ConsoleSection(timezone="UTC", language="en"),
        log=LogSection(level="debug", format="json", file=tmp_path / "inner.log"),
        audit_path=tmp_path / "audit.db",
        state_dir=tmp_path / "inner",
    )


def test_the_spec_round_trips(tmp_path) -> None:
    sent = spec(tmp_path)
    assert read_spec(sent.to_bytes()) == sent
    assert read_spec(sent.to_bytes()).outbound.web.nice == 7


def test_the_lease_the_agent_runs_under_crosses(tmp_path) -> None:
    from agentkit.lease import Terms

    sent = spec(tmp_path).model_copy(update={"lease": Terms("inner-a", 4242, 7, 20.0)})
    assert read_spec(sent.to_bytes()).lease == Terms("inner-a", 4242, 7, 20.0)


def test_the_web_process_console_reads_the_directory_as_the_agent_does(tmp_path) -> None:
    """Without the directory's database the web process's dashboard showed no directory alarm
    at all (an LDAP server down, the directory empty, departments without an approver)."""
    from inner_agent.console.places import places_from

    sent = read_spec(spec(tmp_path).to_bytes())
    agent = places_from(SimpleNamespace(outbound=sent.outbound))
    places = sent.console_places
    assert places.directory_db == sent.outbound.directory_db == agent.directory_db
    assert places.fallback_approver == agent.fallback_approver


def test_no_secret_crosses(tmp_path) -> None:
    sent = spec(tmp_path)
    (tmp_path / "web.secret").write_bytes(b"s" * 32)
    assert b"ssssssss" not in sent.to_bytes()
    assert str(sent.outbound.web.secret_key_file).encode() in sent.to_bytes()


@pytest.mark.parametrize(
    ("change", "what"),
    [
        (lambda fields: fields | {"shell": "rm -rf /"}, "does not validate"),
        (lambda fields: {**fields, "audit_path": None}, "does not validate"),
        (lambda fields: fields["outbound"]["web"].update(nice=40) or fields, "does not validate"),
    ],
)
def test_a_spec_that_does_not_validate_is_refused(tmp_path, change, what) -> None:
    fields = json.loads(spec(tmp_path).to_bytes())
    with pytest.raises(WebProcessFailed, match=what):
        read_spec(json.dumps(change(fields)).encode())


def test_garbage_and_oversize_are_refused(tmp_path) -> None:
    with pytest.raises(WebProcessFailed, match="does not validate"):
        read_spec(b"\x00not json")
    with pytest.raises(WebProcessFailed, match="larger than"):
        read_spec(b" " * (MAX_SPEC_BYTES + 1))


def test_the_ldap_section_crosses_but_not_its_password(tmp_path) -> None:
    from inner_agent.outbound.ldap_config import LdapSection

    (tmp_path / "ldap.password").write_text("the-service-password\n")
    ldap = LdapSection.model_validate(
        {"url": "ldap://127.0.0.1:389", "base_dn": "dc=corp", "bind_dn": "cn=sync",
         "bind_password_file": "ldap.password"}, context={"config_dir": tmp_path})  # fmt: skip
    sent = spec(tmp_path).model_copy(update={"ldap": ldap})
    assert read_spec(sent.to_bytes()).ldap == ldap
    assert b"the-service-password" not in sent.to_bytes()
