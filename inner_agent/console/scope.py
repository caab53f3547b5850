"""Which mails each console role may see, and what of them. Pure.

- ``admin`` and ``auditor``: every mail, both directions, with findings and pictures;
- ``security``: the mail the bridge stopped or held, or whose personal data a rule saw —
  outbound mail held (and what became of it: approved, rejected, expired), blocked or
  monitored, and mail quarantined or refused in either direction — with its findings and
  pictures; never ordinary delivered or sent mail;
- ``approver``, ``employee``: no console mail (the approval pages show an approver the
  requests addressed to them).

A mail outside the role's scope is answered like a mail that does not exist (404), so ids
cannot be probed. The scope is applied to the query itself (``scoped``), never by filtering
a page afterwards, so totals and pages agree. Console roles are site-wide: no department
limits them (docs/decisions.md, "The console's pages: scope by outcome, not by department").
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from agentkit.mailindex import OUTCOMES, MailQuery
from inner_agent.web.roles import Role

__all__ = [
    "EVERY_MAIL",
    "MAIL_ROLES",
    "PICTURE_ROLES",
    "SECURITY_OUTCOMES",
    "allowed_outcomes",
    "may_see",
    "scoped",
]

# What a security officer reads: held, blocked and personal-data mail, and quarantines.
SECURITY_OUTCOMES = frozenset({
    "held", "approved", "rejected", "expired", "withdrawn", "blocked", "monitored", "quarantined",
    "refused",
})  # fmt: skip
EVERY_MAIL = frozenset(OUTCOMES)
MAIL_ROLES = (Role.ADMIN, Role.AUDITOR, Role.SECURITY)
# Who may open a mail's masked picture (each view an access record): the roles that read
# mail. Auditors too: the auditor "sees everything", and the review lists each view.
PICTURE_ROLES = MAIL_ROLES


def allowed_outcomes(roles: Collection[Role]) -> frozenset[str]:
    """The outcomes of the mails ``roles`` may see (empty: none)."""
    if Role.ADMIN in roles or Role.AUDITOR in roles:
        return EVERY_MAIL
    if Role.SECURITY in roles:
        return SECURITY_OUTCOMES
    return frozenset()


def may_see(roles: Collection[Role], outcome: str) -> bool:
    return outcome in allowed_outcomes(roles)


def scoped(query: MailQuery, roles: Collection[Role]) -> MailQuery | None:
    """``query`` narrowed to what ``roles`` may see; None when nothing it asks is visible
    (an empty outcome list means "any outcome", so it cannot stand for "none")."""
    allowed = allowed_outcomes(roles)
    if allowed == EVERY_MAIL:
        return query
    asked = set(query.outcomes) if query.outcomes else set(EVERY_MAIL)
    kept = tuple(o for o in OUTCOMES if o in asked and o in allowed)
    return replace(query, outcomes=kept) if kept else None
