"""A command run on old state before the agent's first start (D71, D98): it upgrades the files
it opens as the start does, with the copy first, and the audit log records each upgrade as
``state_migrated`` (the old command migrated the files and recorded nothing)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from agentkit.audit import AuditLog
from inner_agent.outbound.directory_schema import V0_SCHEMA
from tests.support.command import maildiode


def _as_before_versions(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 0")
    db.commit()
    db.close()


def _migrations(audit_path: Path) -> list[tuple[str, int, int]]:
    log = AuditLog(audit_path, agent="inner")
    try:
        events = log.query(step="state_migrated")
        return [(e.details["store"], e.details["from"], e.details["to"]) for e in events]
    finally:
        log.close()


def test_a_directory_command_on_an_old_directory_records_its_upgrade(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / "dir.db")  # the first release's directory
    old.executescript(V0_SCHEMA)
    old.execute("INSERT INTO users VALUES ('kim@corp.example', 'Kim', 'Sales', 'member')")
    old.commit()
    old.close()
    config = tmp_path / "inner.toml"
    config.write_text('[outbound]\ndirectory_db = "dir.db"\n[audit]\npath = "audit.db"\n')
    listed = maildiode("directory", "list", "-c", str(config))
    assert listed.returncode == 0, listed.stderr
    assert "kim@corp.example" in listed.stdout
    assert _migrations(tmp_path / "audit.db") == [("directory", 0, 2)]
    assert list(tmp_path.glob("dir.db.v0-*.bak"))  # the copy, as at the start
    again = maildiode("directory", "list", "-c", str(config))
    assert again.returncode == 0
    assert len(_migrations(tmp_path / "audit.db")) == 1  # once only


def test_an_inbound_command_on_an_old_audit_log_records_its_upgrade(tmp_path: Path) -> None:
    root = tmp_path / "site"
    assert maildiode("init", str(root)).returncode == 0
    (root / "inbound-rules.toml").write_text("version = 1\n", encoding="utf-8")
    config = root / "inner.toml"
    config.write_text(config.read_text(encoding="utf-8")
                      + '\n[inbound]\nrules_file = "inbound-rules.toml"\n', encoding="utf-8")  # fmt: skip
    audit_path = root / "inner" / "audit.db"  # where init puts it
    log = AuditLog(audit_path, agent="inner")
    log.record("m1", "received", bytes=10)
    log.close()
    _as_before_versions(audit_path)
    listed = maildiode("inbound", "list", "-c", str(config))
    assert listed.returncode == 0, listed.stderr
    assert _migrations(audit_path) == [("audit", 0, 1)]


# Every other command that opens an agent's stores (D98 amended): on a site whose audit logs an
# earlier release wrote, each upgrades them as the start would and records it; before, each
# opened the old file and migrated it silently (or read it as it was).


def _old_site(tmp_path: Path) -> Path:
    """A site made by ``init`` whose audit logs are the first release's (version 0)."""
    root = tmp_path / "site"
    assert maildiode("init", str(root)).returncode == 0
    (root / "inbound-rules.toml").write_text("version = 1\n", encoding="utf-8")
    inner = root / "inner.toml"
    inner.write_text(inner.read_text(encoding="utf-8")
                     + '\n[inbound]\nrules_file = "inbound-rules.toml"\n', encoding="utf-8")  # fmt: skip
    for agent in ("inner", "outer"):
        log = AuditLog(root / agent / "audit.db", agent=agent)
        log.record("m1", "received", bytes=10)
        log.close()
        _as_before_versions(root / agent / "audit.db")
    (root / "mail.eml").write_bytes(b"From: kim@partner.example\r\nTo: user@corp.example\r\n"
                                    b"Subject: hello\r\n\r\nhello\r\n")  # fmt: skip
    return root


COMMANDS = {  # the command line's words after ``maildiode``, the agent whose log it opens
    "token list": (["token", "list", "-c", "inner.toml"], "inner"),
    "requeue (inner)": (["requeue", "-c", "inner.toml", "inner/quarantine/bundle-x.bin"], "inner"),
    "requeue (outer)": (["requeue", "-c", "outer.toml", "some-mail"], "outer"),
    "resend": (["resend", "-c", "outer.toml", "1", "1"], "outer"),
    "audit": (["audit", "-c", "outer.toml"], "outer"),
    "audit verify": (["audit", "verify", "-c", "inner.toml"], "inner"),
    "stats": (["stats", "-c", "inner.toml"], "inner"),
    "status": (["status", "-c", "outer.toml"], "outer"),
    "inbound rules": (["inbound", "rules", "-c", "inner.toml"], "inner"),
    "scan --direction in": (
        ["scan", "--direction", "in", "-c", "inner.toml", "--ocr", "off", "mail.eml"],
        "inner",
    ),
}


@pytest.mark.parametrize("name", COMMANDS)
def test_a_command_on_an_old_audit_log_records_its_upgrade(tmp_path: Path, name: str) -> None:
    root = _old_site(tmp_path)
    words, agent = COMMANDS[name]
    done = maildiode(*_in(root, words))
    assert "Traceback" not in done.stderr, done.stderr
    audit_path = root / agent / "audit.db"
    assert _migrations(audit_path) == [("audit", 0, 1)], done.stderr
    assert list(audit_path.parent.glob("audit.db.v0-*.bak"))  # the copy, as at the start
    (event,) = AuditLog(audit_path).query(step="state_migrated")
    assert event.agent == agent
    other = root / ("outer" if agent == "inner" else "inner") / "audit.db"
    assert _version(other) == 0  # the other agent's log is not this command's


