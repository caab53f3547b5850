"""``maildiode stats -c FILE``: mails per step per day, month or year, from the audit log."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agentkit.audit import AuditLog
from agentkit.csvsafe import InertWriter
from agentkit.settings import ConfigError
from agentkit.stats import StatsTable, tally
from maildiode.commands.audit import parse_time
from maildiode.commands.check import guess_agent, load_agent_config
from maildiode.commands.state_upgrade import upgrade_or_refusal


def run(args: argparse.Namespace) -> int:
    path = Path(args.config)
    agent = guess_agent(path, None) or "outer"
    try:
        config = load_agent_config(path, agent)
        since, until = parse_time(args.since), parse_time(args.until)
        zone = ZoneInfo(args.tz) if args.tz else None
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    except (ValueError, ZoneInfoNotFoundError) as exc:
        print(f"maildiode stats: {exc}", file=sys.stderr)
        return 2
    if args.format == "xlsx" and not args.output:
        print("maildiode stats: --format xlsx needs -o FILE.xlsx", file=sys.stderr)
        return 2
    if refused := upgrade_or_refusal("maildiode stats", [], config.audit.path, agent=agent):
        return refused
    events = AuditLog(config.audit.path).query(since=since, until=until)
    table = tally(events, period=args.by, group=args.group, zone=zone)
    if args.format == "xlsx":
        write_xlsx(table, Path(args.output), title=f"{path.name} {args.by}")
        print(f"wrote {len(table.rows)} row(s) to {args.output}", file=sys.stderr)
        return 0
    out = open(args.output, "w", encoding="utf-8", newline="") if args.output else sys.stdout  # noqa: SIM115
    try:
        if args.format == "csv":
            writer = InertWriter(out)
            writer.writerow(table.header())
            writer.writerows(table.records())
        else:
            out.write(format_table(table))
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


def format_table(table: StatsTable) -> str:
    """Aligned columns and a total row; a step column is as wide as its name."""
    header = table.header()
    cells = [[str(c) for c in row] for row in table.records()]
    lead = len(header) - len(table.steps)
    cells.append(["total", *[""] * (lead - 1), *map(str, table.totals())])
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    lines = []
    for row in [header, *cells]:
        parts = [
            c.ljust(w) if i < lead else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines) + "\n"


def write_xlsx(table: StatsTable, target: Path, *, title: str) -> None:
    """One sheet: the header row frozen, counts as numbers, a total row in bold."""
    # Lazy: openpyxl only for --xlsx.
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    assert sheet is not None  # a new workbook always has one sheet
    sheet.title = "stats"
    sheet.append(table.header())
    for record in table.records():
        sheet.append(record)
        for cell in sheet[sheet.max_row]:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # text, never a formula, whatever it starts with
    lead = len(table.header()) - len(table.steps)
    sheet.append(["total", *[None] * (lead - 1), *table.totals()])
    for cell in sheet[1] + sheet[sheet.max_row]:
        cell.font = Font(bold=True)
    sheet.freeze_panes = "A2"
    book.properties.title = title
    book.save(target)
