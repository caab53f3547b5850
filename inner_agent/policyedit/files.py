"""Where the rules live and how a change reaches them: ``RulesFile`` reads a direction's file
and saves a new text with the project's one durable write (temp, fsync, rename, fsync the
folder), after checking that nobody changed it since the page showed it and that the agents'
parser accepts the text; each save is a version and an audit event (``policy_changed``: who,
what, the diff), then ``on_saved`` wakes the agent, which reads the file again
(``inner_agent.outbound.rulesource``; the inbound file goes out as the signed policy record).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from inner_agent.policyedit.edits import Document, check_text, checked_text, parse_document
from inner_agent.policyedit.errors import NoRulesFile, StaleEdit
from inner_agent.policyedit.ruleform import Direction
from inner_agent.policyedit.versions import Version, VersionStore, text_diff
from mailsafe.inbound_rules import DEFAULT_INBOUND_RULES_TOML, Membership
from mailsafe.policy import MAX_RULES_FILE_BYTES, ScopeNames, SenderInfo
from protocol.durable import write_durably

__all__ = [
    "MAX_AUDITED_DIFF_CHARS",
    "SCOPE_KINDS",
    "FoundNames",
    "Person",
    "PolicyFiles",
    "PolicySite",
    "RulesFile",
    "Saved",
    "find_nothing",
    "find_scope_names",
    "membership_of",
    "policy_files",
    "scope_names_of",
    "sender_of",
]

log = logging.getLogger(__name__)

# The diff kept in the audit event: a rule or two; the version history keeps every text whole.
MAX_AUDITED_DIFF_CHARS: Final = 8000
NO_MAIL: Final = "-"
# The kinds of names a scope lists and the directory knows (a person by address).
SCOPE_KINDS: Final = ("departments", "groups", "ranks", "users")
# A person as the directory answers a search: address, name, department, disabled.
PersonLine = tuple[str, str, str, bool]


class Audit(Protocol):
    def record(self, mail_id: str, step: str, **fields: Any) -> None: ...


@dataclass(frozen=True)
class Saved:
    version: Version
    diff: str


# Shown on the editor's pages (Korean first: the console's language; the key as it is written).
_NO_OUTBOUND_FILE: Final = (
    "보내는 메일의 규칙 파일이 설정되어 있지 않아 기본 규칙이 적용됩니다. 편집하려면 inner.toml의 "
    "[outbound] rules_file에 파일 경로를 적고 에이전트를 다시 시작하십시오. "
    "([outbound] rules_file is not set: the built-in rules apply)"
)
_NO_FILE_TO_SAVE: Final = (
    "규칙 파일이 설정되어 있지 않아 저장할 곳이 없습니다 (inner.toml의 [{direction}] rules_file). "
    "([{direction}] rules_file is not set: nothing to save to)"
)


class RulesFile:
    def __init__(self, direction: Direction, path: Path | None, versions: VersionStore,
                 audit: Audit, *, on_saved: Callable[[], None] = lambda: None,
                 clock: Callable[[], float] = time.time,
                 fence: Callable[[], None] = lambda: None) -> None:  # fmt: skip
        """``fence``: raises (agentkit.leasekeeper.FenceClosed) once the agent no longer holds
        its state's lease; checked before anything is written (D80)."""
        self.direction, self.path, self.versions = direction, path, versions
        self.audit, self.on_saved, self.clock, self.fence = audit, on_saved, clock, fence
        self._lock = threading.Lock()  # one save at a time in this process

    @property
    def name(self) -> str:
        return self.path.name if self.path is not None else f"{self.direction} rules"

    def text(self) -> str:
        """The file as the agents read it now (the built-in inbound rules without a file)."""
        if self.path is None:
            if self.direction == "inbound":
                return DEFAULT_INBOUND_RULES_TOML
            raise NoRulesFile(_NO_OUTBOUND_FILE)
        if self.path.stat().st_size > MAX_RULES_FILE_BYTES:
            raise StaleEdit(f"{self.name}: larger than {MAX_RULES_FILE_BYTES} bytes")
        return self.path.read_text(encoding="utf-8")

    def document(self) -> tuple[Document, str]:
        """The file read as a document, and the digest a save must be based on."""
        text = self.text()
        return parse_document(text, self.name), digest(text)

    def save(self, document: Document, who: str, what: str, based_on: str) -> Saved:
        """Write ``document``; StaleEdit when the file is no longer what ``based_on`` names,
        RulesRefused when the agents' parser refuses it."""
        if self.path is None:
            raise NoRulesFile(_NO_FILE_TO_SAVE.format(direction=self.direction))
        text = checked_text(self.direction, document, self.name)
        return self.write(text, who, what, based_on)

    def restore(self, text: str, who: str, what: str, based_on: str) -> Saved:
        """Write ``text`` as it is (a version, comments and all) once the agents' parser
        accepts it."""
        check_text(self.direction, text, self.name)
        return self.write(text, who, what, based_on)

    def write(self, text: str, who: str, what: str, based_on: str) -> Saved:
        if self.path is None:
            raise NoRulesFile(_NO_FILE_TO_SAVE.format(direction=self.direction))
        with self._lock:
            self.fence()  # a standby's page (or a frozen holder's) changes no rules
            before = self.text()
            if digest(before) != based_on:
                raise StaleEdit(f"{self.name} changed since the page was shown; "
                                "open it again and repeat the change")  # fmt: skip
            now_ms = int(self.clock() * 1000)
            latest = self.versions.latest()
            if latest is None or latest.text != before:  # edited outside: keep that text too
                self.versions.add(before, "file", "파일에 있던 내용", now_ms)
            mode = self.path.stat().st_mode & 0o777  # the agents read it as before
            write_durably(self.path, text.encode("utf-8"), mode=mode)
            version = self.versions.add(text, who, what, now_ms)
        diff = text_diff(before, text, f"{self.name} (before)", f"{self.name} (v{version.number})")
        self.audit.record(NO_MAIL, "policy_changed", direction=self.direction, file=self.name,
                          account=who, what=what, version=version.number,
                          diff=diff[:MAX_AUDITED_DIFF_CHARS])  # fmt: skip
        log.info("%s: version %d saved by %s (%s)", self.name, version.number, who, what)
        self.on_saved()
        return Saved(version, diff)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class PolicyFiles:
    """Where each direction's rules live, and the versions folder (``state.dir/policy``)."""

    outbound: Path | None
    inbound: Path | None
    versions_dir: Path
    inbound_configured: bool = False  # [inbound] is set: the receive filters run

    def open(self, audit: Audit, on_saved: Callable[[], None], *,
             fence: Callable[[], None] = lambda: None) -> dict[Direction, RulesFile]:  # fmt: skip
        """Each direction's file; every save behind ``fence`` (the lease's, D80)."""
        versions = VersionStore(self.versions_dir / "outbound")
        outbound = RulesFile("outbound", self.outbound, versions, audit, on_saved=on_saved,
                             fence=fence)  # fmt: skip
        files: dict[Direction, RulesFile] = {"outbound": outbound}
        if self.inbound_configured:
            files["inbound"] = RulesFile("inbound", self.inbound,
                                         VersionStore(self.versions_dir / "inbound"), audit,
                                         on_saved=on_saved, fence=fence)  # fmt: skip
        return files