def _in(root: Path, words: list[str]) -> list[str]:
    """Paths of the site (a config, a quarantined file) made absolute."""
    return [str(root / w) if w.endswith((".toml", ".bin", ".eml")) else w for w in words]


def _version(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("PRAGMA user_version").fetchone()[0])
    finally:
        db.close()


def test_an_account_command_on_an_old_directory_records_both_upgrades(tmp_path: Path) -> None:
    root = _old_site(tmp_path)
    (root / "inner" / "directory.db").unlink(missing_ok=True)  # init leaves none
    old = sqlite3.connect(root / "inner" / "directory.db")  # the first release's directory
    old.executescript(V0_SCHEMA)
    old.commit()
    old.close()
    listed = maildiode("account", "list", "-c", str(root / "inner.toml"))
    assert listed.returncode == 0, listed.stderr
    assert _migrations(root / "inner" / "audit.db") == [("audit", 0, 1), ("directory", 0, 2)]
    again = maildiode("account", "list", "-c", str(root / "inner.toml"))
    assert again.returncode == 0
    assert len(_migrations(root / "inner" / "audit.db")) == 2  # once only


def test_the_audit_chain_holds_after_a_command_recorded_an_upgrade(tmp_path: Path) -> None:
    root = _old_site(tmp_path)
    assert maildiode("stats", "-c", str(root / "inner.toml")).returncode == 0
    verified = maildiode("audit", "verify", "-c", str(root / "inner.toml"))
    assert verified.returncode == 0, verified.stdout + verified.stderr


@pytest.mark.parametrize("name", ["token list", "requeue (outer)", "resend", "audit", "stats",
                                  "status", "inbound rules", "scan --direction in"])  # fmt: skip
def test_a_newer_releases_audit_log_is_refused_in_one_line(tmp_path: Path, name: str) -> None:
    root = _old_site(tmp_path)
    words, agent = COMMANDS[name]
    audit_path = root / agent / "audit.db"
    db = sqlite3.connect(audit_path)
    db.execute("PRAGMA user_version = 99")
    db.commit()
    db.close()
    refused = maildiode(*_in(root, words))
    assert refused.returncode == 1
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "99" in refused.stderr
    assert str(audit_path) in refused.stderr
    assert _version(audit_path) == 99  # not touched


def test_the_inner_agent_refuses_a_newer_store_before_it_upgrades_anything(
    tmp_path: Path,
) -> None:
    """D109: the start read the files in order and upgraded each before it looked at the next,
    so a newer release's injection queue was refused only after the audit log had been
    migrated (its copy made, version 1 written) and the lease taken. Every file's version is
    now read first: exit 2 naming the store and the file, the audit log as it was, no lease."""
    root = _old_site(tmp_path)
    queue = root / "inner" / "inject.db"
    db = sqlite3.connect(queue)
    db.execute("CREATE TABLE bundles (x)")
    db.execute("PRAGMA user_version = 99")
    db.commit()
    db.close()
    refused = maildiode("inner", "-c", str(root / "inner.toml"))
    assert refused.returncode == 2, refused.stdout + refused.stderr
    said = refused.stdout + refused.stderr
    assert f"{queue}: injection queue schema version 99 is newer than this release's" in said
    audit_path = root / "inner" / "audit.db"
    assert _version(audit_path) == 0  # not upgraded
    assert not list(audit_path.parent.glob("audit.db.v0-*.bak"))
    assert not (root / "inner" / "lease.db").exists()  # nothing taken either


def test_maildiode_upgrade_says_what_each_store_was_and_became(tmp_path: Path) -> None:
    """``maildiode upgrade`` (D109): every database of the agent's state, its version before
    and after, the copy; each upgrade recorded as at start; a second run changes nothing."""
    from inner_agent.inject import InjectionQueue

    root = _old_site(tmp_path)
    queue_path = root / "inner" / "inject.db"
    InjectionQueue(queue_path).close()
    _as_before_versions(queue_path)  # as the release before versions left it
    done = maildiode("upgrade", "-c", str(root / "inner.toml"))
    assert done.returncode == 0, done.stderr
    audit_path = root / "inner" / "audit.db"
    assert f"audit: {audit_path}: version 0 -> 1 (the copy from before: {audit_path}.v0-" in (
        done.stdout)  # fmt: skip
    assert f"injection queue: {queue_path}: version 0 -> 1 (the copy from before: " in done.stdout
    assert _migrations(audit_path) == [("audit", 0, 1), ("injection queue", 0, 1)]
    again = maildiode("upgrade", "--json", "-c", str(root / "inner.toml"))
    assert again.returncode == 0, again.stderr
    rows = [json.loads(line) for line in again.stdout.splitlines()]
    assert {(r["store"], r["from"], r["to"], r["backup"]) for r in rows} == {
        ("audit", 1, 1, None), ("injection queue", 1, 1, None)}  # fmt: skip
    assert len(_migrations(audit_path)) == 2  # nothing more recorded


def test_maildiode_upgrade_refuses_a_newer_store_and_changes_nothing(tmp_path: Path) -> None:
    root = _old_site(tmp_path)
    sender = root / "outer" / "spool" / "sender" / "sender-inbound.db"
    sender.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(sender)
    db.execute("CREATE TABLE bundles (x)")
    db.execute("PRAGMA user_version = 5")
    db.commit()
    db.close()
    refused = maildiode("upgrade", "-c", str(root / "outer.toml"))
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"upgrade: {sender}: link sender schema version 5 is newer than this release's 1 — run "
        "the release that wrote it, or restore the copy taken before the upgrade")  # fmt: skip
    assert _version(root / "outer" / "audit.db") == 0  # not upgraded before the refusal
