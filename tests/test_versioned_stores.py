"""Every store of the agents opens its database with its versions (issue 22.6): a store that
forgot them would never be migrated, and would open a newer release's file unrefused."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("protocol", "agentkit", "inner_agent", "outer_agent", "maildiode")
# The mail index is derived from the audit log: a file of another version is dropped and
# rebuilt (agentkit.mailindex.store.SCHEMA_VERSION), never migrated.
UNVERSIONED = {"agentkit/mailindex/store.py"}


def _openings_without_versions(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", getattr(node.func, "attr", None)) == "open_wal_database"
        and not any(k.arg == "versions" for k in node.keywords)
    ]


def test_every_store_declares_its_versions():
    missing = {
        f"{rel}:{line}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if (rel := str(path.relative_to(ROOT))) not in UNVERSIONED
        for line in _openings_without_versions(path)
    }
    assert missing == set()


def test_the_check_finds_an_opening_without_versions(tmp_path):
    sample = tmp_path / "store.py"
    sample.write_text("db = open_wal_database(path, SCHEMA, synchronous=FULL)\n", encoding="utf-8")
    assert _openings_without_versions(sample) == [1]
