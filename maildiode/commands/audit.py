"""``maildiode audit -c FILE``: query and export the audit log an agent keeps.

``maildiode audit verify -c FILE``: check the audit log's hash chain (``agentkit.auditchain``).

``maildiode audit review -c inner.toml --month 2026-11 -o FILE.xlsx``: the monthly review of
the access records (``agentkit.access_review``), in the console's time zone and language."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

from agentkit.audit import AuditEvent, AuditLog, export
from agentkit.settings import ConfigError
from maildiode.commands.check import guess_agent, load_agent_config


def parse_time(text: str | None) -> float | None:
    if text is None:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


# Control characters (ESC sequences could drive the auditor's terminal) and line separators
# in values that came from the internet (a HELO name, a subject) are shown escaped.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _shown(value: object) -> str:
    return _UNSAFE.sub(lambda m: ascii(m.group())[1:-1], str(value))


def format_table(events: list[AuditEvent]) -> str:
    lines = []
    for event in events:
        row = event.as_dict()
        details = " ".join(f"{k}={_shown(v)}" for k, v in event.details.items())
        lines.append(
            f"{row['time']}  {event.agent:<5}  {_shown(event.mail_id):<26}  {event.step:<18}  "
            f"{details}"
        )
    return "\n".join(lines) + ("\n" if lines else "")


def run(args: argparse.Namespace) -> int:
    if args.report == "review":
        return review(args)
    if args.report == "verify":
        return verify(args)
    if args.month or args.output:
        print("maildiode audit: --month and -o go with `audit review`", file=sys.stderr)
        return 2
    path = Path(args.config)
    agent = guess_agent(path, None) or "outer"
    try:
        config = load_agent_config(path, agent)
        since, until = parse_time(args.since), parse_time(args.until)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"--since/--until: {exc}", file=sys.stderr)
        return 2
    log = AuditLog(config.audit.path)
    events = log.query(
        mail_id=args.mail, step=args.step, since=since, until=until,
        search=args.search, trail=args.trail,
    )  # fmt: skip
    if args.format == "table":
        sys.stdout.write(format_table(events))
    else:
        for piece in export(events, args.format):
            sys.stdout.write(piece)
    return 0


def verify(args: argparse.Namespace) -> int:
    """Check the whole hash chain of the agent's audit log; name the first event that was
    changed, removed or inserted. Exit 0 when it holds, 1 when it is broken."""
    path = Path(args.config)
    try:
        config = load_agent_config(path, guess_agent(path, None) or "outer")
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    log = AuditLog(config.audit.path)
    try:
        report = log.verify()
    finally:
        log.close()
    print(f"{config.audit.path}: {report.describe()}")
    return 0 if report.ok else 1


def review(args: argparse.Namespace) -> int:
    """Write the month's review; say on stderr what it holds. The review is itself an export
    of access records, and recorded as one."""
    from agentkit.access import Action, records_between
    from agentkit.access_review import month_range, review_xlsx
    from agentkit.access_review import review as make_review
    from maildiode.commands.console_site import open_access

    if not (args.month and args.output):
        print("maildiode audit review: needs --month YYYY-MM and -o FILE.xlsx", file=sys.stderr)
        return 2
    site = open_access(args.config)
    if site is None:
        return 1
    try:
        since, until = month_range(args.month, site.console.zone)
    except ValueError as exc:
        site.close()
        print(f"maildiode audit review: --month: {exc}", file=sys.stderr)
        return 2
    try:
        records = records_between(site.audit_path, since, until)
        result = make_review(records, args.month, site.console.zone)
        Path(args.output).write_bytes(review_xlsx(result, site.console.language))
        site.record(Action.EXPORTED, f"access review {args.month} to {Path(args.output).name}",
                    count=len(result.records))  # fmt: skip
    finally:
        site.close()
    print(f"wrote the access review of {args.month} to {args.output}: "
          f"{len(result.records)} record(s), {len(result.accounts)} account(s), "
          f"{len(result.anomalies)} anomaly(ies)", file=sys.stderr)  # fmt: skip
    return 0
