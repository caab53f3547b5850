"""The LDAP sync against a real OpenLDAP (Debian's slapd, started by the test in its folder):
people, departments (from the ou= tree) and managers come in; a manager change moves open
approvals to the new manager; a disabled account can no longer sign in or approve."""

from __future__ import annotations

import pytest

from agentkit.access import Action
from inner_agent.outbound.directory_sync import DirectorySync
from inner_agent.outbound.errors import DirectoryError
from inner_agent.outbound.ldap_config import LdapSection
from tests.inner.outbound.test_web import client_for, csrf_of, sign_in, token_of
from tests.inner.outbound.test_workflow import accept
from tests.support.command import maildiode
from tests.support.outbound import PASSWORDS, approval_app, build_workflow, rrn_mail
from tests.support.slapd import ROOT_DN, ROOT_PASSWORD, SUFFIX, running_slapd

pytestmark = pytest.mark.e2e

HQ = f"ou=경영본부,{SUFFIX}"
SALES = f"ou=영업부,{HQ}"
SECURITY = f"ou=보안팀,{HQ}"


def _person(uid: str, ou: str, name: str, title: str, **more: str) -> tuple[str, dict]:
    attributes = {
        "objectClass": ["inetOrgPerson"], "uid": [uid], "cn": [name], "sn": [name[0]],
        "displayName": [name], "mail": [f"{uid}@corp.example"], "title": [title],
    }  # fmt: skip
    attributes.update({key: [value] for key, value in more.items()})
    return f"uid={uid},{ou}", attributes


ENTRIES = [
    (HQ, {"objectClass": ["organizationalUnit"], "ou": ["경영본부"]}),
    (SALES, {"objectClass": ["organizationalUnit"], "ou": ["영업부"]}),
    (SECURITY, {"objectClass": ["organizationalUnit"], "ou": ["보안팀"]}),
    _person("choi", HQ, "최고위", "본부장", employeeType="부서장"),
    _person("lee", SALES, "이영희", "부장", employeeType="부서장", manager=f"uid=choi,{HQ}"),
    _person("park", SALES, "박민수", "과장", employeeType="대결자", manager=f"uid=lee,{SALES}"),
    _person("kim", SALES, "김철수", "대리", manager=f"uid=lee,{SALES}"),
    _person("jung", SECURITY, "정보안", "차장", employeeType="보안담당자"),
    _person("old", SALES, "퇴사자", "사원", description="disabled"),
]


@pytest.fixture
def slapd(tmp_path):
    server_folder = tmp_path / "slapd"
    server_folder.mkdir()
    servers = running_slapd(server_folder)
    server = next(servers)
    server.add(ENTRIES)
    yield server
    servers.close()


def ldap_section(tmp_path, url: str) -> LdapSection:
    (tmp_path / "ldap.password").write_text(ROOT_PASSWORD + "\n")
    return LdapSection.model_validate(
        {
            "url": url,
            "base_dn": SUFFIX,
            "bind_dn": ROOT_DN,
            "bind_password_file": "ldap.password",
            "disabled_filter": "(description=disabled)",
            "interval_s": 60,
            "attributes": {"role": "employeeType"},
        },
        context={"config_dir": tmp_path},
    )


class Recorded(list):
    def __call__(self, action, detail, *, mail_id=None, count=None):
        self.append((action, detail, mail_id))


def syncer(tmp_path, slapd, parts, recorded):
    from inner_agent.outbound.approvers import Approvers

    approvers = Approvers(parts.directory, None)
    return DirectorySync(ldap_section(tmp_path, slapd.url), parts.directory, recorded,
                         open_requests=(parts.state, approvers), clock=parts.clock)  # fmt: skip


def test_sync_imports_people_departments_and_managers(tmp_path, slapd):
    parts = build_workflow(tmp_path)
    recorded = Recorded()
    outcome = syncer(tmp_path, slapd, parts, recorded).run_once()
    directory = parts.directory
    kim = directory.user("kim@corp.example")
    assert (kim.name, kim.department, kim.rank, kim.manager) == (
        "김철수", "영업부", "대리", "lee@corp.example",
    )  # fmt: skip
    assert directory.department("영업부").parent == "경영본부"
    assert directory.department("경영본부").parent is None
    assert directory.user("lee@corp.example").role == "head"
    assert directory.user("park@corp.example").role == "delegate"
    assert directory.security_officers() == ("jung@corp.example",)
    assert directory.user("old@corp.example").disabled
    assert directory.manager_of("kim@corp.example") == "lee@corp.example"
    assert directory.sub_departments("경영본부") == {"경영본부", "영업부", "보안팀"}
    # the CSV's people all came back from LDAP (changed: ranks, managers); one more, disabled
    assert outcome.report.users.added == ["old@corp.example"]
    assert "rank - → 대리" in outcome.report.users.details["kim@corp.example"]
    assert (Action.DIRECTORY_CHANGED, "user old@corp.example added", None) in recorded
    assert recorded[0][0] is Action.DIRECTORY_IMPORTED
    stored = directory.reports(1)[0]
    assert stored.source == f"ldap {slapd.url}"
    assert "user + old@corp.example" in stored.lines
    # a second pass with nothing changed changes nothing and reports nothing
    assert not syncer(tmp_path, slapd, parts, Recorded()).run_once().report


