"""``maildiode account``, ``maildiode token`` and ``maildiode audit review`` as an
administrator runs them: their exact output (a contract, docs/console.md and docs/api.md),
their exit status, and the access records they leave."""

from __future__ import annotations

import getpass
import io
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from agentkit.access import AccessLog, Action
from agentkit.audit import AuditLog
from inner_agent.web.api_tokens import TokenStore
from tests.support.command import maildiode
from tests.support.outbound import HR_CSV

AUDITOR = "auditor@audit.example"
ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+09:00"
TOKEN = re.compile(r"mdt_([0-9a-f]{12})_[A-Za-z0-9_-]{43}")
SEOUL = ZoneInfo("Asia/Seoul")


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "inner.toml"
    path.write_text('[outbound]\ndirectory_db = "dir.db"\n[audit]\npath = "audit.db"\n'
                    '[console]\ntimezone = "Asia/Seoul"\n')  # fmt: skip
    hr = tmp_path / "hr.csv"
    hr.write_bytes(HR_CSV)
    assert maildiode("directory", "import", str(hr), "-c", str(path)).returncode == 0
    return str(path)


def run(*args: str, stdin: str = ""):
    return maildiode(*args, stdin=stdin)


def access_actions(config: str) -> list[dict]:
    """The access records of the config's audit store (``maildiode audit`` wants a whole
    inner.toml; these tests write only the sections the commands read)."""
    store = AuditLog(Path(config).parent / "audit.db")
    try:
        return [e.details for e in store.query(step="access")]
    finally:
        store.close()


def test_accounts_from_the_command_line(config):
    added = run("account", "add", "-c", config, AUDITOR, "--role", "auditor", "--password-stdin",
                stdin="auditor pass phrase\n")  # fmt: skip
    assert (added.returncode, added.stdout) == (0, f"added {AUDITOR}: role auditor, "
                                                   "console-only account\n")  # fmt: skip
    choi = run("account", "add", "-c", config, "choi@corp.example", "--role", "admin",
               "--password-stdin", stdin="choi pass phrase\n")  # fmt: skip
    assert choi.stdout == "added choi@corp.example: role admin, directory account\n"
    again = run("account", "add", "-c", config, AUDITOR, "--role", "admin", "--password-stdin",
                stdin="another pass phrase\n")  # fmt: skip
    assert again.returncode == 1
    assert again.stderr.startswith(f"account add: {AUDITOR}: already has an account")
    short = run("account", "add", "-c", config, "x@audit.example", "--role", "admin",
                "--password-stdin", stdin="short\n")  # fmt: skip
    assert (short.returncode, short.stderr) == (
        1, "account add: x@audit.example: a password has at least 10 characters\n")  # fmt: skip
    no_stdin = run("account", "add", "-c", config, "x@audit.example", "--role", "admin")
    assert no_stdin.returncode == 2
    assert "--password-stdin" in no_stdin.stderr

    role = run("account", "role", "-c", config, AUDITOR, "security")
    assert role.stdout == f"{AUDITOR}: role security (was auditor)\n"
    password = run("account", "password", "-c", config, AUDITOR, "--stdin",
                   stdin="a new pass phrase\n")  # fmt: skip
    assert password.stdout == f"password set for {AUDITOR}\n"
    totp = run("account", "totp", "-c", config, AUDITOR).stdout.splitlines()
    assert totp[0] == (f"second factor set for {AUDITOR}; enter this in the authenticator app "
                       "(shown once):")  # fmt: skip
    assert re.fullmatch(r"secret: [A-Z2-7]{32}", totp[1])
    assert totp[2].startswith("uri: otpauth://totp/maildiode:")
    disabled = run("account", "disable", "-c", config, AUDITOR)
    assert disabled.stdout == (f"disabled {AUDITOR}: its sessions and API tokens stop working "
                               "until enabled\n")  # fmt: skip

    listing = run("account", "list", "-c", config).stdout.splitlines()
    assert len(listing) == 2
    assert re.fullmatch(rf"{AUDITOR}\tsecurity\tconsole-only\tdisabled\ttotp\t{ISO}", listing[0])
    assert re.fullmatch(rf"choi@corp.example\tadmin\tdirectory\tactive\t-\t{ISO}", listing[1])

    assert run("account", "enable", "-c", config, AUDITOR).stdout == f"enabled {AUDITOR}\n"
    off = run("account", "totp", "-c", config, AUDITOR, "off")
    assert off.stdout == f"second factor removed for {AUDITOR}\n"
    refused = run("account", "role", "-c", config, AUDITOR, "none")
    assert refused.returncode == 1
    assert "a console-only account needs a role" in refused.stderr

    actions = [(r["action"], r["account"], r["address"]) for r in access_actions(config)
               if not r["action"].startswith("directory_")]  # the fixture's HR import  # fmt: skip
    me = f"cli:{getpass.getuser()}"
    assert actions == [(a, me, "local") for a in (
        "account_created", "account_created", "role_changed", "password_changed",
        "totp_reset", "account_disabled", "account_enabled", "totp_removed")]  # fmt: skip


