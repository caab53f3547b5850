"""The receive filters in the outer agent's pipeline: what a render thread makes of one mail
when an inbound policy is in force (docs/outer-agent.md, "Receive filters").

The mail is read only in a render worker (``RenderPool.filter``: parse, read what the rules
need, decide per recipient, render each part). Here, in the agent, the decisions become
effects, per part (``outer_agent.verdicts``):

* allow / monitor: the part's package, marked (``InboundMark``), to the link;
* block: nothing of the mail; a short notice package for the recipients unless the rule is
  silent (the SMTP answer was 250 already: the sender learns nothing);
* hold: the mail kept in ``held/`` (``outer_agent.holds``), then the masked preview to the
  link, marked ``hold``, for the inner agent to show the approvers.

A released part comes back through the spool (``held`` records in ``received/``) and is rendered
with the mask its verdict chose, marked ``released``, never filtered again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final, Literal, Protocol

from mailsafe.inbound_filter import PREVIEW_MASK, FilterJob, FilterResult, fallback_groups
from mailsafe.inbound_rules import InboundDecision
from mailsafe.payload import PACKAGE_VERSION, HeaderBlock, InboundMark, Manifest, RenderedMail
from mailsafe.pii import detect, mask_text
from outer_agent.authres import AuthVerdict
from outer_agent.holds import HoldInfo, HoldStore, Marker
from outer_agent.inbound_policy import HeldPolicy, PolicyStore
from outer_agent.spool import Envelope
from outer_agent.verdicts import Part, Verdict, VerdictStore, derived_bundle_id

__all__ = ["FilterPackager", "Filtering", "Outgoing", "Plan", "notice_package"]

log = logging.getLogger(__name__)

# Worker failures read as the rules' "unreadable" reasons (mailsafe.policy ReasonCode).
_TIMEOUTS: Final = frozenset({"timeout", "cpu_limit"})
Event = tuple[str, str, dict[str, Any]]


@dataclass(frozen=True)
class Outgoing:
    """One bundle for the link: a part's package or a notice, under its own bundle id."""

    mail_id: str
    bundle_id: bytes
    package: bytes


@dataclass
class Plan:
    """What one claimed mail becomes: bundles for the link, audit events to record first, or a
    quarantine (``render.on_failure``)."""

    outgoing: list[Outgoing] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    quarantine: str | None = None


@dataclass(frozen=True)
class _PartWork:
    """One part on its way to its effects."""

    verdict: Verdict
    part: Part
    envelope: Envelope  # the mail's, with the part's id, bundle id and recipients
    rendered: RenderedMail
    auth: AuthVerdict


class FilterPackager(Protocol):
    def filter(self, raw: bytes, job: FilterJob) -> tuple[FilterResult | None, str]: ...

    def render_masked(self, raw: bytes, mask: Sequence[str]) -> RenderedMail: ...

    def headers_only(self, raw: bytes, reason: str) -> RenderedMail: ...

    def finish(
        self, rendered: RenderedMail, envelope: Envelope, auth: AuthVerdict, mark: InboundMark
    ) -> bytes: ...