def test_a_manager_change_moves_open_approvals_to_the_new_manager(tmp_path, slapd):
    parts = build_workflow(tmp_path)
    sync = syncer(tmp_path, slapd, parts, Recorded())
    sync.run_once()
    mail_id = accept(parts, rrn_mail())  # kim's mail: his manager lee is asked
    request = parts.state.request_for_mail(mail_id)
    assert request.approvers == ("lee@corp.example",)
    lee = client_for(approval_app(parts))
    sign_in(lee, "lee@corp.example")
    detail = lee.get(f"/requests/{request.request_id}").text

    slapd.modify(f"uid=kim,{SALES}", {"manager": [f"uid=park,{SALES}"]})
    recorded = Recorded()
    sync = syncer(tmp_path, slapd, parts, recorded)
    handed: list[list[str]] = []
    sync.on_moved = lambda moves: handed.append([m.request_id for m in moves])
    outcome = sync.run_once()

    moved = parts.state.request(request.request_id)
    assert moved.approvers == ("park@corp.example",)
    assert [m.request_id for m in outcome.moved] == [request.request_id]
    # the new manager is asked at once, as for a new request, not at the reminder
    assert handed == [[request.request_id]]
    asked_before = [n.rcpt for n in parts.state.notices() if n.kind == "request"]
    assert parts.workflow.ask_moved(handed[0]) == 1
    asked = [n.rcpt for n in parts.state.notices() if n.kind == "request"]
    assert asked.count("park@corp.example") == asked_before.count("park@corp.example") + 1
    requested = [f for m, step, f in parts.audit.events
                 if m == mail_id and step == "approval_requested"]  # fmt: skip
    assert requested[-1]["approvers"] == ["park@corp.example"]
    assert any(r[0] is Action.DIRECTORY_CHANGED and r[2] == mail_id for r in recorded)
    refused = lee.post(f"/requests/{request.request_id}/decide", data={
        "csrf": csrf_of(detail), "token": token_of(detail), "action": "approve"})  # fmt: skip
    assert refused.status_code != 303 or "approved" not in refused.headers.get("location", "")
    assert parts.state.mail(mail_id).state == "held"
    park = client_for(approval_app(parts))
    sign_in(park, "park@corp.example")
    page = park.get(f"/requests/{request.request_id}").text
    done = park.post(f"/requests/{request.request_id}/decide", data={
        "csrf": csrf_of(page), "token": token_of(page), "action": "approve"})  # fmt: skip
    assert done.headers["location"] == "/requests?done=approved"
    assert parts.state.mail(mail_id).state == "sending"


def test_a_disabled_account_can_no_longer_sign_in_or_approve(tmp_path, slapd):
    parts = build_workflow(tmp_path)
    syncer(tmp_path, slapd, parts, Recorded()).run_once()
    mail_id = accept(parts, rrn_mail())
    request = parts.state.request_for_mail(mail_id)
    lee = client_for(approval_app(parts))
    sign_in(lee, "lee@corp.example")
    detail = lee.get(f"/requests/{request.request_id}")
    assert detail.status_code == 200

    slapd.modify(f"uid=lee,{SALES}", {"description": ["disabled"]})
    syncer(tmp_path, slapd, parts, Recorded()).run_once()

    assert parts.directory.user("lee@corp.example").disabled
    assert not parts.directory.accounts.roles("lee@corp.example")
    assert not parts.directory.check_password("lee@corp.example", PASSWORDS["lee@corp.example"])
    # the open session is refused on its next request, and the decision with it
    decided = lee.post(f"/requests/{request.request_id}/decide", data={
        "csrf": csrf_of(detail.text), "token": token_of(detail.text), "action": "approve"})  # fmt: skip
    assert decided.status_code in (303, 403)
    assert "done=approved" not in decided.headers.get("location", "")
    assert parts.state.mail(mail_id).state == "held"
    fresh = client_for(approval_app(parts))
    page = fresh.get("/login").text
    refused = fresh.post("/login", data={"csrf": csrf_of(page), "email": "lee@corp.example",
                                         "password": PASSWORDS["lee@corp.example"],
                                         "next": "/requests"})  # fmt: skip
    assert refused.status_code != 303
    # kim's mail now waits for the department's delegate, not for the disabled manager
    assert parts.state.request(request.request_id).approvers == ("park@corp.example",)
    assert "lee@corp.example" not in parts.directory.approvers_of("영업부")


