"""Who is asked to approve a held mail, from the directory.

When the envelope sender and ``From:`` are the same person (``senders.check_sender``): the
sender's manager when the directory names an enabled one (LDAP's ``manager`` attribute, the
export's ``manager`` column); else the head and the delegate of the sender's department (a
head sending is approved by the delegate); with neither, the nearest department above that
has one; then
``fallback_approver``; with nobody, nobody (the mail is rejected). On a timeout with
``on_expiry = "escalate"``, the approvers one level further up.

When they disagree: the security officers (directory role ``security-officer``), then
``fallback_approver``; such a request does not escalate into the departments (it expires).

Nobody the mail shows as its sender (envelope, ``From:``, an address in a ``From:`` display
name) is ever asked, on any of these paths.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from inner_agent.outbound.approval import Request
from inner_agent.outbound.directory import Directory
from inner_agent.outbound.senders import SenderCheck, comparable, stored_check, stored_sender
from inner_agent.outbound.state import MailRow

__all__ = ["Approvers", "Route"]


@dataclass(frozen=True)
class Route:
    approvers: tuple[str, ...]  # lower-case; empty: nobody can approve
    note: str = ""  # why not the department: the sender check's mismatch


class Approvers:
    def __init__(self, directory: Directory, fallback: str | None) -> None:
        self.directory, self.fallback = directory, fallback

    def route(self, check: SenderCheck) -> Route:
        """Whom to ask first about a mail whose sender was checked as ``check``."""
        if check.mismatch:
            officers = self._not_shown(self.directory.security_officers(), check.shown)
            return Route(officers or self._fallback(check.shown), check.mismatch)
        user = check.user
        found: tuple[str, ...] = ()
        if user is not None:
            found = self._manager(user.email, check.shown)
            found = found or self._not_shown(
                self.directory.approvers_of(user.department), check.shown
            )
            found = found or self._nearest_above(user.department, check.shown)
        return Route(found or self._fallback(check.shown))

    def above(self, request: Request, mail: MailRow) -> tuple[str, ...]:
        """The approvers of the department ``escalations + 1`` levels above the sender's
        (the nearest above that with someone other than the current approvers), or none.
        None for a mail held for a security officer: it does not climb the departments."""
        shown, mismatch = stored_check(mail.decision, mail.mail_from)
        sender = stored_sender(mail.decision, mail.mail_from)
        user = self.directory.user(sender) if sender else None
        current: str | None = user.department if user and not mismatch else None
        for _ in range(request.escalations + 1):
            dept = self.directory.department(current) if current else None
            current = dept.parent if dept else None
        while current is not None:
            found = self._not_shown(self.directory.approvers_of(current), shown)
            if found and set(found) != set(request.approvers):
                return found
            dept = self.directory.department(current)
            current = dept.parent if dept else None
        return ()

    def _manager(self, email: str, shown: Collection[str]) -> tuple[str, ...]:
        manager = self.directory.manager_of(email)
        return self._not_shown((manager,), shown) if manager else ()

    def _nearest_above(self, department: str, shown: Collection[str]) -> tuple[str, ...]:
        seen = {department}
        current = self.directory.department(department)
        while current is not None and current.parent is not None and current.parent not in seen:
            seen.add(current.parent)
            found = self._not_shown(self.directory.approvers_of(current.parent), shown)
            if found:
                return found
            current = self.directory.department(current.parent)
        return ()

    def _fallback(self, shown: Collection[str]) -> tuple[str, ...]:
        return self._not_shown((self.fallback,) if self.fallback else (), shown)

    @staticmethod
    def _not_shown(candidates: tuple[str, ...], shown: Collection[str]) -> tuple[str, ...]:
        return tuple(c for c in candidates if comparable(c) not in shown)