class Filtering:
    def __init__(
        self,
        policies: PolicyStore,
        holds: HoldStore,
        verdicts: VerdictStore,
        packager: FilterPackager,
        *,
        knows: Callable[[bytes], bool],
        hold_expiry_s: float,
        quarantine_failures: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.policies, self.holds, self.verdicts = policies, holds, verdicts
        self.packager, self.knows = packager, knows
        self.hold_expiry_s = hold_expiry_s
        self.quarantine_failures = quarantine_failures
        self.clock = clock

    @property
    def active(self) -> bool:
        return self.policies.held is not None

    # ----------------------------------------------------------------------------- new mail

    def plan(
        self, envelope: Envelope, raw: bytes, auth: AuthVerdict, *, attempt: int, crashed: bool
    ) -> Plan:
        """Decide (or take the verdict stored before a crash) and make every part's bundle.
        ``crashed``: this mail was cut short by crashes too often to be read again."""
        policy = self.policies.held
        if policy is None:
            raise RuntimeError("Filtering.plan without a policy in force")
        verdict = self.verdicts.load(envelope.mail_id)
        packages: dict[int, RenderedMail] = {}
        if verdict is None:
            verdict, packages = self._decide(policy, envelope, raw, attempt, crashed)
            if not verdict.trivial:
                self.verdicts.save(envelope.mail_id, verdict)
        for part in verdict.parts:
            if part.index not in packages:
                packages[part.index] = self._package_again(raw, part.decision)
        return self._effects(verdict, packages, envelope, raw, auth)

    def done(self, mail_id: str) -> None:
        """The mail's spool copy is gone: its verdict is no longer needed."""
        self.verdicts.remove(mail_id)

    def _decide(
        self, policy: HeldPolicy, envelope: Envelope, raw: bytes, attempt: int, crashed: bool
    ) -> tuple[Verdict, dict[int, RenderedMail]]:
        job = FilterJob(policy.version, policy.text, envelope.mail_from, envelope.rcpt_to)
        result, reason = (None, "agent_crash") if crashed else self.packager.filter(raw, job)
        if result is not None:
            groups = [(p.rcpts, p.decision, tuple(p.masked)) for p in result.parts]
            packages = {n: result.packages[p.package] for n, p in enumerate(result.parts)}
        else:
            log.warning(
                "filtering %s failed (%s): decided on its envelope", envelope.mail_id, reason
            )
            unreadable = "timeout" if reason in _TIMEOUTS else "reader-failed"
            found = fallback_groups(policy.rules, job, unreadable)
            groups = [(g.rcpts, g.decision, ()) for g in found]
            packages = {n: self.packager.headers_only(raw, reason) for n in range(len(groups))}
        verdict = Verdict.of(policy.version, envelope.mail_id, envelope.bundle_id, groups)
        if attempt > 0 and not verdict.trivial and self.knows(envelope.bundle_id):
            # Carried under its own id before a crash, under a policy since replaced: it stays
            # carried (a mail is never both carried and held or blocked).
            log.warning(
                "%s was carried before a crash; the new policy does not undo that", envelope.mail_id
            )
            carried = InboundDecision("allow", None, "carried before a crash, as decided then")
            verdict = Verdict.of(
                policy.version,
                envelope.mail_id,
                envelope.bundle_id,
                [(envelope.rcpt_to, carried, ())],
            )
            packages = {0: self.packager.render_masked(raw, ())}
        return verdict, packages

    def _package_again(self, raw: bytes, decision: InboundDecision) -> RenderedMail:
        """A part's package from its stored verdict (after a crash)."""
        if decision.carried:
            return self.packager.render_masked(raw, decision.mask)
        if decision.action == "hold":
            return self.packager.render_masked(raw, PREVIEW_MASK)
        return self.packager.headers_only(raw, "blocked")

    def _effects(
        self,
        verdict: Verdict,
        packages: dict[int, RenderedMail],
        envelope: Envelope,
        raw: bytes,
        auth: AuthVerdict,
    ) -> Plan:
        plan = Plan()
        failed = [
            p
            for p in verdict.parts
            if p.decision.carried and packages[p.index].manifest.status == "not_displayable"
        ]
        if failed and self.quarantine_failures:
            plan.quarantine = packages[failed[0].index].manifest.reason or "not_displayable"
            return plan
        for part in verdict.parts:
            part_envelope = replace(
                envelope, mail_id=part.mail_id, bundle_id=part.bundle_id, rcpt_to=part.rcpts
            )
            work = _PartWork(verdict, part, part_envelope, packages[part.index], auth)
            if part.decision.carried:
                self._carry(plan, work)
            elif part.decision.action == "hold":
                self._hold(plan, work, raw)
            else:
                self._block(plan, work)
        return plan

    def _carry(self, plan: Plan, work: _PartWork) -> None:
        part, d, version = work.part, work.part.decision, work.verdict.policy_version
        action: Literal["allow", "monitor"] = "monitor" if d.action == "monitor" else "allow"
        mark = InboundMark(
            action,
            d.rule or "",
            version,
            masked=d.mask,
            mask_rule=d.mask_rule or "",
            monitored_by=d.monitored_by,
        )
        package = self.packager.finish(work.rendered, work.envelope, work.auth, mark)
        plan.outgoing.append(Outgoing(part.mail_id, part.bundle_id, package))
        manifest = work.rendered.manifest
        rendered = {
            "status": manifest.status,
            "reason": manifest.reason,
            "pages": len(manifest.pages),
            "bytes": len(package),
            "inbound_action": d.action,
            "rule": d.rule,
            "policy_version": version,
            "part": part.index,
        }
        plan.events.append((part.mail_id, "rendered", rendered))
        rcpts = list(part.rcpts)
        if d.action == "monitor":
            monitored = {
                "rule": d.rule,
                "monitored_by": list(d.monitored_by),
                "rcpts": rcpts,
                "policy_version": version,
            }
            plan.events.append((part.mail_id, "inbound_monitored", monitored))
        unchecked = [f"{u.source} ({u.reason})" for u in manifest.unchecked]
        if part.found or unchecked:  # what the rendering masked, and what it could not check
            masked = {
                "rule": d.mask_rule or "default_mask",
                "types": list(part.found),
                "count": sum(m.count for m in manifest.masked),
                "unchecked": unchecked,
                "rcpts": rcpts,
                "policy_version": version,
            }
            plan.events.append((part.mail_id, "inbound_masked", masked))

    def _block(self, plan: Plan, work: _PartWork) -> None:
        part, d, version = work.part, work.part.decision, work.verdict.policy_version
        blocked = {
            "rule": d.rule,
            "rcpts": list(part.rcpts),
            "silent": d.silent,
            "policy_version": version,
            "explanation": d.explanation,
        }
        plan.events.append((part.mail_id, "inbound_blocked", blocked))
        if d.silent:
            return
        mark = InboundMark("block", d.rule or "", version)
        notice = notice_package(work.rendered)
        package = self.packager.finish(notice, work.envelope, work.auth, mark)
        plan.outgoing.append(Outgoing(part.mail_id, part.bundle_id, package))

    def _hold(self, plan: Plan, work: _PartWork, raw: bytes) -> None:
        part, d, version = work.part, work.part.decision, work.verdict.policy_version
        now = self.clock()
        info = HoldInfo(
            mail_id=self._original(part),
            rule=d.rule or "",
            explanation=d.explanation,
            approver=d.approver or "department_head",
            mask=d.mask,
            mask_rule=d.mask_rule or "",
            policy_version=version,
            held_at=now,
            expires_at=now + self.hold_expiry_s,
            headers=_shown_headers(work.rendered),
        )
        if self.holds.hold(work.envelope, raw, info):
            held = {
                "rule": d.rule,
                "rcpts": list(part.rcpts),
                "approver": info.approver,
                "expires_at": iso(info.expires_at),
                "policy_version": version,
                "explanation": d.explanation,
            }
            plan.events.append((part.mail_id, "inbound_held", held))
        mark = InboundMark(
            "hold",
            d.rule or "",
            version,
            masked=PREVIEW_MASK,
            approver=info.approver,
            held_until=iso(info.expires_at),
        )
        preview = self.packager.finish(work.rendered, work.envelope, work.auth, mark)
        bundle_id = derived_bundle_id(part.bundle_id, "hold")
        plan.outgoing.append(Outgoing(part.mail_id, bundle_id, preview))

    @staticmethod
    def _original(part: Part) -> str:
        return part.mail_id.rsplit("-", 1)[0] if part.index else part.mail_id

    # ----------------------------------------------------------------------------- released

    def released(
        self,
        envelope: Envelope,
        header: dict[str, Any],
        raw: bytes,
        auth: AuthVerdict,
        *,
        crashed: bool,
    ) -> Plan:
        """A held part the inside released: rendered with its verdict's mask, marked."""
        info = HoldInfo.from_json(header["hold"])
        marker = self.holds.marker(envelope.mail_id)
        rendered = (
            self.packager.headers_only(raw, "agent_crash")
            if crashed
            else self.packager.render_masked(raw, info.mask)
        )
        mark = InboundMark(
            "released",
            info.rule,
            info.policy_version,
            masked=info.mask,
            mask_rule=info.mask_rule,
            decided_by=marker.by if marker else "",
        )
        package = self.packager.finish(rendered, envelope, auth, mark)
        manifest = rendered.manifest
        event = {
            "status": manifest.status,
            "reason": manifest.reason,
            "pages": len(manifest.pages),
            "bytes": len(package),
            "inbound_action": "released",
            "rule": info.rule,
            "policy_version": info.policy_version,
        }
        plan = Plan(
            [Outgoing(envelope.mail_id, envelope.bundle_id, package)],
            [(envelope.mail_id, "rendered", event)],
        )
        if rendered.manifest.status == "not_displayable" and self.quarantine_failures:
            plan.quarantine = manifest.reason or "not_displayable"
        return plan

    # ----------------------------------------------------------------------------- expiry

    def expiry_notice(self, marker: Marker) -> Outgoing:
        """The recipients' notice that a held part expired (built here: no mail is read)."""
        info = marker.hold
        mark = InboundMark("expired", info.rule, info.policy_version)
        manifest = notice_package(_headers_mail(info.headers)).manifest
        package = self.packager.finish(
            RenderedMail(manifest=manifest), marker.envelope, AuthVerdict.not_checked(), mark
        )
        return Outgoing(
            marker.part, derived_bundle_id(marker.envelope.bundle_id, "expired"), package
        )


def notice_package(rendered: RenderedMail) -> RenderedMail:
    """A notice about a mail that is not carried: its header block (personal data masked),
    nothing else (no picture, text or attachment list)."""
    headers = rendered.manifest.headers
    masked = replace(
        headers, **{k: _masked(getattr(headers, k)) for k in ("from_", "to", "cc", "subject")}
    )
    manifest = replace(
        rendered.manifest,
        headers=masked,
        pages=(),
        withheld=(),
        notes=(),
        status="rendered",
        reason=None,
    )
    return RenderedMail(manifest=manifest)


def _masked(text: str) -> str:
    found = detect(text)
    return mask_text(text, found) if found else text


def _shown_headers(rendered: RenderedMail) -> dict[str, str]:
    h = rendered.manifest.headers
    return {
        "from": _masked(h.from_),
        "to": _masked(h.to),
        "date": h.date,
        "subject": _masked(h.subject),
    }


def _headers_mail(headers: dict[str, str]) -> RenderedMail:
    block = HeaderBlock(
        from_=headers.get("from", ""),
        to=headers.get("to", ""),
        date=headers.get("date", ""),
        subject=headers.get("subject", ""),
    )
    return RenderedMail(Manifest(PACKAGE_VERSION, "", "rendered", None, headers=block))


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
