"""Every store of the agents opens its database with its versions (issue 22.6): a store that
forgot them would never be migrated, and would open a newer release's file unrefused."""

from __future__ import annotations

import ast
import importlib
import sqlite3
from pathlib import Path

from protocol.sqlite import StoreVersions, upgrade_database

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


def _stores() -> dict[str, StoreVersions]:
    """Every module's ``VERSIONS = StoreVersions(...)``, by module."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "VERSIONS = StoreVersions(" in path.read_text(encoding="utf-8"):
                module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
                found[module] = importlib.import_module(module).VERSIONS
    return found


def test_every_store_has_a_version_and_a_recorded_first_upgrade(tmp_path):
    """D109: nine stores were at version 0 with no migration, so a file of the release before
    versions was never upgraded or recorded (``state_migrated`` only for the audit log, the
    directory and the outbound state). Each such store's first migration makes its schema: a
    version-0 file holding none of its tables comes out at this release's version, with them,
    the copy beside it, and the upgrade reported for the audit log."""
    stores = _stores()
    assert len(stores) >= 13
    for module, versions in stores.items():
        assert versions.version >= 1, f"{module}: {versions.store} has no version"
        if versions.migrations[0].__name__ != "make_schema":
            continue  # migrations from before D109 on its own tables: their own tests
        path = tmp_path / f"{module}.db"
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE meta_from_before (x)")  # any table: a file in use
        db.close()
        migrated = upgrade_database(path, versions)
        assert migrated is not None, module
        assert (migrated.store, migrated.from_version, migrated.to_version) == (
            versions.store, 0, versions.version)  # fmt: skip
        assert migrated.backup.is_file()
        db = sqlite3.connect(path)
        tables = {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        db.close()
        assert len(tables) > 1, f"{module}: its tables were not made by the upgrade"
