"""Who decides on a held inbound mail (issue 17.1: "the recipient's department head, or a
security officer per rule").

``department_head``: for each recipient, the head and the delegate of their department (not the
recipient themselves: a head's own mail goes to the delegate), else the nearest department
above that has one; ``security_officer``: the directory's security officers. Then
``[outbound.approval] fallback_approver``; with nobody at all the mail waits for an
administrator's command (and expires at the outer agent if nobody acts). Any one of them
decides for the held mail (one decision per mail, the first stands).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

__all__ = ["approvers_for"]


class Directory(Protocol):
    def user(self, email: str) -> object | None: ...  # with .department

    def approvers_of(self, department: str, *, exclude: str = "") -> tuple[str, ...]: ...

    def approvers_above(self, department: str, *, exclude: str = "") -> tuple[str, ...]: ...

    def security_officers(self) -> tuple[str, ...]: ...


def approvers_for(
    directory: Directory, recipients: Sequence[str], kind: str, fallback: str | None
) -> tuple[str, ...]:
    found: list[str] = []
    if kind == "security_officer":
        found += directory.security_officers()
    else:
        for recipient in recipients:
            user = directory.user(recipient)
            department = getattr(user, "department", None)
            if not department:
                continue
            exclude = recipient.lower()
            found += directory.approvers_of(
                department, exclude=exclude
            ) or directory.approvers_above(department, exclude=exclude)
    if not found and fallback:
        found.append(fallback)
    return tuple(dict.fromkeys(a.lower() for a in found))
