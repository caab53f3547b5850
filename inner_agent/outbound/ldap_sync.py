"""One LDAP / Active Directory sync pass: read the people, map them to a directory snapshot
(``snapshot_from_entries``, no I/O), and replace the directory with it.

The LDAP server is the source of truth while a sync is configured: a person it no longer
returns is removed, as an HR import removes one the export no longer lists. Two guards keep a
misconfiguration from emptying the directory: a search that finds nobody changes nothing (an
error), and so does a failed bind or search.

Manager → approver: the ``manager`` attribute's DN is looked up among the people found; the
person it names approves the mail of the person who has it (``approvers``). Disabled accounts
(AD's userAccountControl bit 2, or ``disabled_filter``) stay in the directory, marked: they
can no longer sign in to the console or approve, and are not asked to.
"""

from __future__ import annotations

import logging
import math
import ssl
import time
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from inner_agent.outbound.directory_file import parse_role
from inner_agent.outbound.directory_model import Department, Snapshot, User
from inner_agent.outbound.directory_values import address_problem, label_problem, shown_in_note
from inner_agent.outbound.errors import DirectoryError, DirectoryUnreachable
from inner_agent.outbound.ldap_config import (
    AD_DISABLED_BIT,
    LdapAttributes,
    LdapSection,
    servers_text,
)

__all__ = [
    "Fetched",
    "LdapEntry",
    "Mapped",
    "ServerState",
    "all_down",
    "close_connection",
    "fetch_entries",
    "fetch_entries_from",
    "fetch_from_any",
    "read_bind_password",
    "server_for",
    "snapshot_from_entries",
    "unreachable_reason",
]

log = logging.getLogger(__name__)

# The page size of a paged search (RFC 2696): Active Directory answers at most 1000 per page.
PAGE_SIZE = 500
# A directory of more people than this is not one organisation's; stop rather than eat memory.
MAX_ENTRIES = 500_000


@dataclass(frozen=True)
class LdapEntry:
    dn: str
    attributes: Mapping[str, Sequence[str]]  # lower-case attribute names
    disabled: bool = False  # matched the disabled filter (read by the search)

    def first(self, name: str) -> str:
        values = self.attributes.get(name.lower(), ()) if name else ()
        # NFC, as the HR file's values: one department, however a client composed its name.
        return unicodedata.normalize("NFC", str(values[0]).strip()) if values else ""


@dataclass(frozen=True)
class ServerState:
    """One configured LDAP server as last seen: it answered, or not (since when, why)."""

    server: str
    reachable: bool
    reason: str = ""
    since: float = 0.0


@dataclass(frozen=True)
class Fetched:
    """The people, the server that gave them, and the servers asked before it that could
    not answer."""

    entries: list[LdapEntry]
    server: str
    down: tuple[ServerState, ...] = ()


def all_down(section: LdapSection, down: Sequence[ServerState], *, asked: bool = True
             ) -> DirectoryUnreachable:  # fmt: skip
    """The error when no configured server answered: every server named, each with its
    reason (one server: its URL and reason as they are)."""
    if len(down) == 1:
        only = down[0]
        return DirectoryUnreachable(only.server, only.reason, asked=asked,
                                    down=((only.server, only.reason),))  # fmt: skip
    reason = "; ".join(f"{state.server}: {state.reason}" for state in down)
    pairs = tuple((state.server, state.reason) for state in down)
    return DirectoryUnreachable(servers_text(section), reason, asked=asked, down=pairs)


@dataclass(frozen=True)
class Mapped:
    snapshot: Snapshot
    notes: list[str] = field(default_factory=list)  # entries skipped or fields left empty, why


# ------------------------------------------------------------------------------ mapping


def snapshot_from_entries(
    entries: Iterable[LdapEntry], attributes: LdapAttributes, flavor: str
) -> Mapped:
    """The directory the entries describe; what could not be used is noted, not fatal."""
    mapper = _Mapper(attributes, flavor)
    by_dn = mapper.addresses(entries)
    users = [u for u in (mapper.user(entry) for entry in by_dn.values()) if u is not None]
    departments = tuple(Department(n, p) for n, p in sorted(mapper.parents.items()))
    snapshot = Snapshot(tuple(sorted(users, key=lambda u: u.email)), departments)
    return Mapped(snapshot, mapper.notes)


