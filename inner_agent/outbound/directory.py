"""The directory: people, departments (a tree), groups, ranks and roles, from the HR export
(CSV or XLSX, ``directory_file``) or an LDAP / Active Directory sync (``ldap_sync``).

The values and their roles are described in ``directory_model``; the file's columns in
``directory_file``; the schema and its versions in ``directory_schema``.

An import or a sync replaces the whole directory in one transaction: ``preview`` says what it
would change (people and departments added, changed, removed, and per person what changed)
without changing anything; ``replace`` applies it and keeps a report of it
(``directory_reports``, read by ``reports``).

Web accounts (argon2id hashes, a TOTP secret for a second factor, console roles) live in the
same database, in the table the web listener's account store keeps
(``inner_agent.web.accounts``); the import never touches it. ``maildiode directory passwd
USER`` and ``maildiode directory totp USER`` set a directory person's password and second
factor through it. A user removed from the directory, or disabled in it, can no longer sign
in, whatever the account table says (console-only accounts aside: they are not people of the
export).
"""

from __future__ import annotations

import functools
import json
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from inner_agent.outbound.directory_file import (
    MAX_FILE_BYTES,
    check_snapshot,
    parse_hr_csv,
    parse_hr_file,
)
from inner_agent.outbound.directory_model import (
    ADMINISTRATOR,
    SECURITY_OFFICER,
    Changes,
    Department,
    Snapshot,
    User,
    diff,
    diff_people,
)
from inner_agent.outbound.directory_schema import V0_SCHEMA, VERSIONS
from inner_agent.outbound.errors import DirectoryError
from inner_agent.web.accounts import AccountStore
from protocol.sqlite import AGENT_BUSY_TIMEOUT_S, Synchronous, open_wal_database

__all__ = [
    "ADMINISTRATOR",
    "MAX_CSV_BYTES",
    "SECURITY_OFFICER",
    "Changes",
    "Department",
    "Directory",
    "PersonLine",
    "Report",
    "StoredReport",
    "User",
    "parse_hr_csv",
]

MAX_CSV_BYTES = MAX_FILE_BYTES
# The stored reports kept: a year of hourly syncs that changed something is far fewer.
MAX_STORED_REPORTS = 1000

_USER_COLUMNS = "email, name, department, role, rank, manager, disabled"
# What a rule's scope may name, found by part of it (the policy editor's search); each query
# takes its pattern once per "?" and is ordered and cut by the caller.
ScopeKind = Literal["departments", "groups", "ranks", "users"]
# Every name of a kind a search looks through (a person: the address and the name). The text is
# compared in Python, folded (``folded``: NFKC, case folded): SQLite's LIKE folds ASCII letters
# only ("équipe" did not find "Équipe Paris") and compares code points (a decomposed "영업부"
# from a Mac's export was not found by the one typed).
_NAME_LISTS: dict[str, str] = {
    "departments": "SELECT name FROM departments UNION SELECT department FROM users",
    "groups": "SELECT DISTINCT grp FROM user_groups",
    "ranks": "SELECT DISTINCT rank FROM users WHERE rank != ''",
    "users": "SELECT email, name FROM users",
}
_PEOPLE_LIST = "SELECT email, name, department, disabled FROM users"
# A person as a search lists them: address, name, department, disabled.
PersonLine = tuple[str, str, str, bool]
# A search longer than any name (directory_values.MAX_LABEL_CHARS, an address's 254) finds none.
MAX_SEARCH_CHARS = 256


@dataclass(frozen=True)
class Report:
    """What an import or a sync changes (or would change)."""

    users: Changes
    departments: Changes

    def __bool__(self) -> bool:
        return bool(self.users or self.departments)

    def summary(self) -> str:
        return f"{self.users.summary('users')}; {self.departments.summary('departments')}"

    def lines(self) -> list[str]:
        return [f"user {line}" for line in self.users.lines()] + [
            f"department {line}" for line in self.departments.lines()
        ]


@dataclass(frozen=True)
class StoredReport:
    at: float
    source: str
    summary: str
    lines: tuple[str, ...]


# ------------------------------------------------------------------------------------ store


@functools.lru_cache(maxsize=1 << 16)
def folded(name: str) -> str:
    """A name as a search compares it: NFKC, case folded (cached: names repeat per person)."""
    return unicodedata.normalize("NFKC", name).casefold()


