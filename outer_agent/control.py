"""Instructions from inside: the CONTROL bundles of the out link (stream ``outbound``).

The out link's reader verified every chunk under the inner agent's key before this sees a byte
(a bundle signed by any other key never gets here). ``ControlDesk.accept`` decodes the record
(``agentkit.control.decode_control``: a policy or a decision, nothing else, on this stream),
and applies it:

* ``policy``: kept and enforced if it is newer and its rules are good (``PolicyStore``);
* ``decision``: releases or drops one held mail, exactly once (``HoldStore``).

Refusals (§16.2 decoding codes, §16.5/§16.6 rules) are audited with their code; a record that
does not decode is also kept in the delivery quarantine, as a refused outbound bundle is. The
handler returns normally either way, so the bundles behind it are not held up (the reader marks
it done: a replay is a duplicate).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from agentkit.control import ControlRefused, Decision, Policy, decode_control
from agentkit.links import NO_MAIL
from outer_agent.holds import HoldStore
from outer_agent.inbound_policy import PolicyStore
from outer_agent.spool import Envelope, attempt_of
from protocol import ReceivedBundle

__all__ = ["ControlDesk"]

log = logging.getLogger(__name__)


class Audit(Protocol):
    def record(self, mail_id: str, step: str, **fields: Any) -> None: ...


class ControlDesk:
    def __init__(
        self,
        policies: PolicyStore,
        holds: HoldStore,
        audit: Audit,
        *,
        quarantine: Callable[[str, bytes, str], None],
        released: Callable[[Envelope, int], None],
    ) -> None:
        """``quarantine(name, data, reason)`` keeps a record that did not decode;
        ``released(envelope, attempt)`` queues a released mail for rendering."""
        self.policies, self.holds, self.audit = policies, holds, audit
        self.quarantine, self.released = quarantine, released

    def accept(self, bundle: ReceivedBundle) -> None:
        """The out link's handler for a CONTROL bundle (idempotent per bundle)."""
        try:
            record = decode_control(bundle.data, "outbound")
        except ControlRefused as exc:
            name = bundle.bundle_id.hex()
            reason = f"outbound_control_{exc.code}"
            self.quarantine(name, bundle.data, f"{reason}: {exc.detail}")
            self.audit.record(name, "quarantined", reason=reason, detail=exc.detail[:300])
            log.error("refused a control record (seq %d): %s", bundle.seq, exc)
            return
        if isinstance(record, Policy):
            self._policy(record, bundle)
        elif isinstance(record, Decision):
            self._decision(record, bundle)

    def _policy(self, policy: Policy, bundle: ReceivedBundle) -> None:
        outcome = self.policies.apply(policy)
        if outcome.code == "duplicate":
            return
        if outcome.refused:
            self.audit.record(
                NO_MAIL,
                "policy_refused",
                code=outcome.code,
                version=policy.version,
                held=self.policies.version,
                detail=outcome.detail,
                seq=bundle.seq,
            )
            log.error(
                "refused inbound policy version %d: %s (%s); version %d stays in force",
                policy.version,
                outcome.code,
                outcome.detail,
                self.policies.version,
            )
            return
        held = self.policies.held
        self.audit.record(
            NO_MAIL,
            "policy_applied",
            version=policy.version,
            made_ms=policy.made_ms,
            sha256=held.digest if held else "",
            rules=len(held.rules.rule) if held else 0,
            seq=bundle.seq,
        )
        log.info("inbound policy version %d in force", policy.version)

    def _decision(self, decision: Decision, bundle: ReceivedBundle) -> None:
        outcome = self.holds.decide(decision, bundle.bundle_id)
        if outcome.code == "repeat":
            return
        if outcome.refused:
            self.audit.record(
                decision.mail_id,
                "inbound_decision_refused",
                code=outcome.code,
                action=decision.action,
                decided_by=decision.decided_by,
                detail=outcome.detail,
                seq=bundle.seq,
            )
            log.warning(
                "refused a decision for %s: %s (%s)", decision.mail_id, outcome.code, outcome.detail
            )
            return
        marker = outcome.marker
        step = "inbound_released" if outcome.code == "released" else "inbound_dropped"
        self.audit.record(
            decision.mail_id,
            step,
            decided_by=decision.decided_by,
            decided_at_ms=decision.decided_at_ms,
            rule=marker.hold.rule if marker else "",
            policy_version=decision.policy_version,
            seq=bundle.seq,
        )
        if outcome.released_to is not None and marker is not None:
            self.released(marker.envelope, attempt_of(outcome.released_to.name))
