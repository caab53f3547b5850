"""A new site is warned loudly when outbound mail would have nobody to approve it: ``maildiode
check`` names the empty directory or the department (exit 1), the agent logs it at start, the
console dashboard shows it; and ``maildiode directory import`` reads Korean headers and role
names, with ``--dry-run`` showing the change per person before it applies."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest

from inner_agent.console.data import ConsoleData
from inner_agent.console.places import ConsolePlaces
from inner_agent.outbound.directory import Directory
from inner_agent.outbound.directory_model import Department, Snapshot, User
from tests.support.greeter import smtp_greeter

KOREAN_CSV = (
    "이메일,이름,부서,상위부서,직급,역할\n"
    "kim@bank.example,김철수,영업1팀,영업부,대리,\n"
    "lee@bank.example,이영희,영업1팀,영업부,팀장,부서장\n"
    "park@bank.example,박민수,영업1팀,영업부,과장,대결자\n"
    "choi@bank.example,최고위,영업부,,부장,부서장\n"
    "jung@bank.example,정보안,보안팀,,차장,보안담당자\n"
    "han@bank.example,한관리,보안팀,,과장,관리자\n"
)


def maildiode(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "maildiode", *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("site") / "x"
    with smtp_greeter() as internal, smtp_greeter() as relay:
        result = maildiode("init", str(root), "--domain", "bank.example", "--smtp-port", "3527",
                           "--relay", relay, "--internal-smtp", internal)  # fmt: skip
        assert result.returncode == 0, result.stderr
        yield root


def test_check_warns_of_an_empty_directory_and_of_a_department_without_approver(site):
    config = str(site / "inner.toml")
    empty = maildiode("check", "-c", config)
    assert empty.returncode == 1, empty.stdout + empty.stderr
    assert "outbound.directory_db: the directory" in empty.stdout + empty.stderr
    assert "is empty" in empty.stdout + empty.stderr

    hr = site / "인사.csv"
    hr.write_text(KOREAN_CSV, encoding="utf-8")
    preview = maildiode("directory", "import", str(hr), "--dry-run", "-c", config)
    assert preview.returncode == 0, preview.stderr
    assert "dry run, nothing changed" in preview.stdout
    assert "users: 6 added, 0 changed, 0 removed" in preview.stdout
    assert maildiode("directory", "list", "-c", config).stdout == ""  # nothing applied
    done = maildiode("directory", "import", str(hr), "-c", config)
    assert done.returncode == 0, done.stderr
    listing = maildiode("directory", "list", "-c", config).stdout.splitlines()
    assert "lee@bank.example\t이영희\t영업1팀\thead\t-" in listing
    assert "park@bank.example\t박민수\t영업1팀\tdelegate\t-" in listing
    assert "jung@bank.example\t정보안\t보안팀\tsecurity-officer\t-" in listing
    assert "han@bank.example\t한관리\t보안팀\tadministrator\t-" in listing
    # 보안팀 has an officer and an administrator, but nobody who approves its own mail
    found = maildiode("check", "-c", config)
    assert found.returncode == 1
    output = found.stdout + found.stderr
    assert "department '보안팀' has no head or delegate" in output
    assert "영업1팀" not in output

    promoted = KOREAN_CSV.replace("han@bank.example,한관리,보안팀,,과장,관리자",
                                  "han@bank.example,한관리,보안팀,,과장,부서장")  # fmt: skip
    hr.write_text(promoted, encoding="utf-8")
    again = maildiode("directory", "import", str(hr), "--dry-run", "-c", config)
    assert "  ~ han@bank.example: role administrator → head" in again.stdout
    maildiode("directory", "import", str(hr), "-c", config)
    clean = maildiode("check", "-c", config)
    assert clean.returncode == 0, clean.stdout + clean.stderr


def test_a_disabled_head_leaves_the_department_without_approver(tmp_path):
    from inner_agent.outbound.directory_check import directory_gaps

    db = tmp_path / "d.db"
    directory = Directory(db)
    head = User("h@x.kr", "H", "A", "head")
    directory.replace(Snapshot((head, User("m@x.kr", "M", "A", "")), ()), "test")
    assert not directory_gaps(db, fallback_approver=None)
    disabled = User("h@x.kr", "H", "A", "head", disabled=True)
    directory.replace(Snapshot((disabled, User("m@x.kr", "M", "A", "")), ()), "test")
    assert directory_gaps(db, fallback_approver=None).without_approver == ("A",)
    assert not directory_gaps(db, fallback_approver="fb@x.kr")
    with_manager = User("m@x.kr", "M", "A", "", manager="b@x.kr")
    directory.replace(Snapshot((disabled, with_manager, User("b@x.kr", "B", "B", "head")), ()),
                      "test")  # fmt: skip
    assert not directory_gaps(db, fallback_approver=None)  # the manager approves
    directory.close()


@pytest.mark.parametrize("language", ["ko", "en"])
def test_the_dashboard_shows_the_gaps(tmp_path, language):
    db = tmp_path / "d.db"
    Directory(db).close()
    data = ConsoleData(ConsolePlaces(directory_db=db), zone=UTC, language=language)
    alarms = {a["code"]: a for a in data.status(language)["alarms"]}
    assert "directory_empty" in alarms
    directory = Directory(db)
    directory.replace(Snapshot((User("m@x.kr", "M", "영업부", ""),), ()), "test")
    directory.close()
    alarms = {a["code"]: a for a in data.status(language)["alarms"]}
    assert "directory_empty" not in alarms
    assert "영업부" in alarms["department_without_approver"]["message"]


def test_the_agent_logs_the_gaps_at_start(tmp_path, caplog):
    from types import SimpleNamespace

    from inner_agent.outbound.service import OutboundService
    from tests.support.outbound import MemoryAudit, make_section

    section = make_section(tmp_path)
    service = OutboundService(SimpleNamespace(outbound=section), MemoryAudit())
    with caplog.at_level(logging.WARNING, logger="inner_agent.outbound.service"):
        service._warn_of_directory_gaps()
    assert "is empty: outbound mail has nobody to approve it" in caplog.text


def test_check_names_a_missing_or_open_ldap_password_file(site):
    config = site / "inner-ldap.toml"
    config.write_text((site / "inner.toml").read_text() + '\n[directory.ldap]\n'
                      'url = "ldap://127.0.0.1:1"\nbase_dn = "dc=corp"\nbind_dn = "cn=sync"\n'
                      'bind_password_file = "ldap.password"\n')  # fmt: skip
    missing = maildiode("check", "-c", str(config))
    assert missing.returncode == 2
    assert "inner-ldap.toml: directory.ldap.bind_password_file: " in missing.stdout + missing.stderr
    assert "does not exist" in missing.stdout + missing.stderr
    password = site / "ldap.password"
    password.write_text("secret\n")
    password.chmod(0o644)
    shown = maildiode("check", "-c", str(config))
    assert "is readable by others" in shown.stdout + shown.stderr
    password.chmod(0o600)
    fine = maildiode("check", "-c", str(config)).stdout
    assert "directory.ldap" not in fine


SCOPED_RULES = """
[[rule]]
id = "customer-lists"
action = "approve"
scope = "groups"
groups = ["고객정보 취급자", "고객정보취급자"]
[[rule.condition]]
field = "subject"
contains = "명단"