class Directory:
    """The directory database (SQLite). Safe to share between threads of one process."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time,
                 directory_password: Callable[[str, str], bool] | None = None) -> None:  # fmt: skip
        """``directory_password``: an LDAP bind that checks a person's sign-in password
        (``ldap_bind.LdapPasswords.check``), when ``[directory.ldap]`` is set."""
        self._lock = threading.Lock()
        self.clock = clock
        # FULL, as SQLite's default gave it before it was said here: an import must not roll
        # back after a power cut.
        self._db = open_wal_database(
            path,
            V0_SCHEMA,
            synchronous=Synchronous.FULL,
            busy_timeout_s=AGENT_BUSY_TIMEOUT_S,
            versions=VERSIONS,
        )
        # The accounts of the web listener, in the same file (the import leaves them alone).
        self.accounts = AccountStore(path, self, directory_password=directory_password)

    def close(self) -> None:
        self.accounts.close()
        self._db.close()

    # ----------------------------------------------------------------------------- import

    def import_csv(self, raw: bytes, name: str = "HR export") -> tuple[Changes, Changes]:
        """Replace the directory with the export; return (user changes, department changes)."""
        users, departments = parse_hr_csv(raw, name)
        report = self.replace(Snapshot(tuple(users), tuple(departments)), f"import {name}")
        return report.users, report.departments

    def import_file(self, raw: bytes, name: str, *, dry_run: bool = False) -> Report:
        """Replace the directory with a CSV or XLSX export (``dry_run``: only say what would
        change)."""
        snapshot = parse_hr_file(raw, name)
        return self.preview(snapshot) if dry_run else self.replace(snapshot, f"import {name}")

    def preview(self, snapshot: Snapshot) -> Report:
        """What ``replace(snapshot)`` would change; changes nothing."""
        with self._lock:
            return self._report(snapshot)

    def replace(self, snapshot: Snapshot, source: str) -> Report:
        """Make the directory ``snapshot`` in one transaction, store and return the report."""
        with self._lock:
            return self._replace(snapshot, source)

    def put_person(self, person: User, parent: str | None, source: str) -> Report:
        """Add or change one person (the console's form); a new department is added under
        ``parent``, and a known one gets ``parent`` when one is given. DirectoryError when the
        result breaks a rule of the export (two heads of a department...)."""
        with self._lock:
            users = [u for u in self._users() if u.email != person.email] + [person]
            departments = {d.name: d.parent for d in self._departments()}
            if parent is not None or person.department not in departments:
                departments[person.department] = parent
            if parent is not None:
                departments.setdefault(parent, None)
            snapshot = check_snapshot(
                Snapshot(tuple(sorted(users, key=lambda u: u.email)),
                         tuple(Department(n, p) for n, p in sorted(departments.items()))),
                source,
            )  # fmt: skip
            return self._replace(snapshot, source)

    def _replace(self, snapshot: Snapshot, source: str) -> Report:
        """``replace`` with the lock held."""
        report = self._report(snapshot)
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._write(snapshot)
            if report:
                self._store_report(report, source)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return report

    def _report(self, snapshot: Snapshot) -> Report:
        old_users = {u.email: u for u in self._users()}
        old_depts = {d.name: d for d in self._departments()}
        return Report(
            diff_people(old_users, {u.email: u for u in snapshot.users}),
            diff(old_depts, {d.name: d for d in snapshot.departments}),
        )

    def _write(self, snapshot: Snapshot) -> None:
        for table in ("users", "departments", "user_groups"):
            self._db.execute(f"DELETE FROM {table}")  # noqa: S608 - our own table names
        self._db.executemany(
            f"INSERT INTO users ({_USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
            [(u.email, u.name, u.department, u.role, u.rank, u.manager, int(u.disabled))
             for u in snapshot.users],
        )  # fmt: skip
        self._db.executemany(
            "INSERT INTO departments VALUES (?, ?)",
            [(d.name, d.parent) for d in snapshot.departments],
        )
        self._db.executemany(
            "INSERT INTO user_groups VALUES (?, ?)",
            [(group, u.email) for u in snapshot.users for group in u.groups],
        )

    def _store_report(self, report: Report, source: str) -> None:
        self._db.execute(
            "INSERT INTO directory_reports (at, source, summary, details) VALUES (?, ?, ?, ?)",
            (
                self.clock(),
                source,
                report.summary(),
                json.dumps(report.lines(), ensure_ascii=False),
            ),
        )
        self._db.execute(
            "DELETE FROM directory_reports WHERE id <= (SELECT max(id) FROM directory_reports) - ?",
            (MAX_STORED_REPORTS,),
        )

    def reports(self, limit: int = 20) -> list[StoredReport]:
        """The newest stored import/sync reports, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT at, source, summary, details FROM directory_reports"
                " ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [StoredReport(r[0], r[1], r[2], tuple(json.loads(r[3]))) for r in rows]

    # ----------------------------------------------------------------------------- lookups

    def user(self, email: str) -> User | None:
        """The person with this address, enabled or disabled."""
        with self._lock:
            found = self._select_users("WHERE email = ?", (email.lower(),))
        return found[0] if found else None

    def users(self) -> list[User]:
        with self._lock:
            return self._users()

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(tuple(self._users()), tuple(self._departments()))

    def domains(self) -> frozenset[str]:
        """The mail domains of the directory's users (lower-case): our own domains."""
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT substr(email, instr(email, '@') + 1) FROM users"
            ).fetchall()
        return frozenset(r[0] for r in rows if r[0])

    def department(self, name: str) -> Department | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM departments WHERE name = ?", (name,)).fetchone()
        return None if row is None else Department(*row)

    def departments(self) -> list[Department]:
        with self._lock:
            return self._departments()

    def sub_departments(self, name: str) -> frozenset[str]:
        """``name`` and every department below it (a rule's scope with sub-departments)."""
        children: dict[str, list[str]] = {}
        for dept in self.departments():
            if dept.parent is not None:
                children.setdefault(dept.parent, []).append(dept.name)
        found, todo = {name}, [name]
        while todo:
            for child in children.get(todo.pop(), ()):
                if child not in found:
                    found.add(child)
                    todo.append(child)
        return frozenset(found)

    def departments_above(self, name: str) -> tuple[str, ...]:
        """The departments above ``name``, nearest first (a sender's, for a rule's scope with
        sub-departments); a loop in the tree ends the walk."""
        parents = {dept.name: dept.parent for dept in self.departments()}
        found: list[str] = []
        current = parents.get(name)
        while current is not None and current != name and current not in found:
            found.append(current)
            current = parents.get(current)
        return tuple(found)

    def ranks(self) -> list[str]:
        """The job ranks (직급) the directory's people have, in order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT rank FROM users WHERE rank != '' ORDER BY rank"
            ).fetchall()
        return [r[0] for r in rows]

    def has_people(self) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None

    def department_names(self) -> frozenset[str]:
        """Every department: the tree's and any a person names (one query, no people read)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT name FROM departments UNION SELECT department FROM users"
            ).fetchall()
        return frozenset(r[0] for r in rows)

    def find_names(self, kind: ScopeKind, text: str, limit: int) -> tuple[list[str], int]:
        """The first ``limit`` names of ``kind`` containing ``text`` (any case, however
        composed; a person by address or name, given as the address), in order, and how many
        contain it."""
        needle = folded(text[: MAX_SEARCH_CHARS + 1])
        with self._lock:
            rows = self._db.execute(_NAME_LISTS[kind]).fetchall()
        found = sorted(row[0] for row in rows if any(needle in folded(v) for v in row if v))
        return found[:limit], len(found)

    def find_people(self, text: str, limit: int) -> tuple[list[PersonLine], int]:
        """The first ``limit`` people whose address or name contains ``text`` (any case,
        however composed), as (address, name, department, disabled) in address order, and
        how many there are."""
        needle = folded(text[: MAX_SEARCH_CHARS + 1])
        with self._lock:
            rows = self._db.execute(_PEOPLE_LIST).fetchall()
        found = sorted(
            (str(e), str(n), str(d), bool(off))
            for e, n, d, off in rows
            if needle in folded(e) or (n and needle in folded(n))
        )
        return found[:limit], len(found)

    def people_at(self, addresses: Iterable[str]) -> dict[str, PersonLine]:
        """The people of these addresses the directory has (any case), by lower-case address:
        (address, name, department, disabled). One query per 500 addresses."""
        wanted = sorted({a.lower() for a in addresses})
        found: dict[str, PersonLine] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            with self._lock:
                rows = self._db.execute(
                    f"SELECT email, name, department, disabled FROM users WHERE email IN ({marks})",  # noqa: S608
                    chunk,
                ).fetchall()
            found.update({str(e): (str(e), str(n), str(d), bool(off)) for e, n, d, off in rows})
        return found

    def group_members(self, group: str) -> tuple[str, ...]:
        """The enabled people of a named group (e.g. "고객정보 취급자"), in address order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT g.email FROM user_groups g JOIN users u ON u.email = g.email"
                " WHERE g.grp = ? AND u.disabled = 0 ORDER BY g.email",
                (group,),
            ).fetchall()
        return tuple(r[0] for r in rows)

    def groups(self) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT DISTINCT grp FROM user_groups ORDER BY grp")
            return [r[0] for r in rows]

    def with_rank(self, rank: str) -> tuple[str, ...]:
        """The enabled people of a job rank (직급), in address order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT email FROM users WHERE rank = ? AND disabled = 0 ORDER BY email", (rank,)
            ).fetchall()
        return tuple(r[0] for r in rows)

    def manager_of(self, email: str) -> str | None:
        """The person's enabled manager in the directory (lower-case), or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT m.email FROM users u JOIN users m ON m.email = u.manager"
                " WHERE u.email = ? AND m.disabled = 0 AND m.email != u.email",
                (email.lower(),),
            ).fetchone()
        return None if row is None else str(row[0])

    def approvers_of(self, department: str, *, exclude: str = "") -> tuple[str, ...]:
        """Enabled head and delegate of ``department`` (lower-case), minus ``exclude``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT email FROM users WHERE department = ? AND role IN ('head', 'delegate')"
                " AND disabled = 0 ORDER BY role DESC",
                (department,),
            ).fetchall()
        return tuple(r[0] for r in rows if r[0] != exclude.lower())

    def delegates(self) -> tuple[str, ...]:
        """Every enabled person with the role ``delegate`` (대결자), in address order."""
        return self._with_role("delegate")

    def security_officers(self) -> tuple[str, ...]:
        """Every enabled user with the role ``security-officer`` (lower-case), in address order."""
        return self._with_role(SECURITY_OFFICER)

    def administrators(self) -> tuple[str, ...]:
        """Every enabled user with the directory role ``administrator`` (관리자)."""
        return self._with_role(ADMINISTRATOR)

    def _with_role(self, role: str) -> tuple[str, ...]:
        with self._lock:
            rows = self._db.execute(
                "SELECT email FROM users WHERE role = ? AND disabled = 0 ORDER BY email", (role,)
            ).fetchall()
        return tuple(r[0] for r in rows)

    def approvers_above(self, department: str, *, exclude: str = "") -> tuple[str, ...]:
        """The nearest department above ``department`` that has an approver."""
        seen = {department}
        current = self.department(department)
        while current is not None and current.parent is not None and current.parent not in seen:
            seen.add(current.parent)
            found = self.approvers_of(current.parent, exclude=exclude)
            if found:
                return found
            current = self.department(current.parent)
        return ()

    # ----------------------------------------------------------------------------- accounts
    # A directory person's web account, through the account store (``self.accounts``).

    def set_password(self, email: str, password: str) -> None:
        if self.user(email) is None:
            raise DirectoryError(f"{email} is not in the directory; import the HR export first")
        self.accounts.set_password(email, password)

    def set_totp(self, email: str, secret: str | None) -> None:
        """Give the account a second factor (a base32 TOTP secret), or take it away (None)."""
        if not self.accounts.has_account(email):
            raise DirectoryError(f"{email.lower()} has no account; set a password first")
        self.accounts.set_totp(email, secret)

    def totp_secret(self, email: str) -> str | None:
        """The account's TOTP secret, or None (no second factor, or no account)."""
        return self.accounts.totp_secret(email)

    def has_account(self, email: str) -> bool:
        return self.accounts.has_account(email)

    def check_password(self, email: str, password: str) -> bool:
        """True only for an account that may sign in now and whose password matches."""
        return self.accounts.check_password(email, password)

    def _users(self) -> list[User]:
        return self._select_users("", ())

    def _select_users(self, where: str, args: tuple[object, ...]) -> list[User]:
        rows = self._db.execute(
            f"SELECT {_USER_COLUMNS} FROM users {where} ORDER BY email",  # noqa: S608
            args,
        ).fetchall()
        groups: dict[str, list[str]] = {}
        # One person (every mail, every sign-in asks): their groups only.
        only = "WHERE email = ?" if len(rows) == 1 else ""
        pairs = self._db.execute(
            f"SELECT grp, email FROM user_groups {only} ORDER BY grp",  # noqa: S608
            (rows[0][0],) if only else (),
        )
        for group, email in pairs:
            groups.setdefault(email, []).append(group)
        return [_user(row, groups.get(row[0], ())) for row in rows]

    def _departments(self) -> list[Department]:
        return [Department(*r) for r in self._db.execute("SELECT * FROM departments ORDER BY name")]


def _user(row: tuple[object, ...], groups: Iterable[str]) -> User:
    email, name, department, role, rank, manager, disabled = row
    return User(str(email), str(name), str(department), str(role), str(rank), str(manager),
                bool(disabled), tuple(groups))  # fmt: skip


def _json(lines: list[str]) -> str:
    return json.dumps(lines, ensure_ascii=False)
