"""The one account store of the web listener: who may sign in, with which password, second
factor and roles (D-record "One account store for approvers and the console").

Accounts live in the ``accounts`` table of the directory database, where the approvers'
accounts always were; the HR import replaces only the people and departments beside it, so it
never touches a password, a second factor or a console role. Two kinds of account:

- a **directory** account belongs to a person the HR export lists (made by ``maildiode
  directory passwd``, or by ``maildiode account add`` for an address the directory has). It
  works while the export lists the person: someone who left loses every role, console roles
  included, at the next import, and has them back if the export lists them again;
- a **console-only** account (``maildiode account add`` for an address the directory does
  not have: an external auditor) works whatever the export says, until it is disabled or
  removed.

``roles(email)`` is the one answer to "what may this account do now": empty for an unknown,
disabled or departed account (sign-in, sessions and API tokens all ask it on every request,
so a change applies at once); a person the directory marks disabled (an LDAP or Active
Directory account switched off) has none either, console roles included. With
``directory_password`` (``[directory.ldap]``: an LDAP bind, ``ldap_bind``), an enabled directory
person without an account here has the directory roles and signs in with the directory's
password; an account's own password keeps working beside it. Passwords are
argon2id; an address without a working account is checked against a stand-in hash with the
same parameters (the same work for every address).
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from inner_agent.outbound.directory_schema import ACCOUNTS_V0_SCHEMA
from inner_agent.outbound.directory_schema import VERSIONS as DIRECTORY_VERSIONS
from inner_agent.web.errors import AccountRefused
from inner_agent.web.roles import DIRECTORY_ROLES, Role
from protocol.sqlite import AGENT_BUSY_TIMEOUT_S, Synchronous, open_wal_database, write_transaction

__all__ = ["Account", "AccountStore", "People", "normal_address"]

# An address is at most 254 characters (RFC 5321).
MAX_ADDRESS_CHARS = 254

_FIELDS = "email, role, console_only, disabled, created, totp IS NOT NULL AND totp != ''"


class Person(Protocol):
    """A person of the directory, as far as signing in cares."""

    @property
    def disabled(self) -> bool: ...


class People(Protocol):
    """The directory: whether the HR export (or the LDAP sync) lists an address."""

    def user(self, email: str) -> Person | None: ...


@dataclass(frozen=True)
class Account:
    email: str
    role: Role | None  # the console role; None: a directory account without one
    console_only: bool
    disabled: bool
    created: float
    second_factor: bool


def normal_address(untrusted: str) -> str:
    return untrusted.strip().lower()[:MAX_ADDRESS_CHARS]


class AccountStore:
    """Accounts in the directory database. Safe to share between threads of one process."""

    def __init__(
        self, path: Path, people: People, *, clock: Callable[[], float] = time.time,
        directory_password: Callable[[str, str], bool] | None = None,
    ) -> None:  # fmt: skip
        """``directory_password``: asks the directory (an LDAP bind) whether a person's
        password is right; with it, every enabled person of the directory may sign in, with
        an account here or without one."""
        self.people, self.clock = people, clock
        self.directory_password = directory_password
        self._lock = threading.Lock()
        # FULL: a password or role change must not roll back after a power cut.
        # The directory's file: its versions bring the accounts' later columns (migration 2).
        self._db = open_wal_database(
            path,
            ACCOUNTS_V0_SCHEMA,
            synchronous=Synchronous.FULL,
            busy_timeout_s=AGENT_BUSY_TIMEOUT_S,
            versions=DIRECTORY_VERSIONS,
        )
        self._hasher = PasswordHasher()
        self._stand_in: str | None = None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return write_transaction(self._db, self._lock)

    # ------------------------------------------------------------------ what sign-in asks

    def user(self, email: str) -> object | None:
        """Someone the listener knows by this address (a directory person, or a console-only
        account): the log may show it as typed (``redact``)."""
        email = normal_address(email)
        person = self.people.user(email)
        if person is not None:
            return person
        account = self.account(email)
        return account if account is not None and account.console_only else None

    def roles(self, email: str) -> frozenset[Role]:
        """What the account may do now; empty when it cannot sign in at all."""
        email = normal_address(email)
        account = self.account(email)
        person = self.people.user(email)
        if account is None and self.directory_password is not None and person is not None:
            return frozenset() if person.disabled else DIRECTORY_ROLES  # signs in by LDAP
        if account is None or account.disabled:
            return frozenset()
        if person is not None and person.disabled:
            return frozenset()  # disabled in the directory (HR, or the LDAP account)
        listed = person is not None
        if not (listed or account.console_only):
            return frozenset()  # a directory account of someone who left
        own = {account.role} if account.role is not None else set()
        return frozenset(own | (DIRECTORY_ROLES if listed else set()))

    def check_password(self, email: str, password: str) -> bool:
        """True only for an account that may sign in now and whose password matches.
        ``DirectoryUnreachable`` when only the directory could say and it cannot answer (the
        account's own password, checked first, needs no directory)."""
        email = normal_address(email)
        with self._lock:
            row = self._db.execute("SELECT hash FROM accounts WHERE email = ?", (email,)).fetchone()
        if not self.roles(email):
            self._verify(self._stand_in_hash(), password)  # the same work for every address
            return False
        if row is None:
            self._verify(self._stand_in_hash(), password)  # the same local work as with one
        elif self._verify(str(row[0]), password):
            return True
        # A directory person may also use the directory's password (an account's own still
        # works: the approvers and administrators who had one before; docs/console.md).
        if self.directory_password is None or not self.listed(email):
            return False
        return self.directory_password(email, password)

    def totp_secret(self, email: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT totp FROM accounts WHERE email = ?", (normal_address(email),)
            ).fetchone()
        return None if row is None or not row[0] else str(row[0])

    # --------------------------------------------------------------------------- reading

    def account(self, email: str) -> Account | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_FIELDS} FROM accounts WHERE email = ?",  # noqa: S608
                (normal_address(email),),
            ).fetchone()
        return None if row is None else _account(row)

    def accounts(self) -> list[Account]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_FIELDS} FROM accounts ORDER BY email").fetchall()  # noqa: S608
        return [_account(row) for row in rows]

    def has_account(self, email: str) -> bool:
        return self.account(email) is not None

    def listed(self, email: str) -> bool:
        """Whether the HR export lists the address (a directory account works only then)."""
        return self.people.user(normal_address(email)) is not None

    # --------------------------------------------------------------------------- changes

    def add(self, email: str, role: Role, password: str) -> Account:
        """A new account with a console role: a directory account when the directory lists
        the address, else console-only."""
        email = _checked_address(email)
        console_only = not self.listed(email)
        digest = self._hasher.hash(password)
        with self._tx() as db:
            if db.execute("SELECT 1 FROM accounts WHERE email = ?", (email,)).fetchone():
                raise AccountRefused(email, "already has an account; change its role with "
                                     "`maildiode account role`")  # fmt: skip
            db.execute(
                "INSERT INTO accounts (email, hash, role, console_only, created)"
                " VALUES (?, ?, ?, ?, ?)",
                (email, digest, str(Role(role)), int(console_only), self.clock()),
            )
        return self._must(email)

    def set_password(self, email: str, password: str) -> Account:
        """A new password; a directory person without an account gets one (no console role)."""
        email = normal_address(email)
        digest = self._hasher.hash(password)
        listed = self.listed(email)
        with self._tx() as db:
            found = db.execute("SELECT 1 FROM accounts WHERE email = ?", (email,)).fetchone()
            if found is None and not listed:
                raise AccountRefused(email, "is not in the directory and has no account; add "
                                     "it with `maildiode account add`")  # fmt: skip
            db.execute(
                "INSERT INTO accounts (email, hash, created) VALUES (?, ?, ?)"
                " ON CONFLICT (email) DO UPDATE SET hash = excluded.hash",
                (email, digest, self.clock()),
            )
        return self._must(email)

    def set_role(self, email: str, role: Role | None) -> Account:
        """Give the account a console role, or take it away (None)."""
        account = self._must(email)
        if role is None and account.console_only:
            raise AccountRefused(account.email, "a console-only account needs a role; "
                                 "remove the account instead")  # fmt: skip
        self._update(account.email, "role = ?", str(Role(role)) if role else "")
        return self._must(account.email)

    def set_disabled(self, email: str, disabled: bool) -> Account:
        account = self._must(email)
        self._update(account.email, "disabled = ?", int(disabled))
        return self._must(account.email)

    def set_totp(self, email: str, secret: str | None) -> None:
        """Give the account a second factor (a base32 TOTP secret), or take it away (None)."""
        email = normal_address(email)
        if not self.has_account(email):
            raise AccountRefused(email, "has no account; set a password first")
        self._update(email, "totp = ?", secret)

    def remove(self, email: str) -> Account:
        """Forget the account (password, second factor, role); the caller revokes its tokens."""
        account = self._must(email)
        with self._tx() as db:
            db.execute("DELETE FROM accounts WHERE email = ?", (account.email,))
        return account

    def _update(self, email: str, assignment: str, value: object) -> None:
        with self._tx() as db:
            db.execute(f"UPDATE accounts SET {assignment} WHERE email = ?", (value, email))  # noqa: S608

    def _must(self, email: str) -> Account:
        account = self.account(email)
        if account is None:
            raise AccountRefused(normal_address(email), "has no account")
        return account

    # --------------------------------------------------------------------------- hashing

    def _verify(self, digest: str, password: str) -> bool:
        try:
            return self._hasher.verify(digest, password)
        except (VerificationError, InvalidHashError):
            return False

    def _stand_in_hash(self) -> str:
        """A hash with our parameters of a password nobody knows, made once."""
        if self._stand_in is None:
            self._stand_in = self._hasher.hash(secrets.token_urlsafe(16))
        return self._stand_in


def _account(row: tuple[Any, ...]) -> Account:
    email, role, console_only, disabled, created, second = row
    return Account(str(email), Role(role) if role else None, bool(console_only),
                   bool(disabled), float(created), bool(second))  # fmt: skip


def _checked_address(untrusted: str) -> str:
    email = normal_address(untrusted)
    local, at, domain = email.partition("@")
    if not (at and local and "." in domain) or any(c.isspace() or ord(c) < 32 for c in email):
        raise AccountRefused(email, "is not a mail address (user@domain)")
    return email
