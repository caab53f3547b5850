"""Which mails each console role reads: the scope is part of the query, so totals and pages
agree, and "nothing visible" is not mistaken for "any outcome"."""

from __future__ import annotations

from agentkit.mailindex import OUTCOMES, MailQuery
from agentkit.mailindex.fold import IN_PROGRESS, OUTCOME_TABLE
from inner_agent.console.scope import SECURITY_OUTCOMES, allowed_outcomes, may_see, scoped
from inner_agent.console.views import IN_OUTCOMES, OUT_OUTCOMES
from inner_agent.web.roles import DIRECTORY_ROLES, Role


def test_admins_and_auditors_see_every_mail_unchanged():
    query = MailQuery(direction="in", q="견적")
    for role in (Role.ADMIN, Role.AUDITOR):
        assert scoped(query, {role}) is query
        assert all(may_see({role}, o) for o in OUTCOMES)


def test_a_security_officer_reads_held_blocked_and_quarantined_mail_only():
    narrowed = scoped(MailQuery(), {Role.SECURITY})
    assert narrowed is not None
    assert set(narrowed.outcomes) == SECURITY_OUTCOMES
    assert not may_see({Role.SECURITY}, "delivered")
    assert not may_see({Role.SECURITY}, "sent")
    assert may_see({Role.SECURITY}, "held")
    asked = scoped(MailQuery(outcomes=("delivered", "blocked")), {Role.SECURITY})
    assert asked is not None
    assert asked.outcomes == ("blocked",)


def test_asking_only_for_what_the_role_may_not_see_finds_nothing_not_everything():
    assert scoped(MailQuery(outcomes=("delivered",)), {Role.SECURITY}) is None


def test_approvers_and_employees_read_no_console_mail():
    assert allowed_outcomes(DIRECTORY_ROLES) == frozenset()
    assert scoped(MailQuery(), DIRECTORY_ROLES) is None


def test_the_dashboard_has_a_row_for_every_outcome_the_index_gives_each_direction() -> None:
    for direction, rows in (("in", IN_OUTCOMES), ("out", OUT_OUTCOMES)):
        produced = {o for d, _, o in OUTCOME_TABLE if d == direction} | {IN_PROGRESS}
        assert produced <= set(rows), (direction, produced - set(rows))
