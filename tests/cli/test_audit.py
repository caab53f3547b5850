"""The audit log records, queries and exports events."""

from __future__ import annotations

import csv
import io
import json
from itertools import count
from pathlib import Path

import pytest

from agentkit.audit import AuditLog, export


def make_log(tmp_path: Path) -> AuditLog:
    ticks = count(1_700_000_000)
    return AuditLog(tmp_path / "audit.db", agent="outer", clock=lambda: float(next(ticks)))


def test_events_are_queryable_by_mail_step_and_time(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    log.record("m1", "received", client="203.0.113.5", size=1200)
    log.record("m2", "received", client="198.51.100.7", size=300)
    log.record("m1", "rendered", pages=2, ms=180)
    log.record("m1", "published", seq=7)
    assert [e.step for e in log.query(mail_id="m1")] == ["received", "rendered", "published"]
    assert [e.mail_id for e in log.query(step="received")] == ["m1", "m2"]
    assert [e.step for e in log.query(since=1_700_000_002, until=1_700_000_003)] == ["rendered"]
    assert log.query(mail_id="m1")[0].details == {"client": "203.0.113.5", "size": 1200}


def test_events_survive_reopening(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    log.record("m1", "quarantined", reason="bad-signature")
    log.close()
    again = AuditLog(tmp_path / "audit.db")
    assert [(e.agent, e.step, e.details["reason"]) for e in again.query()] == [
        ("outer", "quarantined", "bad-signature")
    ]


def test_unknown_step_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown audit step"):
        make_log(tmp_path).record("m1", "teleported")


def test_export_jsonl_and_csv(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    log.record("m1", "held", rule="rrn-approval", findings="800101-1******")
    lines = "".join(export(log.query(), "jsonl")).splitlines()
    row = json.loads(lines[0])
    assert row["mail_id"] == "m1"
    assert row["rule"] == "rrn-approval"
    assert row["time"].endswith("Z")
    table = list(csv.reader(io.StringIO("".join(export(log.query(), "csv")))))
    # the first five columns as before; the chain's position after them (issue 21.1)
    assert table[0] == ["time", "agent", "mail_id", "step", "details",
                        "chain_id", "chain_ts", "chain_link", "chain_prev"]  # fmt: skip
    assert table[1][2:4] == ["m1", "held"]
    assert row["chain"]["id"] == int(table[1][5]) == 1


def test_search_folds_case_reaches_nested_values_and_widens_to_the_trail(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    log.record("m1", "received", mail_from="Kim@Partner.example", rcpts=["a@corp.example"])
    log.record("m2", "received", mail_from="lee@other.example", rcpts=["b@corp.example"])
    log.record("m1", "received_inside", subject="견적 요청",
               withheld=[{"name": "Setup.EXE", "size": 10}])  # fmt: skip
    log.record("m1", "injected", reply="250 2.0.0 Ok: queued as 4Xyz")
    log.record("m2", "injected", reply="250 2.0.0 Ok")
    assert [e.mail_id for e in log.query(search="kim@partner")] == ["m1"]
    assert [e.step for e in log.query(search="setup.exe")] == ["received_inside"]
    assert [e.step for e in log.query(search="견적")] == ["received_inside"]
    assert [e.step for e in log.query(search="견적", trail=True)] == [
        "received", "received_inside", "injected"
    ]  # fmt: skip
    assert [e.mail_id for e in log.query(search="b@corp")] == ["m2"]
    assert [e.mail_id for e in log.query(search="m2")] == ["m2", "m2"]  # mail ids match too
    assert log.query(search="nobody") == []
    assert log.query(search="nobody", trail=True) == []


def test_search_treats_like_wildcards_and_quotes_literally(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    log.record("m1", "received_inside", subject='50% off_now "quoted" back\\slash')
    log.record("m2", "received_inside", subject="5000 offxnow")
    assert [e.mail_id for e in log.query(search="50% off_")] == ["m1"]
    assert [e.mail_id for e in log.query(search='"quoted"')] == ["m1"]
    assert [e.mail_id for e in log.query(search="back\\slash")] == ["m1"]
    assert [e.mail_id for e in log.query(search="%")] == ["m1"]


def test_search_folds_case_beyond_ascii(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    log.record("m1", "received_inside", subject="École Ωmega")
    assert [e.mail_id for e in log.query(search="éCOLE ωMEGA")] == ["m1"]


def test_table_output_shows_control_characters_escaped() -> None:
    from agentkit.audit import AuditEvent
    from maildiode.commands.audit import format_table

    event = AuditEvent(1.8e9, "outer", "m1", "received", {"helo": "x\x1b[2Jy\u2028z"})
    line = format_table([event])
    assert "\x1b" not in line
    assert "\u2028" not in line
    assert "helo=x\\x1b[2Jy\\u2028z" in line


def test_csv_export_keeps_a_hostile_mail_id_as_text(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    log.record("-A1", "quarantined", reason="bad_mail_id")  # the id a compromised outer sent
    table = list(csv.reader(io.StringIO("".join(export(log.query(), "csv")))))
    assert table[1][2] == "'-A1"


def test_audit_verify_from_the_command_line_names_the_changed_event(tmp_path: Path) -> None:
    import sqlite3

    from maildiode.commands.check import load_agent_config
    from tests.support.command import maildiode

    root = tmp_path / "trial"
    assert maildiode("init", str(root)).returncode == 0
    for agent in ("outer", "inner"):
        config = root / f"{agent}.toml"
        path = load_agent_config(config, agent).audit.path
        log = AuditLog(path, agent=agent)
        for n in range(3):
            log.record(f"m{n}", "quarantined", reason="bad-signature")
        log.close()
        good = maildiode("audit", "verify", "-c", str(config))
        assert (good.returncode, good.stdout) == (
            0,
            f"{path}: the audit chain holds: 3 event(s) linked\n",
        )
        with sqlite3.connect(path) as db:
            db.execute('UPDATE events SET details = \'{"reason": "ok"}\' WHERE id = 2')
        bad = maildiode("audit", "verify", "-c", str(config))
        assert bad.returncode == 1
        assert (
            bad.stdout
            == f"{path}: the audit chain is broken: event 2: changed (its link does not match)\n"
        )


def test_audit_verify_checks_the_signed_checkpoints_with_the_agents_key(tmp_path: Path) -> None:
    """A whole-chain rewrite passes the chain check; the checkpoint the agent signed with its
    own key (as it does every checkpoint_every_s and at stop) names where it was rewritten."""
    from agentkit.auditsigning import AuditCheckpointer
    from maildiode.commands.check import load_agent_config
    from protocol.keys import SigningKey
    from tests.agentkit.test_audit_checkpoints import _rewrite_from
    from tests.support.command import maildiode

    root = tmp_path / "trial"
    assert maildiode("init", str(root)).returncode == 0
    for agent in ("outer", "inner"):
        config = root / f"{agent}.toml"
        loaded = load_agent_config(config, agent)
        log = AuditLog(loaded.audit.path, agent=agent)
        for n in range(4):
            log.record(f"m{n}", "delivered", rcpt="partner@ext.example")
        AuditCheckpointer(log, SigningKey.load(loaded.keys.signing_key), 3600).sign_now()
        log.close()
        good = maildiode("audit", "verify", "-c", str(config))
        assert good.returncode == 0, good.stdout + good.stderr
        assert "1 signed checkpoint(s) agree" in good.stdout
        _rewrite_from(loaded.audit.path, 2, "rejected")
        bad = maildiode("audit", "verify", "-c", str(config))
        assert bad.returncode == 1
        assert "event 4: rewritten" in bad.stdout


def test_audit_verify_against_the_inner_copy_names_a_rewritten_outer_history(
    tmp_path: Path,
) -> None:
    """Whoever holds the DMZ host holds the outer agent's key too: they rewrite its history
    and sign new checkpoints, and its own verification holds. The checkpoints its status
    reports carried inward, kept in the inner agent's log, name the rewritten event."""
    import sqlite3

    from maildiode.commands.check import load_agent_config
    from protocol.keys import SigningKey
    from tests.agentkit.test_audit_checkpoints import _rewrite_from
    from tests.inner.test_outer_checkpoints import carry, outer_log, report_of
    from tests.support.command import maildiode

    root = tmp_path / "trial"
    assert maildiode("init", str(root)).returncode == 0
    config = root / "outer.toml"
    outer = load_agent_config(config, "outer")
    inner = load_agent_config(root / "inner.toml", "inner")
    key = SigningKey.load(outer.keys.signing_key)
    log = outer_log(outer.audit.path, key)
    inner_log = AuditLog(inner.audit.path, agent="inner")
    carry(report_of(log), inner_log, [key.verify_key], tmp_path)
    inner_log.close()
    against = ("--against", str(inner.audit.path))
    good = maildiode("audit", "verify", "-c", str(config), *against)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "1 signed checkpoint(s) agree" in good.stdout
    assert f"against the checkpoints kept in {inner.audit.path}" in good.stdout

    _rewrite_from(outer.audit.path, 2, "rejected")  # the history, then its checkpoints
    with sqlite3.connect(outer.audit.path) as db:
        db.execute("DELETE FROM checkpoints")
    assert log.checkpoint(key) is not None
    log.close()
    alone = maildiode("audit", "verify", "-c", str(config))
    assert alone.returncode == 0, alone.stdout  # the DMZ's own copy was rewritten with it
    bad = maildiode("audit", "verify", "-c", str(config), *against)
    assert bad.returncode == 1
    assert "event 4: rewritten" in bad.stdout

    empty = maildiode("audit", "verify", "-c", str(config), "--against", str(root / "none.db"))
    assert empty.returncode == 2
    assert "holds no checkpoint of the outer agent" in empty.stderr


def test_each_outer_agent_verifies_against_its_own_checkpoints_kept_inside(
    tmp_path: Path,
) -> None:
    """Issue 23 with 21.1: two outer agents both sign as "outer" in their own logs. Before,
    the inner agent kept both agents' checkpoints under that one name, so `verify --against`
    of either met the other's checkpoints, signed by a key it does not have, and failed.
    Now a further one's are kept under outer-ID, as its events are."""
    from maildiode.commands.check import load_agent_config
    from protocol.keys import SigningKey
    from tests.inner.test_outer_checkpoints import carry, outer_log, report_of
    from tests.support.command import maildiode

    root = tmp_path / "trial"
    assert maildiode("init", str(root)).returncode == 0
    added = maildiode("init", str(root), "--add-outer", "mx2", "--smtp-port", "3535")
    assert added.returncode == 0, added.stderr
    inner_path = load_agent_config(root / "inner.toml", "inner").audit.path
    inner_log = AuditLog(inner_path, agent="inner")
    keys = []
    for n, (name, stream) in enumerate((("outer", "inbound"), ("outer-mx2", "mx2"))):
        config = load_agent_config(root / f"{name}.toml", "outer")
        key = SigningKey.load(config.keys.signing_key)
        keys.append(key.verify_key)
        log = outer_log(config.audit.path, key, mails=4 + 2 * n)
        carry(report_of(log), inner_log, keys, tmp_path / name, stream)
        log.close()
    assert [p.event_id for p in inner_log.checkpoints("outer")] == [4]
    assert [p.event_id for p in inner_log.checkpoints("outer-mx2")] == [6]
    inner_log.close()
    for name in ("outer", "outer-mx2"):
        done = maildiode("audit", "verify", "-c", str(root / f"{name}.toml"),
                         "--against", str(inner_path))  # fmt: skip
        assert done.returncode == 0, (name, done.stdout, done.stderr)
        assert "1 signed checkpoint(s) agree" in done.stdout


def test_audit_verify_holds_after_both_agents_pruned_their_logs_and_checkpoints(
    tmp_path: Path,
) -> None:
    """Issue 21.2 with the checkpoints pruned too (D90): four years of both agents' logs,
    the outer agent's carried inward, both pruned; ``maildiode audit verify`` holds on each
    log and on the outer one against the inner copy, with fewer checkpoints than were made."""
    from agentkit.retention import DAY_S, Retention
    from maildiode.commands.check import load_agent_config
    from protocol.keys import SigningKey
    from tests.agentkit.test_audit_retention import START, Clock, carried_history
    from tests.support.command import maildiode

    root = tmp_path / "trial"
    assert maildiode("init", str(root)).returncode == 0
    outer_config, inner_config = (load_agent_config(root / f"{name}.toml", name)
                                  for name in ("outer", "inner"))  # fmt: skip
    keys = (SigningKey.load(outer_config.keys.signing_key),
            SigningKey.load(inner_config.keys.signing_key))  # fmt: skip
    clock, days = Clock(), range(0, 4 * 365, 30)
    paths = (outer_config.audit.path, inner_config.audit.path)
    outer, inner = carried_history(paths, clock, keys, days, days)
    made = len(inner.checkpoints("outer"))
    clock.now = START + 4 * 365 * DAY_S
    for log in (outer, inner):
        assert log.prune(Retention(365, 730, 1095)) > 0
        log.close()
    against = ("--against", str(inner_config.audit.path))
    for args in (("-c", str(root / "outer.toml"), *against), ("-c", str(root / "inner.toml")),
                 ("-c", str(root / "outer.toml"))):  # fmt: skip
        done = maildiode("audit", "verify", *args)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "signed checkpoint(s) agree" in done.stdout
    kept = int(done.stdout.split("; ")[1].split()[0])
    assert 0 < kept < made


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_an_exported_extract_carries_its_chain_position_and_can_be_checked(
    tmp_path: Path, fmt: str
) -> None:
    """Issue 21.1: an auditor checks an extract without the log; a changed row is named."""
    from tests.support.command import maildiode

    root = tmp_path / "trial"
    assert maildiode("init", str(root)).returncode == 0
    config = root / "outer.toml"
    from maildiode.commands.check import load_agent_config

    log = AuditLog(load_agent_config(config, "outer").audit.path, agent="outer")
    for n in range(4):
        log.record(f"m{n}", "delivered", rcpt=f"p{n}@ext.example", attempts=1)
    log.close()
    extract = tmp_path / f"extract.{fmt}"
    made = maildiode("audit", "-c", str(config), "--format", fmt, "--step", "delivered")
    assert made.returncode == 0, made.stderr
    extract.write_text(made.stdout, encoding="utf-8")
    good = maildiode("audit", "verify", "-c", str(config), "--extract", str(extract))
    assert (good.returncode, good.stdout.strip()) == (0, f"{extract}: 4 event(s), each as logged")

    extract.write_text(made.stdout.replace("p2@ext.example", "x2@ext.example"), encoding="utf-8")
    bad = maildiode("audit", "verify", "-c", str(config), "--extract", str(extract))
    assert bad.returncode == 1
    assert "event 3: changed" in bad.stdout