def test_a_search_that_finds_nobody_keeps_the_directory(tmp_path, slapd):
    parts = build_workflow(tmp_path)
    section = ldap_section(tmp_path, slapd.url).model_copy(update={"base_dn": f"ou=없음,{SUFFIX}"})
    with pytest.raises(DirectoryError, match="LDAP"):
        DirectorySync(section, parts.directory, Recorded()).run_once()
    assert len(parts.directory.users()) == 5


def test_the_command_runs_one_pass_and_a_dry_run_changes_nothing(tmp_path, slapd):
    config = tmp_path / "inner.toml"
    (tmp_path / "ldap.password").write_text(ROOT_PASSWORD + "\n")
    config.write_text(
        '[outbound]\ndirectory_db = "dir.db"\n'
        f'[directory.ldap]\nurl = "{slapd.url}"\nbase_dn = "{SUFFIX}"\nbind_dn = "{ROOT_DN}"\n'
        'bind_password_file = "ldap.password"\ndisabled_filter = "(description=disabled)"\n'
        '[directory.ldap.attributes]\nrole = "employeeType"\n'
    )
    dry = maildiode("directory", "sync", "--dry-run", "-c", str(config))
    assert dry.returncode == 0, dry.stderr
    assert "users: 6 added, 0 changed, 0 removed" in dry.stdout
    assert "dry run, nothing changed" in dry.stdout
    listing = maildiode("directory", "list", "-c", str(config))
    assert listing.stdout == ""
    done = maildiode("directory", "sync", "-c", str(config))
    assert done.returncode == 0, done.stderr
    assert "  + kim@corp.example" in done.stdout
    assert (
        "kim@corp.example\t김철수\t영업부\tmember\t-"
        in maildiode("directory", "list", "-c", str(config)).stdout.splitlines()
    )
    reports = maildiode("directory", "reports", "-c", str(config)).stdout
    assert f"ldap {slapd.url}\tusers: 6 added" in reports


def test_the_agent_syncs_on_its_schedule_and_records_it(tmp_path, slapd):
    from types import SimpleNamespace

    from tests.support.outbound import MemoryAudit, RecordingPublisher, start_outbound, wait_for

    audit = MemoryAudit()
    ldap = ldap_section(tmp_path, slapd.url)
    config = SimpleNamespace(directory=SimpleNamespace(ldap=ldap))
    running = start_outbound(tmp_path, config=config, audit=audit, publisher=RecordingPublisher())
    try:
        directory = running.service.workflow.directory
        wait_for(lambda: directory.manager_of("kim@corp.example") == "lee@corp.example",
                 what="the first sync pass at start")  # fmt: skip
        wait_for(lambda: any(f.get("action") == "directory_imported" for _m, s, f in audit.events
                             if s == "access"), what="the sync's access record")  # fmt: skip
        actors = {f["account"] for _m, s, f in audit.events if s == "access"}
        assert actors == {"ldap-sync"}
        assert running.service._sync is not None
    finally:
        running.stop()
    assert running.service._sync is None


def test_ldaps_certificates_are_verified(tmp_path):
    """ldap3 verifies nothing by default: an ldaps:// server with a certificate nobody vouches
    for would get the bind password. The sync refuses it unless ca_file names its CA."""
    import trustme

    ca = trustme.CA()
    folder = tmp_path / "slapd-tls"
    folder.mkdir()
    servers = running_slapd(folder, tls=ca)
    server = next(servers)
    try:
        server.add(ENTRIES)
        parts = build_workflow(tmp_path)
        section = ldap_section(tmp_path, server.ldaps_url)
        with pytest.raises(DirectoryError, match="LDAP ldaps://127.0.0.1"):
            DirectorySync(section, parts.directory, Recorded()).run_once()
        assert parts.directory.user("kim@corp.example").manager == ""  # nothing changed
        trusted = section.model_copy(update={"ca_file": folder / "ca.pem"})
        DirectorySync(trusted, parts.directory, Recorded()).run_once()
        assert parts.directory.user("kim@corp.example").manager == "lee@corp.example"
    finally:
        servers.close()


