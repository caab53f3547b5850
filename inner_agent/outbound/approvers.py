"""Who is asked to approve a held mail, from the directory: the head and the delegate of the
sender's department (a head sending is approved by the delegate); with neither, the nearest
department above that has one; then ``fallback_approver``; with nobody, nobody (the mail is
rejected). On a timeout with ``on_expiry = "escalate"``, the approvers one level further up."""

from __future__ import annotations

from inner_agent.outbound.approval import Request
from inner_agent.outbound.directory import Directory

__all__ = ["Approvers"]


class Approvers:
    def __init__(self, directory: Directory, fallback: str | None) -> None:
        self.directory, self.fallback = directory, fallback

    def first(self, sender: str) -> tuple[str, ...]:
        """The approvers to ask first about ``sender``'s mail (lower-case), or none."""
        user = self.directory.user(sender) if sender else None
        found: tuple[str, ...] = ()
        if user is not None:
            found = self.directory.approvers_of(user.department, exclude=sender)
            found = found or self.directory.approvers_above(user.department, exclude=sender)
        fallback = self.fallback
        return found or ((fallback,) if fallback and fallback != sender.lower() else ())

    def above(self, request: Request, sender: str) -> tuple[str, ...]:
        """The approvers of the department ``escalations + 1`` levels above the sender's
        (the nearest above that with someone other than the current approvers), or none."""
        user = self.directory.user(sender) if sender else None
        current: str | None = user.department if user else None
        for _ in range(request.escalations + 1):
            dept = self.directory.department(current) if current else None
            current = dept.parent if dept else None
        while current is not None:
            found = self.directory.approvers_of(current, exclude=sender)
            if found and set(found) != set(request.approvers):
                return found
            dept = self.directory.department(current)
            current = dept.parent if dept else None
        return ()
