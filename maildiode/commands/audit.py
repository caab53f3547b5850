"""``maildiode audit -c FILE``: query and export the audit log an agent keeps."""

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