class _Mapper:
    def __init__(self, attributes: LdapAttributes, flavor: str) -> None:
        self.attributes, self.flavor = attributes, flavor
        self.emails: dict[str, str] = {}  # normal DN -> address
        self.parents: dict[str, str | None] = {}
        self.notes: list[str] = []

    def addresses(self, entries: Iterable[LdapEntry]) -> dict[str, LdapEntry]:
        """The entries with a usable address of their own, by normal DN."""
        by_dn: dict[str, LdapEntry] = {}
        for entry in entries:
            email = _address(entry.first(self.attributes.email))
            if not email:
                self.notes.append(
                    f"{shown_in_note(entry.dn)}: skipped: no mail address ({self.attributes.email})"
                )
            elif email in self.emails.values():
                self.notes.append(
                    f"{shown_in_note(entry.dn)}: skipped: {email} is another entry's address too"
                )
            else:
                by_dn[_normal_dn(entry.dn)] = entry
                self.emails[_normal_dn(entry.dn)] = email
        return by_dn

    def user(self, entry: LdapEntry) -> User | None:
        attributes, email = self.attributes, self.emails[_normal_dn(entry.dn)]
        chain = _departments(entry, attributes)
        if not chain:
            where = attributes.department or "no ou= in its DN"
            self.notes.append(f"{shown_in_note(entry.dn)}: skipped: no department ({where})")
            return None
        name = entry.first(attributes.name) or entry.first("cn")
        rank, groups = entry.first(attributes.rank), _groups(entry, attributes)
        labels = (("name", name), *(("department", d) for d in chain), ("rank", rank),
                  *(("group", g) for g in groups))  # fmt: skip
        for what, label in labels:
            if problem := label_problem(label):
                self.notes.append(f"{shown_in_note(entry.dn)}: skipped: its {what} {problem}")
                return None
        for department, parent in zip(chain, [*chain[1:], None], strict=True):
            if self.parents.get(department) is None:
                self.parents[department] = parent
        return User(
            email, name, chain[0], self._role(entry), rank,
            self._manager(entry, email), _disabled(entry, self.flavor), groups,
        )  # fmt: skip

    def _role(self, entry: LdapEntry) -> str:
        if not self.attributes.role:
            return ""
        role = parse_role(entry.first(self.attributes.role))
        if role is None:
            self.notes.append(
                f"{shown_in_note(entry.dn)}: role {entry.first(self.attributes.role)!r} unknown"
            )
        return role or ""

    def _manager(self, entry: LdapEntry, email: str) -> str:
        dn = entry.first(self.attributes.manager)
        manager = self.emails.get(_normal_dn(dn), "")
        if dn and not manager:
            missing = f"manager {shown_in_note(dn)} is not among the people found"
            self.notes.append(f"{shown_in_note(entry.dn)}: {missing}")
        return manager if manager != email else ""


def _departments(entry: LdapEntry, attributes: LdapAttributes) -> list[str]:
    """The person's department and those above it, nearest first."""
    if attributes.department:
        found = entry.first(attributes.department)
        return [found] if found else []
    return [value for kind, value in _rdns(entry.dn) if kind == "ou"]


def _disabled(entry: LdapEntry, flavor: str) -> bool:
    if entry.disabled:
        return True
    if flavor != "active-directory":
        return False
    control = entry.first("userAccountControl")
    return control.isdigit() and bool(int(control) & AD_DISABLED_BIT)


def _groups(entry: LdapEntry, attributes: LdapAttributes) -> tuple[str, ...]:
    if not attributes.groups:
        return ()
    names = set()
    for dn in entry.attributes.get(attributes.groups.lower(), ()):
        rdns = _rdns(str(dn))
        if rdns:
            names.add(rdns[0][1])
    return tuple(sorted(names))


def _rdns(dn: str) -> list[tuple[str, str]]:
    from ldap3.core.exceptions import LDAPInvalidDnError
    from ldap3.utils.dn import parse_dn

    try:
        return [(kind.lower(), value) for kind, value, _ in parse_dn(dn, escape=False)]
    except LDAPInvalidDnError:
        return []


def _normal_dn(dn: str) -> str:
    return ",".join(f"{kind}={value.lower()}" for kind, value in _rdns(dn)) if dn else ""


def _address(value: str) -> str:
    email = value.lower()
    return "" if address_problem(email) else email


# ------------------------------------------------------------------------------ fetching


def fetch_entries(section: LdapSection) -> list[LdapEntry]:
    """Every person entry under the base, from the first server that answers
    (``fetch_from_any``)."""
    return fetch_from_any(section).entries


def fetch_from_any(section: LdapSection) -> Fetched:
    """The people from the configured servers in order: the next one only when one cannot
    answer (down, slow: DirectoryUnreachable); an answer that is an error (a refused bind, a
    bad filter) is the directory's answer and raised at once, as it would be from the next.
    DirectoryUnreachable naming every server when none answered."""
    down: list[ServerState] = []
    for url in section.url:
        try:
            return Fetched(fetch_entries_from(section, url), url, tuple(down))
        except DirectoryUnreachable as exc:
            if url != section.url[-1]:  # the last one's failure is the pass's error line
                log.warning("directory sync: LDAP %s cannot answer (%s); asking the next",
                            url, exc.reason)  # fmt: skip
            down.append(ServerState(url, False, exc.reason, time.time()))
    raise all_down(section, down)


