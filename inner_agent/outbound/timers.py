"""What the clock does to pending approval requests: one reminder, then on the deadline an
escalation to the department above (``on_expiry = "escalate"``) or expiry. Also forgets the
nonces of tokens that have expired anyway."""

from __future__ import annotations

from collections.abc import Callable

from inner_agent.outbound.approval import Event, Request, State, Timing, apply, due_event
from inner_agent.outbound.approvers import Approvers
from inner_agent.outbound.effects import Effects
from inner_agent.outbound.lifecycle import Escalated, Expired, Reminded
from inner_agent.outbound.state import OutboundState

__all__ = ["Timers"]

# Spent nonces are kept a day longer than any token can live (clock steps, slow requests).
NONCE_KEEP_MARGIN_S = 86400.0


class Timers:
    def __init__(
        self,
        state: OutboundState,
        approvers: Approvers,
        effects: Effects,
        timing: Timing,
        clock: Callable[[], float],
    ) -> None:
        self.state, self.approvers, self.effects = state, approvers, effects
        self.timing, self.clock = timing, clock

    def tick(self) -> int:
        """Reminders, escalations and expiries that are due now; returns how many."""
        # A token lives at most expire_after_s; its nonce is not needed after that.
        self.state.prune(self.clock() - self.timing.expire_after_s - NONCE_KEEP_MARGIN_S)
        acted = 0
        for request in self.state.pending_requests():
            event = due_event(request, self.timing, self.clock())
            if event is Event.REMIND:
                acted += self._remind(request)
            elif event is Event.TIMEOUT:
                acted += self._timeout(request)
        return acted

    def _remind(self, request: Request) -> int:
        updated = apply(request, Event.REMIND, now=self.clock())
        if not self.state.save_request(updated, expect=request):
            return 0  # decided at the same moment
        self.effects.advance(request.mail_id, Reminded(updated))
        return 1

    def _timeout(self, request: Request) -> int:
        above: tuple[str, ...] = ()
        mail = self.state.mail(request.mail_id)
        if self.timing.on_expiry == "escalate" and mail is not None:
            above = self.approvers.above(request, mail)
        updated = apply(request, Event.TIMEOUT, now=self.clock(), escalate_to=above)
        if not self.state.save_request(updated, expect=request):
            return 0
        escalated = updated.state is State.ESCALATED
        self.effects.advance(request.mail_id, Escalated(updated) if escalated else Expired(updated))
        return 1
