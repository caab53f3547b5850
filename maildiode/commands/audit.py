"""``maildiode audit -c FILE``: query and export the audit log an agent keeps.

``maildiode audit verify -c FILE``: check the audit log's hash chain (``agentkit.auditchain``);
with ``--against INNER_AUDIT_DB``, against the outer agent's checkpoints the inner agent kept.

``maildiode audit review -c inner.toml --month 2026-11 -o FILE.xlsx``: the monthly review of
the access records (``agentkit.access_review``), in the console's time zone and language."""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agentkit.audit import AuditEvent, AuditLog, export, kept_checkpoints
from agentkit.auditchain import ChainRow, check_extract
from agentkit.settings import ConfigError
from agentkit.streams import outer_agent_name
from maildiode.commands.check import guess_agent, load_agent_config
from maildiode.commands.state_upgrade import upgrade_or_refusal
from protocol.errors import KeyFileError, NewerStateError
from protocol.keys import SigningKey


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
    return query(args)


def query(args: argparse.Namespace) -> int:
    """The events asked for, as a table or an export, on standard output."""
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
    if (refused := upgrade_or_refusal("audit", [], config.audit.path, agent=agent)) is not None:
        return refused
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
    changed, removed or inserted. Exit 0 when it holds, 1 when it is broken. With
    ``--extract FILE``: check an exported extract (JSON lines or CSV) instead."""
    if getattr(args, "extract", None):
        return verify_extract(Path(args.extract))
    path = Path(args.config)
    agent = guess_agent(path, None) or "outer"
    try:
        config = load_agent_config(path, agent)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        own = SigningKey.load(config.keys.signing_key).verify_key
    except KeyFileError as exc:
        print(
            f"{path}: keys.signing_key: {exc} — the checkpoints are checked with it",
            file=sys.stderr,
        )
        return 2
    against = Path(args.against) if getattr(args, "against", None) else None
    # Kept inside under the name its events are imported under (outer-ID for a further outer
    # agent); signed under its own log's name.
    carried_as = outer_agent_name(config.link.stream) if agent == "outer" else agent
    points = None if against is None else [
        replace(point, agent=agent) for point in kept_checkpoints(against, carried_as)
    ]  # fmt: skip
    if against is not None and not points:
        print(f"{against}: holds no checkpoint of the {carried_as} agent (give a copy of the "
              "inner agent's audit log, which keeps the outer agents')",
              file=sys.stderr)  # fmt: skip
        return 2
    if refused := upgrade_or_refusal("audit verify", [], config.audit.path, agent=agent):
        return refused
    log = AuditLog(config.audit.path, agent=agent)  # whose checkpoints to read
    try:
        report = log.verify([own], checkpoints=points)
        log.record_verification(report)  # the console shows the last verification
    finally:
        log.close()
    where = "" if against is None else f" (against the checkpoints kept in {against})"
    print(f"{config.audit.path}: {report.describe()}{where}")
    return 0 if report.ok else 1


def verify_extract(path: Path) -> int:
    """An auditor's check of an export (``--format jsonl|csv``): every row as logged."""
    try:
        rows = list(extract_rows(path.read_text(encoding="utf-8-sig")))
    except (OSError, ValueError, KeyError) as exc:
        print(f"{path}: not an audit export with chain columns ({exc})", file=sys.stderr)
        return 2
    checked, problems = check_extract(rows)
    for line in problems:
        print(f"{path}: {line}")
    if not problems:
        print(f"{path}: {checked} event(s), each as logged")
    return 1 if problems else 0


def extract_rows(text: str) -> Iterator[tuple[ChainRow, bytes]]:
    """The rows of an export with their chain fields (rows without them are skipped)."""
    if text.lstrip().startswith("{"):
        for line in text.splitlines():
            if line.strip():
                yield _row_of(json.loads(line))
        return
    for record in csv.DictReader(io.StringIO(text)):
        if record.get("chain_id"):
            yield _csv_row(record)


_COMMON = ("time", "agent", "mail_id", "step", "chain")


def _row_of(record: dict[str, Any]) -> tuple[ChainRow, bytes]:
    chain = record["chain"]
    details = {k: v for k, v in record.items() if k not in _COMMON}
    text = json.dumps(details, ensure_ascii=False, default=str, sort_keys=True)
    row = ChainRow(int(chain["id"]), float(chain["ts"]), record["agent"], record["mail_id"],
                   record["step"], text, bytes.fromhex(chain["link"]))  # fmt: skip
    return row, bytes.fromhex(chain["prev"])


def _csv_row(record: dict[str, str]) -> tuple[ChainRow, bytes]:
    details = json.loads(record["details"])
    text = json.dumps(details, ensure_ascii=False, default=str, sort_keys=True)
    mail_id = record["mail_id"][1:] if record["mail_id"].startswith("'") else record["mail_id"]
    row = ChainRow(int(record["chain_id"]), float(record["chain_ts"]), record["agent"], mail_id,
                   record["step"], text, bytes.fromhex(record["chain_link"]))  # fmt: skip
    return row, bytes.fromhex(record["chain_prev"])


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
    try:
        site = open_access(args.config)
    except NewerStateError as exc:
        print(f"maildiode audit review: {exc}", file=sys.stderr)
        return 1
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
