"""One durable write and one SQLite opener (issue 14): the discipline lives in two modules.

``protocol/durable.py`` writes files (temp, fsync, rename, fsync folder) and
``protocol/sqlite.py`` opens databases (WAL, busy timeout, synchronous level). Anywhere else in
the product, an fsync, a WAL pragma or a connect is a copy that will drift; this test finds it.
Then every database of both agents is shown to be opened by the one opener, at the synchronous
level docs/decisions.md D3 gives it.
"""

from __future__ import annotations

import importlib
import re
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agentkit.audit import AuditLog
from agentkit.mailindex import MailIndex
from inner_agent.inbound.holds import HoldBook
from inner_agent.inject import InjectionQueue
from inner_agent.outbound.directory import Directory
from inner_agent.outbound.state import OutboundState
from inner_agent.reports import ReportStore
from inner_agent.web.accounts import AccountStore
from inner_agent.web.api_tokens import TokenStore
from inner_agent.web.store import SignInStore
from protocol import FolderTransport, Keyring, Receiver, Sender
from protocol.sqlite import AGENT_BUSY_TIMEOUT_S, BUSY_TIMEOUT_S, Synchronous, open_wal_database
from tests.protocol.golden import KEY_A

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("protocol", "mailsafe", "agentkit", "outer_agent", "inner_agent", "maildiode")
HOMES = {ROOT / "protocol" / "durable.py", ROOT / "protocol" / "sqlite.py"}
COPIES = {
    "an fsync": re.compile(r"\bos\.fsync\(|\.fsync\("),
    "an exclusive create": re.compile(r"\bO_EXCL\b"),
    "a replace by rename": re.compile(r"\bos\.replace\("),
    "a database connection": re.compile(r"\bsqlite3\.connect\("),
    "a journal mode": re.compile(r"journal_mode\s*="),
    "a busy timeout pragma": re.compile(r"PRAGMA\s+busy_timeout", re.IGNORECASE),
}


def product_modules() -> list[Path]:
    return [path for package in PRODUCT for path in sorted((ROOT / package).rglob("*.py"))]


def test_the_durable_write_and_the_opener_have_no_copies() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {what}: {line.strip()}"
        for path in product_modules()
        if path not in HOMES
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if not line.lstrip().startswith("#")
        for what, pattern in COPIES.items()
        if pattern.search(line)
    ]
    assert found == [], "use protocol.durable / protocol.sqlite:\n" + "\n".join(found)


def test_the_architecture_contract_names_exist() -> None:
    architecture = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = re.findall(r"^from (protocol\.(?:durable|sqlite)) import (.+)$", architecture, re.M)
    assert {module for module, _ in named} == {"protocol.durable", "protocol.sqlite"}
    missing = [
        f"{module}.{name.strip()}"
        for module, names in named
        for name in names.split(",")
        if not hasattr(importlib.import_module(module), name.strip())
    ]
    assert missing == []


def test_the_homes_are_where_this_test_looks() -> None:
    for home in HOMES:
        text = home.read_text(encoding="utf-8")
        assert any(pattern.search(text) for pattern in COPIES.values()), home


# ------------------------------------------------------------------------------ every database


def _sender(tmp_path: Path) -> Any:
    return Sender(tmp_path / "state", "inbound", KEY_A, FolderTransport(tmp_path / "send"))


def _receiver(tmp_path: Path) -> Any:
    return Receiver(tmp_path / "state", "inbound", Keyring([KEY_A.verify_key]))


class _NoPeople:
    def user(self, _email: str) -> None:
        return None


def _in_folder(factory: Callable[[Path], Any]) -> Callable[[Path], Any]:
    return lambda tmp_path: factory(tmp_path / "db" / "x.db")


# caller -> (how to make it, the module that opens, synchronous level, busy timeout)
DATABASES: dict[str, tuple[Callable[[Path], Any], str, Synchronous, float]] = {
    "sender": (_sender, "protocol.sender", Synchronous.FULL, BUSY_TIMEOUT_S),
    "receiver": (_receiver, "protocol.receiver", Synchronous.FULL, BUSY_TIMEOUT_S),
    "injection queue": (
        _in_folder(InjectionQueue), "inner_agent.inject", Synchronous.FULL, AGENT_BUSY_TIMEOUT_S
    ),
    "outbound state": (
        _in_folder(OutboundState), "inner_agent.outbound.state", Synchronous.FULL,
        AGENT_BUSY_TIMEOUT_S,
    ),
    "directory": (
        _in_folder(Directory), "inner_agent.outbound.directory", Synchronous.FULL,
        AGENT_BUSY_TIMEOUT_S,
    ),
    "audit log": (_in_folder(AuditLog), "agentkit.audit", Synchronous.NORMAL, AGENT_BUSY_TIMEOUT_S),
    "sign-in store": (
        _in_folder(SignInStore), "inner_agent.web.store", Synchronous.NORMAL, AGENT_BUSY_TIMEOUT_S
    ),
    # derived from the audit log (D34): a lost batch is folded again at the next catch-up
    "mail index": (
        _in_folder(MailIndex), "agentkit.mailindex.store", Synchronous.NORMAL, BUSY_TIMEOUT_S
    ),
    "status reports": (
        _in_folder(ReportStore), "inner_agent.reports", Synchronous.NORMAL, AGENT_BUSY_TIMEOUT_S
    ),
    # The accounts and the API tokens: tables of the directory's file, each its own connection.
    "account store": (
        _in_folder(lambda path: AccountStore(path, _NoPeople())), "inner_agent.web.accounts",
        Synchronous.FULL, AGENT_BUSY_TIMEOUT_S,
    ),
    "token store": (
        _in_folder(TokenStore), "inner_agent.web.api_tokens", Synchronous.FULL,
        AGENT_BUSY_TIMEOUT_S,
    ),
    # the held inbound mails and their decisions (a decision is a promise: FULL)
    "hold book": (
        _in_folder(HoldBook), "inner_agent.inbound.holds", Synchronous.FULL, AGENT_BUSY_TIMEOUT_S
    ),
}  # fmt: skip


@pytest.mark.parametrize("database", DATABASES)
def test_every_database_is_opened_by_the_one_opener(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database: str
) -> None:
    make, module, level, timeout_s = DATABASES[database]
    opened: list[tuple[Synchronous, float]] = []
    real_connect = sqlite3.connect

    def spy(path: Path, schema: str, *, synchronous: Synchronous, **options: Any) -> Any:
        opened.append((synchronous, options.get("busy_timeout_s", BUSY_TIMEOUT_S)))
        return open_wal_database(path, schema, synchronous=synchronous, **options)

    def connect(*args: Any, **kwargs: Any) -> Any:
        caller = Path(sys._getframe(1).f_code.co_filename)
        assert caller == ROOT / "protocol" / "sqlite.py", f"sqlite3.connect from {caller}"
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(f"{module}.open_wal_database", spy)
    monkeypatch.setattr(sqlite3, "connect", connect)
    made = make(tmp_path)
    try:
        assert opened == [(level, timeout_s)]
        db = made._db
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("PRAGMA busy_timeout").fetchone() == (int(timeout_s * 1000),)
    finally:
        made.close()
