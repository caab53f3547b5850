"""API tokens: ``Authorization: Bearer mdt_<id>_<secret>`` for scripts using ``/api/v1/``.

A token is ``mdt_``, a 12-hex-digit id, ``_`` and 256 random bits (43 base64url characters).
It is shown once, when made (``maildiode token create``), and stored only as its SHA-256
digest beside its id, account and times (``api_tokens`` in the directory database, with the
accounts). The id is no secret: lists and logs name a token by it.

SHA-256, not argon2: a slow hash protects a password a person chose, which can be guessed;
256 random bits cannot be guessed, however fast each try, so a stolen digest is worth
nothing, and a fast check keeps every API call cheap (argon2 would cost 64 MiB and tens of
milliseconds per call, and put the API behind the sign-in's small pool). The id picks the row
and the digests are compared in constant time.

A token has no role of its own: it acts for its account, with the account's roles at the time
of each request (``AccountStore.roles``), so a role change applies to it at once and a
disabled or departed account's tokens stop working. Removing an account revokes its tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inner_agent.outbound.directory_schema import VERSIONS as DIRECTORY_VERSIONS
from inner_agent.web.errors import TokenRefused
from protocol.sqlite import AGENT_BUSY_TIMEOUT_S, Synchronous, open_wal_database, write_transaction

__all__ = ["MAX_TOKENS_PER_ACCOUNT", "TokenRow", "TokenStore", "token_id_of"]

PREFIX = "mdt_"
ID_HEX = 12  # 48 bits: unique among the tokens of a site, and short enough to type
SECRET_BYTES = 32  # 256 bits: beyond guessing, so a fast digest is enough
_TOKEN = re.compile(r"mdt_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
_ID = re.compile(r"[0-9a-f]{12}")
# Longer than any token we make; a longer value is refused before anything is computed.
MAX_TOKEN_CHARS = 100
# Live tokens an account may hold: a few scripts each; a leak of many is a mistake to stop.
MAX_TOKENS_PER_ACCOUNT = 20
# How stale "last used" may get before a request writes it again (reads stay reads).
TOUCH_EVERY_S = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_tokens (
    token_id  TEXT PRIMARY KEY,
    account   TEXT NOT NULL,
    digest    TEXT NOT NULL,
    created   REAL NOT NULL,
    last_used REAL,
    revoked   REAL
);
CREATE INDEX IF NOT EXISTS api_tokens_account ON api_tokens (account);
"""
_FIELDS = "token_id, account, created, last_used, revoked"


@dataclass(frozen=True)
class TokenRow:
    token_id: str
    account: str
    created: float
    last_used: float | None
    revoked: float | None

    @property
    def live(self) -> bool:
        return self.revoked is None


def token_id_of(untrusted: str) -> str | None:
    """The id in a token of our form, or None."""
    found = _TOKEN.fullmatch(untrusted[:MAX_TOKEN_CHARS])
    return found.group(1) if found else None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


class TokenStore:
    """Tokens in the directory database. Safe to share between threads of one process."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        # FULL: a revocation must not roll back after a power cut.
        self._db = open_wal_database(  # the directory's file, so its versions
            path,
            _SCHEMA,
            synchronous=Synchronous.FULL,
            busy_timeout_s=AGENT_BUSY_TIMEOUT_S,
            versions=DIRECTORY_VERSIONS,
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return write_transaction(self._db, self._lock)

    def create(self, account: str) -> tuple[TokenRow, str]:
        """A new token for ``account``: its row and the token itself (to show once)."""
        now = self.clock()
        with self._tx() as db:
            live = db.execute(
                "SELECT COUNT(*) FROM api_tokens WHERE account = ? AND revoked IS NULL",
                (account,),
            ).fetchone()[0]
            if live >= MAX_TOKENS_PER_ACCOUNT:
                raise TokenRefused(account, f"already has {live} live tokens (at most "
                                   f"{MAX_TOKENS_PER_ACCOUNT}); revoke some first")  # fmt: skip
            token_id = self._fresh_id(db)
            token = f"{PREFIX}{token_id}_{secrets.token_urlsafe(SECRET_BYTES)}"
            db.execute(
                "INSERT INTO api_tokens (token_id, account, digest, created) VALUES (?, ?, ?, ?)",
                (token_id, account, _digest(token), now),
            )
        return TokenRow(token_id, account, now, None, None), token

    @staticmethod
    def _fresh_id(db: sqlite3.Connection) -> str:
        while True:  # 48 bits: a collision is rare, and then the next try differs
            token_id = secrets.token_hex(ID_HEX // 2)
            taken = db.execute("SELECT 1 FROM api_tokens WHERE token_id = ?", (token_id,))
            if not taken.fetchone():
                return token_id

    def verify(self, untrusted: str) -> TokenRow | None:
        """The live token ``untrusted`` is, or None (malformed, unknown, wrong, revoked)."""
        token_id = token_id_of(untrusted)
        if token_id is None:
            return None
        with self._lock:
            row = self._db.execute(
                f"SELECT {_FIELDS}, digest FROM api_tokens WHERE token_id = ?",  # noqa: S608
                (token_id,),
            ).fetchone()
        if row is None or not hmac.compare_digest(str(row[5]), _digest(untrusted)):
            return None
        found = _row(row[:5])
        if not found.live:
            return None
        now = self.clock()
        if found.last_used is None or now - found.last_used >= TOUCH_EVERY_S:
            with self._tx() as db:
                db.execute("UPDATE api_tokens SET last_used = ? WHERE token_id = ?",
                           (now, token_id))  # fmt: skip
        return found

    def revoke(self, token_id: str) -> TokenRow:
        """Revoke one token by its id (or by the token itself)."""
        token_id = token_id_of(token_id) or token_id.strip().lower()
        if not _ID.fullmatch(token_id):
            raise TokenRefused(token_id[:40], "is not a token id (12 hex digits)")
        found = self.token(token_id)
        if found is None:
            raise TokenRefused(token_id, "no such token")
        if not found.live:
            raise TokenRefused(token_id, "was revoked before")
        with self._tx() as db:
            db.execute("UPDATE api_tokens SET revoked = ? WHERE token_id = ?",
                       (self.clock(), token_id))  # fmt: skip
        return found

    def revoke_account(self, account: str) -> list[TokenRow]:
        """Revoke every live token of ``account``; the ones revoked."""
        live = [t for t in self.tokens(account) if t.live]
        with self._tx() as db:
            db.execute("UPDATE api_tokens SET revoked = ? WHERE account = ? AND revoked IS NULL",
                       (self.clock(), account))  # fmt: skip
        return live

    def token(self, token_id: str) -> TokenRow | None:
        with self._lock:
            sql = f"SELECT {_FIELDS} FROM api_tokens WHERE token_id = ?"  # noqa: S608
            row = self._db.execute(sql, (token_id,)).fetchone()
        return None if row is None else _row(row)

    def tokens(self, account: str | None = None) -> list[TokenRow]:
        """Every token (of ``account``), oldest first; revoked ones too (they are records)."""
        where, args = ("WHERE account = ?", (account,)) if account else ("", ())
        with self._lock:
            sql = f"SELECT {_FIELDS} FROM api_tokens {where} ORDER BY created, token_id"  # noqa: S608
            rows = self._db.execute(sql, args).fetchall()
        return [_row(row) for row in rows]


def _row(row: tuple[Any, ...]) -> TokenRow:
    token_id, account, created, last_used, revoked = row
    return TokenRow(str(token_id), str(account), float(created),
                    None if last_used is None else float(last_used),
                    None if revoked is None else float(revoked))  # fmt: skip
