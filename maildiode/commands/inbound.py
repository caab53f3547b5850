"""``maildiode inbound list|decide|rules -c inner.toml``: the receive filters from inside.

    maildiode inbound list -c inner.toml [--state waiting|released|dropped|expired|all] [--json]
    maildiode inbound decide -c inner.toml MAIL_ID release|drop [--by WHO]
    maildiode inbound rules -c inner.toml     # the policy as it would be published now

``decide`` is the interim way to decide on a held inbound mail until the console's approval
pages list held inbound mail (docs/approval.md): it stores the decision in the hold book
(compare-and-set: a mail already decided, expired or unknown is refused), records the audit
event ``hold_decided``, and the running inner agent sends the signed decision outward within
``[outbound] poll_s``. Exit status: 0 done, 1 refused (the reason on stderr), 2 configuration,
4 ``decide`` on a standby host (another host's agent holds the state's lease: nothing written;
maildiode.commands.standby_guard, D98), also when that agent took the lease while the command
ran (the decision is stored under the lease's lock: D108).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agentkit.audit import AuditLog
from agentkit.settings import ConfigError, load_config
from agentkit.upgrade import StateDatabase
from inner_agent.config import InnerConfig
from inner_agent.inbound.errors import HoldRefused, InboundError
from inner_agent.inbound.holds import VERSIONS as HOLDS_VERSIONS
from inner_agent.inbound.holds import Hold, HoldBook
from maildiode.commands.standby_guard import (
    EXIT_STANDBY,
    StandbyRefused,
    fenced_write,
    standby_refusal,
)
from maildiode.commands.state_upgrade import upgrade_or_refusal, upgrade_recorded
from protocol import Kind
from protocol.errors import NewerStateError

__all__ = ["run"]


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config, InnerConfig)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if config.inbound is None:
        print(f"{args.config}: no [inbound] section: the receive filters are off", file=sys.stderr)
        return 2
    if args.action == "rules":
        return _rules(config)
    return _on_the_book(config, args)


def _on_the_book(config: InnerConfig, args: argparse.Namespace) -> int:
    """``list`` or ``decide``: 0 done, 1 refused, 4 a decision on a standby host."""
    try:
        upgrade_recorded([StateDatabase.at(_holds(config), HOLDS_VERSIONS)], config.audit.path)
    except NewerStateError as exc:
        print(f"inbound {args.action}: {exc}", file=sys.stderr)
        return 1
    book = HoldBook(_holds(config))
    try:
        if args.action == "list":
            return _list(book, args)
        return _decide(book, config, args)
    except StandbyRefused as exc:
        print(exc, file=sys.stderr)
        return EXIT_STANDBY
    except InboundError as exc:
        print(f"inbound {args.action}: {exc}", file=sys.stderr)
        return 1
    finally:
        book.close()


def _holds(config: InnerConfig) -> Path:
    return config.state.dir / "inbound-holds.db"


def _list(book: HoldBook, args: argparse.Namespace) -> int:
    state = None if args.state == "all" else args.state
    holds = book.listed(state)
    if args.json:
        for hold in holds:
            print(json.dumps(_as_json(hold), ensure_ascii=False))
        return 0
    if not holds:
        print(f"no held inbound mail ({args.state})")
    for hold in holds:
        decided = f"  by {hold.decided_by}" if hold.decided_by else ""
        print(f"{hold.mail_id}  {hold.state}{decided}  rule {hold.rule or '(default)'}  "
              f"until {hold.held_until}")  # fmt: skip
        print(f"    from {hold.sender}  to {', '.join(hold.recipients)}")
        print(f"    subject {hold.subject}")
        print(f"    approvers {', '.join(hold.approvers) or '(none: an administrator decides)'}")
    return 0


def _as_json(hold: Hold) -> dict[str, Any]:
    return {
        "mail_id": hold.mail_id, "state": hold.state, "rule": hold.rule,
        "recipients": list(hold.recipients), "approvers": list(hold.approvers),
        "approver_kind": hold.approver_kind, "policy_version": hold.policy_version,
        "held_until": hold.held_until, "sender": hold.sender, "subject": hold.subject,
        "arrived": _iso(hold.arrived), "decided_by": hold.decided_by,
        "decided_at": _iso(hold.decided_at) if hold.decided_at else None,
        "sent": hold.sent_seq is not None,
    }  # fmt: skip


def _decide(book: HoldBook, config: InnerConfig, args: argparse.Namespace) -> int:
    if args.mail_id is None or args.verdict not in ("release", "drop"):
        raise HoldRefused("usage", "give MAIL_ID and release or drop")
    by = (args.by or f"cli:{getpass.getuser()}").strip()[:320]
    if refusal := standby_refusal("inbound decide", config.state.dir, config.lease):
        raise StandbyRefused(refusal)  # early, before anything is read
    with fenced_write("inbound decide", config.state.dir, config.lease):
        hold = book.decide(args.mail_id, args.verdict, by)
    audit = AuditLog(config.audit.path, agent="inner")
    try:
        audit.record(hold.mail_id, "hold_decided", action=args.verdict, decided_by=by,
                     rule=hold.rule, rcpts=list(hold.recipients))  # fmt: skip
    finally:
        audit.close()
    print(f"{hold.mail_id}: {hold.state} by {by}; the inner agent sends the decision to the "
          "outer agent at its next pass")  # fmt: skip
    return 0


def _rules(config: InnerConfig) -> int:
    """The text the outer agent would get now, and the version last published."""
    from inner_agent.inbound.policy import PolicyPublisher
    from inner_agent.outbound.directory import Directory
    from inner_agent.outbound.directory_schema import VERSIONS as DIRECTORY_VERSIONS

    if config.inbound is None or config.outbound is None:
        return 2
    directory_db = StateDatabase.at(config.outbound.directory_db, DIRECTORY_VERSIONS)
    if refused := upgrade_or_refusal("inbound rules", [directory_db], config.audit.path):
        return refused
    directory = Directory(config.outbound.directory_db)
    try:
        publisher = PolicyPublisher(config.inbound, directory,
                                    config.state.dir / "inbound-policy.json", _NoLink(),
                                    _NoAudit())  # fmt: skip
        found = publisher.current()
        last = publisher.last()
    finally:
        directory.close()
    if found is None:
        return 1
    state = "none yet" if last is None else f"{last.version} (sha256 {last.sha256[:16]}...)"
    same = last is not None and last.sha256 == found.sha256
    print(f"# last published: {state}; now: sha256 {found.sha256[:16]}... "
          f"({'the same' if same else 'changed: published at the next check'})")  # fmt: skip
    print(found.text, end="")
    return 0


class _NoLink:
    def publish(self, bundle: bytes, bundle_id: bytes, kind: Kind = Kind.DATA) -> int:
        raise InboundError("maildiode inbound rules publishes nothing")


class _NoAudit:
    def record(self, mail_id: str, step: str, **fields: Any) -> None:
        if step == "policy_refused":
            print(f"not published: {fields.get('detail')}", file=sys.stderr)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