def policy_files(config: Any) -> PolicyFiles | None:
    """From an ``InnerConfig`` (or a test's namespace): None without ``[outbound]``."""
    outbound = getattr(config, "outbound", None)
    if outbound is None:
        return None
    inbound = getattr(config, "inbound", None)
    state_dir = getattr(getattr(config, "state", None), "dir", None) or outbound.spool_dir
    return PolicyFiles(outbound.rules_file, getattr(inbound, "rules_file", None),
                       Path(state_dir) / "policy-versions", inbound is not None)  # fmt: skip


class Members(Protocol):
    """The directory: who is where (``inner_agent.outbound.directory.Directory``)."""

    def users(self) -> Iterable[Any]: ...  # each with .email and .department


def membership_of(directory: Members, document: Mapping[str, Any]) -> Membership:
    """Who is in every department of the directory and every group of ``document`` (a member
    without "@" is a department), for trying an inbound rule with a department or group scope.
    The hook for scopes the directory will add (its groups, ranks): resolve them here."""
    by_department: dict[str, set[str]] = {}
    for user in directory.users():
        by_department.setdefault(user.department, set()).add(user.email.lower())
    groups: dict[str, frozenset[str]] = {}
    found = document.get("groups", {})
    for name, members in found.items() if isinstance(found, Mapping) else []:
        addresses: set[str] = set()
        for member in members if isinstance(members, list) else []:
            text = str(member).strip().lower()
            addresses |= {text} if "@" in text else by_department.get(str(member), set())
        groups[str(name)] = frozenset(addresses)
    departments = {name: frozenset(found) for name, found in by_department.items()}
    return Membership(departments, groups)


