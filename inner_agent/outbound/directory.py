"""The directory: users, departments, department heads and delegates, from the HR export.

HR systems export a CSV with one row per employee. Columns (header row required, order free,
extra columns ignored):

=================== ========= ===========================================================
column              required  meaning
=================== ========= ===========================================================
email               yes       the user's mail address (the key; compared lower-case)
name                no        display name
department          yes       department name (or code) as HR writes it
parent_department   no        the department above it (for escalation); same on every row
role                no        ``head``, ``delegate``, ``security-officer`` or empty (member);
                              one head and one delegate per department, any number of
                              security officers (they approve mail whose envelope sender and
                              ``From:`` disagree, docs/approval.md)
=================== ========= ===========================================================

``import_csv`` is re-runnable: it computes what changed (users and departments added, changed,
removed) and applies it in one transaction. UTF-8 (with or without BOM) and CP949 (what Korean
Excel writes) are read. LDAP is the documented next step (docs/approval.md).

Web accounts (argon2id hashes, a TOTP secret for a second factor, console roles) live in the
same database, in the table the web listener's account store keeps
(``inner_agent.web.accounts``); the import never touches it. ``maildiode directory passwd
USER`` and ``maildiode directory totp USER`` set a directory person's password and second
factor through it. A user removed from the directory can no longer sign in, whatever the
account table says (console-only accounts aside: they are not people of the export).
"""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from inner_agent.outbound.errors import DirectoryError
from inner_agent.web.accounts import AccountStore
from protocol.sqlite import AGENT_BUSY_TIMEOUT_S, Synchronous, open_wal_database

__all__ = ["SECURITY_OFFICER", "Changes", "Department", "Directory", "User", "parse_hr_csv"]

