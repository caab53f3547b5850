"""The directory's values, free of I/O: people, departments (a tree), groups, and what changes
between two snapshots of them (the import's and the sync's preview and report).

A person has one directory role (stored in English, read in Korean or English by the import):

============================  ==========================  ===================================
stored                        Korean names                meaning
============================  ==========================  ===================================
``""``                        (empty), 직원, 구성원       a member
``head``                      부서장, 승인자 (approver)    approves the department's mail
``delegate``                  대결자                      approves beside the head
``security-officer``          보안담당자, 보안 담당자      approves sender mismatches
``administrator``             관리자 (admin)              named in the directory only: console
                                                          roles still come from ``maildiode
                                                          account`` (docs/decisions.md)
============================  ==========================  ===================================

A person may also have a **manager** (an address; LDAP's ``manager`` attribute, the CSV's
``manager`` column): the manager approves that person's mail before the department's head.
A **disabled** person stays in the directory (their past mail keeps its owner) but cannot
sign in, approve, or be asked to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "ADMINISTRATOR",
    "APPROVING_ROLES",
    "ROLES",
    "SECURITY_OFFICER",
    "Changes",
    "Department",
    "Snapshot",
    "User",
    "departments_without_approver",
    "diff_people",
]

SECURITY_OFFICER = "security-officer"
ADMINISTRATOR = "administrator"
ROLES = ("", "head", "delegate", SECURITY_OFFICER, ADMINISTRATOR)
APPROVING_ROLES = ("head", "delegate")


@dataclass(frozen=True)
class User:
    email: str
    name: str
    department: str
    role: str  # one of ROLES
    rank: str = ""  # 직급, as HR writes it
    manager: str = ""  # the manager's address (lower-case), or ""
    disabled: bool = False
    groups: tuple[str, ...] = ()  # sorted


@dataclass(frozen=True)
class Department:
    name: str
    parent: str | None


@dataclass(frozen=True)
class Snapshot:
    """A whole directory: what an import or a sync would make it."""

    users: tuple[User, ...]
    departments: tuple[Department, ...]


@dataclass
class Changes:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    # per changed key: what changed ("department 보안팀 → 영업부; rank 대리 → 과장")
    details: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    def summary(self, noun: str) -> str:
        counts = (len(self.added), len(self.changed), len(self.removed))
        return f"{noun}: %d added, %d changed, %d removed" % counts

    def lines(self) -> list[str]:
        """One line per key: ``+ key``, ``~ key: what changed``, ``- key``."""
        found = [f"+ {key}" for key in self.added]
        found += [f"~ {key}: {self.details[key]}" if self.details.get(key) else f"~ {key}"
                  for key in self.changed]  # fmt: skip
        return found + [f"- {key}" for key in self.removed]


def diff_people(old: Mapping[str, User], new: Mapping[str, User]) -> Changes:
    changes = diff(old, new)
    changes.details = {key: _what_changed(old[key], new[key]) for key in changes.changed}
    return changes


def diff(old: Mapping[str, object], new: Mapping[str, object]) -> Changes:
    return Changes(
        added=sorted(k for k in new if k not in old),
        changed=sorted(k for k in new if k in old and old[k] != new[k]),
        removed=sorted(k for k in old if k not in new),
    )


_COMPARED = ("name", "department", "role", "rank", "manager", "disabled", "groups")


def _what_changed(old: User, new: User) -> str:
    parts = []
    for name in _COMPARED:
        before, after = getattr(old, name), getattr(new, name)
        if before != after:
            parts.append(f"{name} {_shown(before)} → {_shown(after)}")
    return "; ".join(parts)


def _shown(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(value) or "-"
    return str(value) if value not in ("", None) else "-"


def departments_without_approver(
    users: Iterable[User], parents: Mapping[str, str | None]
) -> list[str]:
    """Departments some enabled person of which has nobody to approve their mail: no enabled
    manager, and no enabled head or delegate in the department or any above it."""
    people = [u for u in users if not u.disabled]
    enabled = {u.email for u in people}
    with_approver = {u.department for u in people if u.role in APPROVING_ROLES}
    lacking: set[str] = set()
    for user in people:
        if user.manager in enabled and user.manager != user.email:
            continue
        current: str | None = user.department
        seen: set[str] = set()
        while current is not None and current not in seen and current not in with_approver:
            seen.add(current)
            current = parents.get(current)
        if current is None or current in seen:
            lacking.add(user.department)
    return sorted(lacking)
