"""What the directory lacks for outbound mail to have approvers, read without disturbing the
agent (read-only: ``check``, the console and the agent's start all ask, and ``check`` must
never migrate or create the agent's file). One answer for the three: ``maildiode check``
(warnings, exit 1), the agent's log at start, and the console dashboard's alarms.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agentkit.readonly import query_read_only
from inner_agent.outbound.directory_model import User, departments_without_approver
from mailsafe.policy import ScopeNames

__all__ = ["DirectoryGaps", "directory_gaps", "directory_scope_names"]


@dataclass(frozen=True)
class DirectoryGaps:
    empty: bool  # nobody enabled: every held mail waits for nobody
    without_approver: tuple[str, ...]  # departments whose people have nobody to approve

    def __bool__(self) -> bool:
        return self.empty or bool(self.without_approver)


def directory_gaps(db: Path, *, fallback_approver: str | None) -> DirectoryGaps:
    """The gaps of the directory at ``db``; with a fallback approver, only an empty one (the
    fallback is asked for every department with nobody). A file from before the schema's
    version 1 has neither managers nor disabled people, and reads as such."""
    columns = {row[1] for row in query_read_only(db, "PRAGMA table_info(users)")}
    newer = "manager, disabled" if "disabled" in columns else "'', 0"
    rows = query_read_only(db, f"SELECT email, department, role, {newer} FROM users")  # noqa: S608
    users = [User(email, "", dept, role, manager=manager, disabled=bool(disabled))
             for email, dept, role, manager, disabled in rows]  # fmt: skip
    if not any(not u.disabled for u in users):
        return DirectoryGaps(True, ())
    if fallback_approver is not None:
        return DirectoryGaps(False, ())
    parents = dict(query_read_only(db, "SELECT name, parent FROM departments"))
    return DirectoryGaps(False, tuple(departments_without_approver(users, parents)))


def directory_scope_names(db: Path) -> ScopeNames | None:
    """The departments, groups and job ranks the directory at ``db`` knows (a rule's scope may
    name them); None when it has nobody (the empty directory is warned about on its own). A
    file from before the schema's version 1 has neither groups nor ranks."""
    columns = {row[1] for row in query_read_only(db, "PRAGMA table_info(users)")}
    rank = "rank" if "rank" in columns else "''"
    people = query_read_only(db, f"SELECT department, {rank} FROM users")  # noqa: S608
    if not people:
        return None
    departments = {name for (name,) in query_read_only(db, "SELECT name FROM departments")}
    groups = {name for (name,) in query_read_only(db, "SELECT DISTINCT grp FROM user_groups")}
    return ScopeNames(frozenset(departments | {str(d) for d, _ in people}), frozenset(groups),
                      frozenset(str(r) for _, r in people if r))  # fmt: skip
