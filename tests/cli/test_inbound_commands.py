"""The receive filters at the command line: ``check`` names an unknown field or action of the
inbound rules, ``scan --direction in`` shows the decision, ``inbound`` lists and decides."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from inner_agent.inbound.holds import HoldBook
from inner_agent.outbound.directory import Directory
from tests.support.greeter import smtp_greeter

RULES = """
version = 1

[[rule]]
id = "block-evil"
action = "block"
[[rule.condition]]
field = "sender"
domains = ["evil.example"]

[[rule]]
id = "hold-sales-ids"
action = "hold"
scope = "departments"
departments = ["영업팀"]
[[rule.condition]]
field = "body"
pii = ["rrn"]
"""


def maildiode(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "maildiode", *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def internal_smtp() -> Iterator[str]:
    """check asks the internal server whether it answers (a warning, exit 1, if not)."""
    with smtp_greeter() as address:
        yield address


@pytest.fixture(scope="module")
def trial(tmp_path_factory: pytest.TempPathFactory, internal_smtp: str) -> Path:
    root = tmp_path_factory.mktemp("inbound") / "x"
    assert maildiode("init", str(root), "--internal-smtp", internal_smtp).returncode == 0
    (root / "inbound-rules.toml").write_text(RULES, encoding="utf-8")
    text = (root / "inner.toml").read_text(encoding="utf-8")
    (root / "inner.toml").write_text(text + '\n[inbound]\nrules_file = "inbound-rules.toml"\n',
                                     encoding="utf-8")  # fmt: skip
    directory = Directory(root / "inner" / "directory.db")
    directory.import_csv(b"email,name,department,role\nuser@corp.example,U,\xec\x98\x81\xec\x97\x85"
                         b"\xed\x8c\x80,\nhead@corp.example,H,\xec\x98\x81\xec\x97\x85\xed\x8c\x80,"
                         b"head\n")  # fmt: skip
    directory.close()
    return root


def test_check_accepts_the_inbound_rules(trial: Path) -> None:
    result = maildiode("check", "-c", str(trial / "inner.toml"))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ('action = "hold"', 'action = "approve"', "action: Input should be 'block', 'hold', "
         "'allow', 'monitor' or 'mask', not 'approve'"),
        ('field = "body"', 'field = "bdy"', "field: Input should be 'sender',"),
        ('field = "body"', 'field = "body"\ncolour = "red"', "colour: Extra inputs are not"),
    ],
)  # fmt: skip
def test_check_refuses_an_unknown_field_or_action_by_name(
    trial: Path, tmp_path: Path, old: str, new: str, named: str
) -> None:
    rules = tmp_path / "bad-rules.toml"
    rules.write_text(RULES.replace(old, new), encoding="utf-8")
    config = tmp_path / "inner.toml"
    text = (trial / "inner.toml").read_text(encoding="utf-8")
    config.write_text(text.replace('rules_file = "inbound-rules.toml"', f'rules_file = "{rules}"')
                      .replace('"inner/', f'"{trial}/inner/').replace('"keys/', f'"{trial}/keys/')
                      .replace('"link/', f'"{trial}/link/'), encoding="utf-8")  # fmt: skip
    result = maildiode("check", "-c", str(config))
    assert result.returncode == 2  # an error (issue 22: 0 ok, 1 warnings, 2 errors)
    assert "inner.toml: inbound.rules_file: bad-rules.toml: rule" in result.stderr
    assert named in result.stderr
    if "bdy" in new:
        assert "not 'bdy'" in result.stderr


def mail_file(tmp_path: Path, sender: str, body: str) -> Path:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, "user@corp.example", "견적"
    message["Cc"] = "other@corp.example"
    message.set_content(body)
    path = tmp_path / "mail.eml"
    path.write_bytes(message.as_bytes())
    return path


def test_scan_shows_the_inbound_decision_per_recipient(trial: Path, tmp_path: Path) -> None:
    path = mail_file(tmp_path, "kim@partner.example", "주민번호 800101-1234567")
    result = maildiode("scan", "--direction", "in", "-c", str(trial / "inner.toml"), "--json",
                       "--ocr", "off", str(path))  # fmt: skip
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["decision"] == "split"
    parts = {tuple(p["rcpts"]): (p["action"], p["rule"]) for p in found["parts"]}
    assert parts == {("user@corp.example",): ("hold", "hold-sales-ids"),  # in 영업팀
                     ("other@corp.example",): ("allow", None)}  # fmt: skip
    assert [f["type"] for f in found["findings"]] == ["rrn"]
    evil = mail_file(tmp_path, "x@mail.evil.example", "안녕하세요")
    result = maildiode("scan", "--direction", "in", "--rules", str(trial / "inbound-rules.toml"),
                       "--json", "--ocr", "off", str(evil))  # fmt: skip
    assert json.loads(result.stdout)["decision"] == "block"
    assert "nobody is in 영업팀" in result.stderr  # without -c no directory is read


def test_inbound_decide_stores_a_decision_once(trial: Path) -> None:
    book = HoldBook(trial / "inner" / "inbound-holds.db")
    book.add("01abc", rule="hold-sales-ids", recipients=["user@corp.example"],
             approvers=["head@corp.example"], approver_kind="department_head", policy_version=1,
             held_until="2026-12-08T00:00:00Z", sender="kim@partner.example", subject="견적")  # fmt: skip
    book.close()
    listed = maildiode("inbound", "list", "-c", str(trial / "inner.toml"), "--json")
    assert [json.loads(line)["mail_id"] for line in listed.stdout.splitlines()] == ["01abc"]
    decided = maildiode("inbound", "decide", "-c", str(trial / "inner.toml"), "01abc", "release",
                        "--by", "head@corp.example")  # fmt: skip
    assert decided.returncode == 0, decided.stderr
    again = maildiode("inbound", "decide", "-c", str(trial / "inner.toml"), "01abc", "drop")
    assert again.returncode == 1
    assert "released already (by head@corp.example)" in again.stderr
    unknown = maildiode("inbound", "decide", "-c", str(trial / "inner.toml"), "nope", "drop")
    assert unknown.returncode == 1
    assert "unknown_mail" in unknown.stderr
    events = maildiode("audit", "-c", str(trial / "inner.toml"), "--step", "hold_decided",
                       "--format", "jsonl")  # fmt: skip
    (event,) = [json.loads(line) for line in events.stdout.splitlines()]
    assert (event["mail_id"], event["action"], event["decided_by"]) == (
        "01abc", "release", "head@corp.example")  # fmt: skip


def test_inbound_rules_shows_what_would_be_published(trial: Path) -> None:
    result = maildiode("inbound", "rules", "-c", str(trial / "inner.toml"))
    assert result.returncode == 0, result.stderr
    assert "# last published: none yet" in result.stdout
    assert '"영업팀" = ["head@corp.example", "user@corp.example"]' in result.stdout


def test_inbound_decide_on_a_standby_host_is_refused_and_writes_nothing(trial: Path) -> None:
    """D98: another host's agent holds the state's lease; a decision stored from here is a
    second writer to its hold book (the old command stored it, exit 0)."""
    from agentkit.lease import Claimant
    from agentkit.leasekeeper import LeaseStore

    book = HoldBook(trial / "inner" / "inbound-holds.db")
    book.add("02standby", rule="hold-sales-ids", recipients=["user@corp.example"],
             approvers=["head@corp.example"], approver_kind="department_head", policy_version=1,
             held_until="2026-12-08T00:00:00Z", sender="kim@partner.example", subject="견적")  # fmt: skip
    book.close()
    lease, active = LeaseStore(trial / "inner"), Claimant("the-active-host", 4242, 600.0)
    taken = lease.attempt(active)
    try:
        refused = maildiode("inbound", "decide", "-c", str(trial / "inner.toml"), "02standby",
                            "release")  # fmt: skip
        assert refused.returncode == 4
        assert "is a standby" in refused.stderr
        assert "held by the-active-host (pid 4242" in refused.stderr
        listed = maildiode("inbound", "list", "-c", str(trial / "inner.toml"), "--json")
        rows = [json.loads(line) for line in listed.stdout.splitlines()]
        assert {r["mail_id"]: r["state"] for r in rows}["02standby"] == "waiting"
    finally:
        lease.release(active, taken.lease.token)  # type: ignore[union-attr]
        lease.close()
    decided = maildiode("inbound", "decide", "-c", str(trial / "inner.toml"), "02standby", "drop")
    assert decided.returncode == 0, decided.stderr  # unheld: nobody else writes


def test_a_decision_is_not_stored_once_a_standby_took_over_after_the_check(
    trial: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command frozen between its check and its write (the hook: the standby takes the
    lease right after the start's check said "not a standby"). The old command stored the
    decision anyway (exit 0): it looked at the lease at its start only. Now the decision is
    stored under the lease's lock, the row read again: exit 4, still waiting, and it says so."""
    from agentkit.lease import Claimant
    from agentkit.leasekeeper import LeaseStore
    from maildiode.cli import main
    from maildiode.commands import inbound

    book = HoldBook(trial / "inner" / "inbound-holds.db")
    book.add("03frozen", rule="hold-sales-ids", recipients=["user@corp.example"],
             approvers=["head@corp.example"], approver_kind="department_head", policy_version=1,
             held_until="2026-12-08T00:00:00Z", sender="kim@partner.example", subject="견적")  # fmt: skip
    book.close()
    lease, standby = LeaseStore(trial / "inner"), Claimant("the-standby-host", 5353, 600.0)
    checked = inbound.standby_refusal
    taken = []

    def check_then_freeze(*args: object, **kwargs: object) -> str | None:
        refusal = checked(*args, **kwargs)  # type: ignore[arg-type]
        taken.append(lease.attempt(standby))  # while the command is frozen here
        return refusal

    monkeypatch.setattr(inbound, "standby_refusal", check_then_freeze)
    try:
        status = main(["inbound", "decide", "-c", str(trial / "inner.toml"), "03frozen",
                       "release"])  # fmt: skip
        assert taken, "the command never checked the lease"
        assert status == 4
        err = capsys.readouterr().err
        assert "held by the-standby-host (it was taken while this command ran)" in err
        assert "Nothing was written." in err
        listed = maildiode("inbound", "list", "-c", str(trial / "inner.toml"), "--json")
        rows = [json.loads(line) for line in listed.stdout.splitlines()]
        assert {r["mail_id"]: r["state"] for r in rows}["03frozen"] == "waiting"
    finally:
        lease.release(standby, taken[0].lease.token)  # type: ignore[union-attr]
        lease.close()