def test_the_command_on_a_standby_host_is_refused_and_changes_nothing(tmp_path, slapd):
    """D98: another host's agent holds the state's lease; a sync from here rewrites the
    directory that agent decides by (the old command did: 6 users added, exit 0). A dry run
    writes nothing and still runs."""
    from agentkit.lease import Claimant
    from agentkit.leasekeeper import LeaseStore

    config = tmp_path / "inner.toml"
    (tmp_path / "ldap.password").write_text(ROOT_PASSWORD + "\n")
    config.write_text(
        '[state]\ndir = "inner"\n[lease]\nholder = "standby-host"\n'
        '[outbound]\ndirectory_db = "dir.db"\n'
        f'[directory.ldap]\nurl = "{slapd.url}"\nbase_dn = "{SUFFIX}"\nbind_dn = "{ROOT_DN}"\n'
        'bind_password_file = "ldap.password"\n'
    )
    (tmp_path / "inner").mkdir()
    lease = LeaseStore(tmp_path / "inner")
    lease.attempt(Claimant("active-host", 4242, 600.0))
    lease.close()
    refused = maildiode("directory", "sync", "-c", str(config))
    assert refused.returncode == 4
    assert "directory sync: refused: this host (standby-host) is a standby" in refused.stderr
    assert "held by active-host" in refused.stderr
    assert maildiode("directory", "list", "-c", str(config)).stdout == ""
    dry = maildiode("directory", "sync", "--dry-run", "-c", str(config))
    assert dry.returncode == 0, dry.stderr


def test_a_standby_taking_over_during_the_fetch_stops_the_commands_sync(
    tmp_path, slapd, monkeypatch, capsys
):
    """The hand command checked the lease at its start only (D98): a standby that took the
    lease while the LDAP fetch ran (here: at its end) still got a directory replaced under it
    (the old command: 6 users added, exit 0). The replace now runs under the lease's lock,
    with the row read again: exit 4, nothing changed, the message says it was taken meanwhile."""
    from agentkit.lease import Claimant
    from agentkit.leasekeeper import LeaseStore
    from maildiode.cli import main

    config = tmp_path / "inner.toml"
    (tmp_path / "ldap.password").write_text(ROOT_PASSWORD + "\n")
    config.write_text(
        '[state]\ndir = "inner"\n[lease]\nholder = "this-host"\n'
        '[outbound]\ndirectory_db = "dir.db"\n'
        f'[directory.ldap]\nurl = "{slapd.url}"\nbase_dn = "{SUFFIX}"\nbind_dn = "{ROOT_DN}"\n'
        'bind_password_file = "ldap.password"\n'
    )
    (tmp_path / "inner").mkdir()
    lease = LeaseStore(tmp_path / "inner")
    lease.attempt(Claimant("this-host", 4242, 600.0))  # this host's agent: the check passes
    fetch = DirectorySync._fetch

    def fetch_then_lose_the_lease(sync):
        fetched = fetch(sync)
        lease.release(Claimant("this-host", 4242, 600.0), 1)  # its agent stopped...
        lease.attempt(Claimant("other-host", 5353, 600.0))  # ...and the standby took over
        return fetched

    monkeypatch.setattr(DirectorySync, "_fetch", fetch_then_lose_the_lease)
    assert main(["directory", "sync", "-c", str(config)]) == 4
    lease.close()
    err = capsys.readouterr().err
    assert "directory sync: refused: this host (this-host) is a standby" in err
    assert "held by other-host (it was taken while this command ran)" in err
    assert "Nothing was written." in err
    assert maildiode("directory", "list", "-c", str(config)).stdout == ""


def test_a_hostile_attribute_skips_its_person_and_the_rest_syncs(tmp_path, slapd):
    """S6 red team: a person who may edit their own entry (or a compromised AD) writes CR/LF,
    a bidi override or a megabyte into displayName, title or mail; before the fix the value
    was stored as it came (a scope list split in two, an approver reading reordered text)."""
    slapd.modify(f"uid=kim,{SALES}", {"displayName": ["김철수\r\n보안팀 부서장"]})
    slapd.modify(f"uid=park,{SALES}", {"title": ["과장\u202e"]})
    slapd.modify(f"uid=jung,{SECURITY}", {"displayName": ["정" * (1 << 20)]})
    slapd.modify(f"uid=old,{SALES}", {"mail": ["old@corp.example,ceo@corp.example"]})
    parts = build_workflow(tmp_path)
    outcome = syncer(tmp_path, slapd, parts, Recorded()).run_once()
    kept = {user.email for user in parts.directory.users()}
    assert kept == {"choi@corp.example", "lee@corp.example"}
    notes = "\n".join(outcome.notes)
    for uid, what in (("kim", "name"), ("park", "rank"), ("jung", "name")):
        assert f"skipped: its {what} " in notes.split(f"uid={uid},")[1].split("\n")[0], uid
    assert "uid=old," in notes
    assert len(notes) < 4000
    for user in parts.directory.users():
        assert user.name.isprintable()
        assert len(user.name) <= 200
