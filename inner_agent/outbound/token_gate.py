"""The one place a presented approval token is checked, and spent.

The web's link check (a token in ``?t=``) and a decision (the token in the form) both pass
``TokenGate.check``; a decision then spends it with ``TokenGate.spend``. Checks, in order:
the signature, expiry and binding to the signed-in approver and the request
(``TokenSigner.verify``: ``malformed``, ``forged``, ``expired``, ``wrong-approver``,
``wrong-request``); the request exists and the signed-in user is one of its approvers now
(``wrong-approver``: after an escalation the old approvers' tokens stop working; a delegate
or an administrator deciding in an approver's name passes that approver as ``acting_as``,
while the token stays bound to who signed in); the nonce
is not spent (``reused``). Every refusal is logged (warning) and audited as
``token_refused`` with the reason code and the first TOKEN_LOG_CHARS characters presented.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from inner_agent.outbound.approval import Request
from inner_agent.outbound.errors import TokenRefused
from inner_agent.outbound.ports import Audit
from inner_agent.outbound.state import OutboundState
from inner_agent.outbound.tokens import TokenClaims, TokenSigner

__all__ = ["Admitted", "TokenGate"]

log = logging.getLogger(__name__)

# A refused token is logged with at most this much of the presented text (never all of it).
TOKEN_LOG_CHARS = 12
# A token issued for a request close to its deadline still lives this long, so a page opened
# in the last seconds can be submitted.
MIN_TOKEN_TTL_S = 60.0


@dataclass(frozen=True)
class Admitted:
    """A token that passed every check, and the request it may act on."""

    claims: TokenClaims
    request: Request


class TokenGate:
    def __init__(
        self,
        signer: TokenSigner,
        state: OutboundState,
        audit: Audit,
        *,
        expire_after_s: float,
        clock: Callable[[], float],
    ) -> None:
        self.signer, self.state, self.audit = signer, state, audit
        self.expire_after_s, self.clock = expire_after_s, clock

    def issue(self, request: Request, approver: str) -> str:
        """A token valid until the request's deadline (at least MIN_TOKEN_TTL_S)."""
        deadline = request.since + self.expire_after_s
        ttl_s = max(deadline - self.clock(), MIN_TOKEN_TTL_S)
        return self.signer.issue(request.request_id, approver, now=self.clock(), ttl_s=ttl_s)

    def check(
        self,
        untrusted_token: str,
        request_id: str,
        request: Request | None,
        actor: str,
        *,
        acting_as: str | None = None,
    ) -> Admitted:
        """The token's claims when ``actor`` may use it on ``request`` now (in the name of
        ``acting_as``, one of its approvers, when given); else TokenRefused (logged and
        audited)."""
        try:
            claims = self.signer.verify(
                untrusted_token, now=self.clock(), approver=actor, request_id=request_id
            )
            if request is None or (acting_as or actor) not in request.approvers:
                raise TokenRefused("wrong-approver", f"{actor} is not an approver of {request_id}")
            if self.state.nonce_spent(claims.nonce):
                raise TokenRefused("reused", "token was used before")
        except TokenRefused as refused:
            self._refused(request, request_id, actor, refused, untrusted_token)
            raise
        return Admitted(claims, request)

    def spend(self, admitted: Admitted, actor: str, untrusted_token: str) -> None:
        """Mark the token used; TokenRefused ``reused`` when someone spent it a moment ago."""
        if not self.state.spend_nonce(admitted.claims.nonce):
            request = admitted.request
            raced = TokenRefused("reused", "token was used at the same moment")
            self._refused(request, request.request_id, actor, raced, untrusted_token)
            raise raced

    def _refused(
        self,
        request: Request | None,
        request_id: str,
        actor: str,
        refused: TokenRefused,
        untrusted_token: str,
    ) -> None:
        log.warning(
            "approval token refused (%s) for %s on request %s: %s",
            refused.reason,
            actor,
            request_id,
            refused,
        )
        self.audit.record(
            request.mail_id if request else "-",
            "token_refused",
            reason=refused.reason,
            actor=actor,
            request_id=request_id,
            token_prefix=untrusted_token[:TOKEN_LOG_CHARS],
        )