class Names(Protocol):
    """The directory's names a rule's scope may use, each found by a query (``Directory``):
    the editor reads no list of the people for a form or a save."""

    def has_people(self) -> bool: ...

    def department_names(self) -> frozenset[str]: ...

    def groups(self) -> Iterable[str]: ...

    def ranks(self) -> Iterable[str]: ...

    def find_names(self, kind: Any, text: str, limit: int) -> tuple[list[str], int]: ...

    def find_people(self, text: str, limit: int) -> tuple[list[PersonLine], int]: ...

    def people_at(self, addresses: Iterable[str]) -> dict[str, PersonLine]: ...


class People(Protocol):
    """A sender as the directory describes them (``Directory``)."""

    def user(self, email: str) -> Any: ...  # None, or with .department, .groups, .rank

    def departments_above(self, name: str) -> tuple[str, ...]: ...


def sender_of(directory: People, address: str, department: str | None) -> SenderInfo:
    """A tried mail's sender as the agent would see them: their department (or the one the
    form names), the departments above it, their groups and job rank."""
    user = directory.user(address) if address else None
    if user is None:
        return SenderInfo(address, department)
    department = department or user.department
    return SenderInfo(address, department, directory.departments_above(department),
                      tuple(user.groups), user.rank)  # fmt: skip


def scope_names_of(directory: Names) -> ScopeNames | None:
    """The departments, groups and job ranks of the directory, which the editor checks an
    outbound rule's scope against as ``maildiode check`` does; None when the directory has
    nobody (nothing to check against yet). A few hundred names, by query: not the people."""
    if not directory.has_people():
        return None
    return ScopeNames(directory.department_names(), frozenset(directory.groups()),
                      frozenset(directory.ranks()))  # fmt: skip


def find_scope_names(directory: Names, kind: str, text: str, limit: int) -> FoundNames:
    """The first ``limit`` names of a scope's ``kind`` (departments, groups, ranks, users)
    containing ``text``, and how many there are; nothing for a kind the scopes lack. People
    come with their name and department (an address alone does not say who it is)."""
    if kind not in SCOPE_KINDS:
        return FoundNames(kind, text, (), 0)
    if kind == "users":
        people, total = directory.find_people(text.strip(), limit)
        found = tuple(Person(*line) for line in people)
        return FoundNames(kind, text, tuple(p.email for p in found), total, found)
    names, total = directory.find_names(kind, text.strip(), limit)
    return FoundNames(kind, text, tuple(names), total)


@dataclass(frozen=True)
class Person:
    """A person as the editor shows them: address, name, department, disabled."""

    email: str
    name: str
    department: str
    disabled: bool = False


@dataclass(frozen=True)
class FoundNames:
    """What a search of the directory's names found: the names shown, how many matched
    (``people``: for a search of people, each name's person, in the same order)."""

    kind: str
    text: str
    names: tuple[str, ...]
    total: int
    people: tuple[Person, ...] = ()

    @property
    def more(self) -> int:
        return self.total - len(self.names)


def find_nothing(kind: str, text: str, limit: int) -> FoundNames:
    return FoundNames(kind, text, (), 0)


@dataclass(frozen=True)
class PolicySite:
    """What the web listener needs for the editor: the files, how to wake the agent after a
    save, who is in each department and group, which names the directory knows."""

    files: PolicyFiles
    on_saved: Callable[[], None]
    membership: Callable[[Mapping[str, Any]], Membership]
    scope_names: Callable[[], ScopeNames | None] = lambda: None
    sender: Callable[[str, str | None], SenderInfo] = SenderInfo
    # The directory's names of a kind containing a text, at most so many (the form's search).
    find_names: Callable[[str, str, int], FoundNames] = find_nothing
    # The directory's people of some addresses, by lower-case address (a scope's list checked).
    people_at: Callable[[Sequence[str]], Mapping[str, PersonLine]] = lambda _: {}