def fetch_entries_from(section: LdapSection, url: str) -> list[LdapEntry]:
    """Every person entry under the base (paged) on the server at ``url``, marked disabled
    per ``disabled_filter``; DirectoryError says what failed (bind, search) and where."""
    import ldap3
    from ldap3.core.exceptions import LDAPException

    wanted = _wanted(section.attributes, section.flavor)
    try:
        # Not ``with``: ldap3's context manager leaves a connection that was bound before it
        # was entered (auto_bind) open at its end, and the socket with it.
        connection = ldap3.Connection(
            server_for(section, url), user=section.bind_dn or None,
            password=read_bind_password(section) or None,
            receive_timeout=math.ceil(section.timeout_s),  # whole seconds: a socket option
            auto_bind=True, read_only=True,
        )  # fmt: skip
        try:
            people = _search(connection, section, url, section.people_filter(), wanted)
            disabled: set[str] = set()
            if section.disabled_filter:
                matched = f"(&{section.people_filter()}{section.disabled_filter})"
                disabled = {e.dn for e in _search(connection, section, url, matched, ["1.1"])}
        finally:
            close_connection(connection)
    except LDAPException as exc:
        why = unreachable_reason(exc)
        if why is not None:  # down or slow, not misconfigured: the status page says so
            raise DirectoryUnreachable(url, why) from None
        raise DirectoryError(f"LDAP {url}: {type(exc).__name__}: {exc}") from None
    except OSError as exc:
        raise DirectoryUnreachable(url, f"{type(exc).__name__}: {exc}") from None
    return [LdapEntry(e.dn, e.attributes, e.dn in disabled) for e in people]


def close_connection(connection: Any) -> None:
    """Unbind, and close the socket even when the unbind itself fails (a dead server)."""
    from ldap3.core.exceptions import LDAPException

    try:
        connection.unbind()
    except (LDAPException, OSError):
        socket = getattr(connection, "socket", None)
        if socket is not None:
            socket.close()


def unreachable_reason(exc: BaseException) -> str | None:
    """Why ``exc`` means the server could not answer (down, slow, TLS failed); None when it
    is an answer (or our bug)."""
    from ldap3.core.exceptions import (
        LDAPCommunicationError,
        LDAPMaximumRetriesError,
        LDAPResponseTimeoutError,
        LDAPServerPoolExhaustedError,
        LDAPStartTLSError,
    )

    unreachable = (LDAPCommunicationError, LDAPMaximumRetriesError, LDAPResponseTimeoutError,
                   LDAPServerPoolExhaustedError, LDAPStartTLSError, OSError)  # fmt: skip
    if not isinstance(exc, unreachable):
        return None
    return f"{type(exc).__name__}: {exc}"[:300]


def server_for(section: LdapSection, url: str, *, timeout_s: float | None = None,
               schema: bool = True) -> Any:  # fmt: skip
    """The LDAP server at ``url``, one of ``section``'s (ldaps:// verified, see ``_tls``);
    ``timeout_s`` to connect (else ``section.timeout_s``); ``schema``: read the server's
    schema after a bind."""
    import ldap3

    info = ldap3.SCHEMA if schema else ldap3.NONE
    return ldap3.Server(url, connect_timeout=timeout_s or section.timeout_s,
                        tls=_tls(section), get_info=info)  # fmt: skip


def _tls(section: LdapSection) -> Any:
    """ldaps:// with the certificate verified (ldap3 verifies nothing by default: the bind
    password would go to whoever answers)."""
    import ldap3

    ca_file = str(section.ca_file) if section.ca_file is not None else None
    return ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=ca_file)


def _search(
    connection: Any, section: LdapSection, url: str, query: str, wanted: list[str]
) -> list[LdapEntry]:
    found: list[LdapEntry] = []
    for item in connection.extend.standard.paged_search(
        section.base_dn, query, attributes=wanted, paged_size=PAGE_SIZE, generator=True
    ):
        if item.get("type") != "searchResEntry":
            continue  # referrals: another server's entries are not ours to sync
        if len(found) >= MAX_ENTRIES:
            raise DirectoryError(f"LDAP {url}: more than {MAX_ENTRIES} entries")
        attributes = {
            str(k).lower(): [_text(v) for v in (vs if isinstance(vs, list) else [vs])]
            for k, vs in item.get("raw_attributes", {}).items()
        }
        found.append(LdapEntry(str(item["dn"]), attributes))
    return found


def _wanted(attributes: LdapAttributes, flavor: str) -> list[str]:
    names = {attributes.email, attributes.name, "cn", attributes.department, attributes.rank,
             attributes.manager, attributes.role, attributes.groups}  # fmt: skip
    if flavor == "active-directory":
        names.add("userAccountControl")
    return sorted(n for n in names if n)


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def read_bind_password(section: LdapSection) -> str:
    """The service account's password, from its file ("" without one)."""
    if section.bind_password_file is None:
        return ""
    try:
        return section.bind_password_file.read_text(encoding="utf-8").strip("\r\n")
    except OSError as exc:
        raise DirectoryError(
            f"directory.ldap.bind_password_file: {section.bind_password_file}: cannot read "
            f"({exc.strerror})"
        ) from None