[[rule]]
id = "managers"
action = "monitor"
scope = "departments"
departments = ["영업부"]
sub_departments = true
[[rule.condition]]
field = "subject"
contains = "계약"
"""


def test_check_names_the_rule_and_key_of_an_unknown_group_rank_or_department(site):
    """A scope naming what the directory lacks applies to nobody: an error (exit 2)."""
    own = site / "scopes"
    own.mkdir()
    (own / "rules.toml").write_text(SCOPED_RULES, encoding="utf-8")
    text = (site / "inner.toml").read_text().replace(
        'directory_db = "inner/directory.db"',
        f'directory_db = "{own}/directory.db"\nrules_file = "{own}/rules.toml"')  # fmt: skip
    config = site / "inner-scopes.toml"
    config.write_text(text)
    directory = Directory(own / "directory.db")
    directory.replace(Snapshot((User("kim@bank.example", "김", "영업1팀", "", rank="대리",
                                     groups=("고객정보 취급자",)),
                                User("lee@bank.example", "이", "영업부", "head")),
                               (Department("영업부", None), Department("영업1팀", "영업부"))),
                      "test")  # fmt: skip
    directory.close()
    found = maildiode("check", "-c", str(config))
    output = found.stdout + found.stderr
    assert found.returncode == 2, output
    assert ("outbound.rules_file: rules.toml: rule 'customer-lists': groups: '고객정보취급자' "
            "is not a group of the directory") in output  # fmt: skip
    assert "'고객정보 취급자' is not" not in output
    assert "managers" not in output  # 영업부 is known
    (own / "rules.toml").write_text(SCOPED_RULES.replace(', "고객정보취급자"', ""), "utf-8")
    clean = maildiode("check", "-c", str(config))
    assert clean.returncode == 0, clean.stdout + clean.stderr