def test_tokens_from_the_command_line(config, tmp_path):
    run("account", "add", "-c", config, AUDITOR, "--role", "auditor", "--password-stdin",
        stdin="auditor pass phrase\n")  # fmt: skip
    created = run("token", "create", "-c", config, AUDITOR)
    assert created.returncode == 0, created.stderr
    token = created.stdout.removesuffix("\n")
    found = TOKEN.fullmatch(token)
    assert found, created.stdout  # the token alone on standard output
    token_id = found.group(1)
    assert created.stderr.startswith(f"token {token_id} for {AUDITOR} (auditor); shown once")
    listing = run("token", "list", "-c", config).stdout
    assert re.fullmatch(rf"{token_id}\t{AUDITOR}\t{ISO}\tnever\tlive\n", listing)
    assert token not in listing
    assert token.split("_", 2)[2] not in listing  # the secret part (it may hold "_")
    assert TokenStore(tmp_path / "dir.db").verify(token).account == AUDITOR  # it works
    assert re.fullmatch(
        rf"{token_id}\t{AUDITOR}\t{ISO}\t{ISO}\tlive\n", run("token", "list", "-c", config).stdout
    )  # and was last used now
    revoked = run("token", "revoke", "-c", config, token_id)
    assert revoked.stdout == f"revoked {token_id} ({AUDITOR})\n"
    assert TokenStore(tmp_path / "dir.db").verify(token) is None
    assert re.search(rf"\trevoked {ISO}\n$", run("token", "list", "-c", config).stdout)
    twice = run("token", "revoke", "-c", config, token_id)
    assert (twice.returncode, twice.stderr) == (1, f"token revoke: {token_id}: was revoked "
                                                   "before\n")  # fmt: skip

    approver = run("token", "create", "-c", config, "lee@corp.example")
    assert approver.returncode == 1
    assert approver.stdout == ""
    run("directory", "passwd", "lee@corp.example", "-c", config, stdin="lee pass phrase 1\n")
    no_role = run("token", "create", "-c", config, "lee@corp.example")
    assert no_role.returncode == 1
    assert "has no console role" in no_role.stderr

    for _ in range(2):
        run("token", "create", "-c", config, AUDITOR)
    removed = run("account", "remove", "-c", config, AUDITOR)
    assert removed.stdout == f"removed {AUDITOR}; revoked 2 API token(s)\n"
    assert run("token", "list", "-c", config, AUDITOR).stdout.count("\trevoked ") == 3
    none = run("token", "revoke", "-c", config, AUDITOR)
    assert (none.returncode, none.stderr) == (1, f"token revoke: {AUDITOR}: has no live token\n")

    actions = [r["action"] for r in access_actions(config)]
    assert actions.count("token_created") == 3
    assert actions.count("token_revoked") == 3
    assert "account_removed" in actions
    assert "password_changed" in actions  # directory passwd is a change of rights too


def test_the_monthly_review_from_the_command_line(config, tmp_path):
    def at(text: str) -> float:
        return datetime.fromisoformat(text).replace(tzinfo=SEOUL).timestamp()

    moments = iter([at("2026-11-02 23:30:00"), *(at(f"2026-11-03 10:00:{n:02d}") for n in
                                                  range(6)), at("2026-12-01 09:00:00")])  # fmt: skip
    store = AuditLog(tmp_path / "audit.db", agent="inner", clock=lambda: next(moments))
    access = AccessLog(store, tmp_path / "audit.db", SEOUL)
    access.record("admin@ops.example", "10.9.9.9", Action.SIGNIN)
    for n in range(6):
        access.record(AUDITOR, f"10.6.6.{n}", Action.SIGNIN_FAILED, detail="wrong")
    access.record("admin@ops.example", "10.1.1.1", Action.SIGNIN)  # December: not in it
    store.close()
    target = tmp_path / "review.xlsx"
    done = run("audit", "review", "-c", config, "--month", "2026-11", "-o", str(target))
    assert done.returncode == 0, done.stderr
    assert done.stderr == (f"wrote the access review of 2026-11 to {target}: 7 record(s), "
                           "2 account(s), 2 anomaly(ies)\n")  # fmt: skip
    book = load_workbook(io.BytesIO(target.read_bytes()))
    kinds = [row[3] for row in list(book["이상 징후"].values)[1:]]
    assert sorted(kinds) == ["로그인 실패 반복", "야간 접속"]
    assert access_actions(config)[-1]["action"] == "exported"

    wrong = run("audit", "-c", config, "--month", "2026-11")
    assert wrong.returncode == 2
    bad = run("audit", "review", "-c", config, "--month", "11-2026", "-o", str(target))
    assert bad.returncode == 2
    assert "YYYY-MM" in bad.stderr


def test_a_directory_import_records_its_summary_and_each_change(config, tmp_path):
    first = [(a["action"], a.get("detail"), a.get("count")) for a in access_actions(config)]
    assert first[0] == ("directory_imported", "hr.csv: users: 5 added, 0 changed, 0 removed; "
                        "departments: 3 added, 0 changed, 0 removed", 8)  # fmt: skip
    assert ("directory_changed", "user lee@corp.example added", None) in first
    assert len(first) == 1 + 8
    changed = HR_CSV.decode().replace("park@corp.example,박민수,영업부,경영본부,delegate\n", "")
    changed = changed.replace("kim@corp.example,김철수,영업부", "kim@corp.example,김철수,보안팀")
    hr = tmp_path / "hr2.csv"
    hr.write_text(changed)
    assert run("directory", "import", str(hr), "-c", config).returncode == 0
    second = [(a["action"], a.get("detail")) for a in access_actions(config)][len(first) :]
    assert second == [
        ("directory_imported", "hr2.csv: users: 0 added, 1 changed, 1 removed; "
                               "departments: 0 added, 0 changed, 0 removed"),
        ("directory_changed", "user kim@corp.example changed"),
        ("directory_changed", "user park@corp.example removed"),
    ]  # fmt: skip