# An HR export of a very large organisation is a few MB; anything far bigger is not one.
MAX_CSV_BYTES = 64 << 20
# A security officer is asked instead of the department head when a held mail's envelope
# sender and From: header show different people (docs/approval.md, "Who approves").
SECURITY_OFFICER = "security-officer"
ROLES = ("", "head", "delegate", SECURITY_OFFICER)
# One of each per department: the head and the delegate; a department may have several officers.
ONE_PER_DEPARTMENT = ("head", "delegate")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    email TEXT PRIMARY KEY, name TEXT NOT NULL, department TEXT NOT NULL, role TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS departments (name TEXT PRIMARY KEY, parent TEXT);
"""


@dataclass(frozen=True)
class User:
    email: str
    name: str
    department: str
    role: str  # "", "head", "delegate" or "security-officer"


@dataclass(frozen=True)
class Department:
    name: str
    parent: str | None


@dataclass
class Changes:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    def summary(self, noun: str) -> str:
        counts = (len(self.added), len(self.changed), len(self.removed))
        return f"{noun}: %d added, %d changed, %d removed" % counts


# ------------------------------------------------------------------------------------ parsing


def parse_hr_csv(raw: bytes, name: str = "HR export") -> tuple[list[User], list[Department]]:
    """Users and departments from the CSV bytes; DirectoryError names line and column."""
    if len(raw) > MAX_CSV_BYTES:
        raise DirectoryError(f"{name}: larger than {MAX_CSV_BYTES} bytes")
    reader = csv.DictReader(io.StringIO(_decode(raw, name), newline=""))
    columns = {c.strip().lower() for c in reader.fieldnames or ()}
    missing = {"email", "department"} - columns
    if missing:
        raise DirectoryError(f"{name}: line 1: missing column(s) {', '.join(sorted(missing))}")
    users: dict[str, User] = {}
    parents: dict[str, str | None] = {}
    for line, row in enumerate(reader, start=2):
        cells = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
        user = _user(cells, f"{name}: line {line}")
        if user.email in users:
            raise DirectoryError(f"{name}: line {line}: email {user.email} appears twice")
        users[user.email] = user
        _note_parent(
            parents, user.department, cells.get("parent_department") or None, f"{name}: line {line}"
        )
    for parent in [p for p in parents.values() if p is not None]:
        parents.setdefault(parent, None)
    _check_roles(users.values(), name)
    departments = [Department(d, p) for d, p in sorted(parents.items())]
    return sorted(users.values(), key=lambda u: u.email), departments


def _decode(raw: bytes, name: str) -> str:
    for encoding in ("utf-8-sig", "cp949"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise DirectoryError(f"{name}: neither UTF-8 nor CP949 text")


def _user(cells: dict[str, str], where: str) -> User:
    email = cells.get("email", "").lower()
    local, at, domain = email.partition("@")
    if not (at and local and "." in domain) or any(c.isspace() for c in email):
        raise DirectoryError(f"{where}: column email: {email!r} is not a mail address")
    department = cells.get("department", "")
    if not department:
        raise DirectoryError(f"{where}: column department: empty")
    role = cells.get("role", "").lower()
    if role not in ROLES:
        raise DirectoryError(
            f"{where}: column role: {role!r} is not head, delegate, {SECURITY_OFFICER} or empty"
        )
    return User(email, cells.get("name", ""), department, role)


def _note_parent(
    parents: dict[str, str | None], department: str, parent: str | None, where: str
) -> None:
    if parent == department:
        raise DirectoryError(
            f"{where}: column parent_department: a department cannot be its own parent"
        )
    known = parents.get(department)
    if department in parents and parent is not None and known not in (None, parent):
        raise DirectoryError(
            f"{where}: column parent_department: {department} has parent {known} on an earlier line"
        )
    if parent is not None or department not in parents:
        parents[department] = parent


def _check_roles(users: Iterable[User], name: str) -> None:
    seen: dict[tuple[str, str], str] = {}
    for user in users:
        if user.role not in ONE_PER_DEPARTMENT:
            continue
        key = (user.department, user.role)
        if key in seen:
            raise DirectoryError(
                f"{name}: department {user.department} has two {user.role}s: "
                f"{seen[key]} and {user.email}"
            )
        seen[key] = user.email


# ------------------------------------------------------------------------------------ store


class Directory:
    """The directory database (SQLite). Safe to share between threads of one process."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        # FULL, as SQLite's default gave it before it was said here: an import must not roll
        # back after a power cut.
        self._db = open_wal_database(
            path, _SCHEMA, synchronous=Synchronous.FULL, busy_timeout_s=AGENT_BUSY_TIMEOUT_S
        )
        # The accounts of the web listener, in the same file (the import leaves them alone).
        self.accounts = AccountStore(path, self)

    def close(self) -> None:
        self.accounts.close()
        self._db.close()

    # ----------------------------------------------------------------------------- import

    def import_csv(self, raw: bytes, name: str = "HR export") -> tuple[Changes, Changes]:
        """Replace the directory with the export; return (user changes, department changes)."""
        users, departments = parse_hr_csv(raw, name)
        with self._lock:
            old_users = {u.email: u for u in self._users()}
            old_depts = {d.name: d for d in self._departments()}
            user_changes = _diff(old_users, {u.email: u for u in users})
            dept_changes = _diff(old_depts, {d.name: d for d in departments})
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("DELETE FROM users")
                self._db.execute("DELETE FROM departments")
                self._db.executemany(
                    "INSERT INTO users VALUES (?, ?, ?, ?)",
                    [(u.email, u.name, u.department, u.role) for u in users],
                )
                self._db.executemany(
                    "INSERT INTO departments VALUES (?, ?)",
                    [(d.name, d.parent) for d in departments],
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return user_changes, dept_changes

    # ----------------------------------------------------------------------------- lookups

    def user(self, email: str) -> User | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM users WHERE email = ?", (email.lower(),)
            ).fetchone()
        return None if row is None else User(*row)

    def users(self) -> list[User]:
        with self._lock:
            return self._users()

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

    def approvers_of(self, department: str, *, exclude: str = "") -> tuple[str, ...]:
        """Head and delegate of ``department`` (lower-case), minus ``exclude`` (the sender)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT email FROM users WHERE department = ? AND role IN ('head', 'delegate')"
                " ORDER BY role DESC",
                (department,),
            ).fetchall()
        return tuple(r[0] for r in rows if r[0] != exclude.lower())

    def security_officers(self) -> tuple[str, ...]:
        """Every user with the role ``security-officer`` (lower-case), in address order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT email FROM users WHERE role = ? ORDER BY email", (SECURITY_OFFICER,)
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
        return [User(*r) for r in self._db.execute("SELECT * FROM users ORDER BY email")]

    def _departments(self) -> list[Department]:
        return [Department(*r) for r in self._db.execute("SELECT * FROM departments ORDER BY name")]


def _diff(old: Mapping[str, object], new: Mapping[str, object]) -> Changes:
    return Changes(
        added=sorted(k for k in new if k not in old),
        changed=sorted(k for k in new if k in old and old[k] != new[k]),
        removed=sorted(k for k in old if k not in new),
    )
