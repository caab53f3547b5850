"""``maildiode scan FILE... [--json] [--rules RULES.toml | -c inner.toml] [--ocr auto|on|off]
[--direction out|in] [--rcpt ADDR]... [--sender ADDR]``.

Personal-data findings and the policy decision for each mail file. With ``--json`` one JSON
object per line per file::

    {"file": ..., "findings": [{"type", "text", "masked", "where", "position"}], "decision": ...}

``position`` (mailsafe.positions.Position): ``part``, ``file``, ``page`` (from 1; 0 when not
paged), ``start`` and ``end`` (characters of the place's extracted text), and for text read
from a picture by OCR ``boxes`` ([left, top, right, bottom] of the words, in pixels of a
picture ``pixels`` = [width, height]; a scanned PDF page drawn as the scan read it).

``--direction in`` applies the inbound rules (``[inbound] rules_file`` of ``-c inner.toml``,
with its departments and groups resolved from the directory; or ``--rules``; or the built-in
inbound rules), per recipient (``--rcpt``, default the mail's To and Cc): ``decision`` is the
action when every recipient gets the same, else ``split``; ``parts`` lists each group of
recipients with its action, rule, explanation and the types masked when carried.

``text`` is the match exactly as found: this command is for an administrator checking a
file on their own disk. Everything else (the table output, logs) shows masked values only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agentkit.settings import ConfigError, load_config
from mailsafe.extract import ExtractLimits
from mailsafe.extract.ocr import OcrUnavailable, resolve_ocr
from mailsafe.policy import RulesError, RuleSet, SenderInfo, default_rules, load_rules
from mailsafe.positions import Position
from mailsafe.scan import scan_message

# Mail files larger than this are not read (outbound mail is capped well below it).
MAX_MAIL_FILE_BYTES = 100 << 20


def run(args: argparse.Namespace) -> int:
    if getattr(args, "direction", "out") == "in":
        from maildiode.commands.scan_inbound import run_inbound

        return run_inbound(args)
    try:
        rules = _rules(args)
        settings: dict[str, bool | str] = {"auto": "auto", "on": True, "off": False}
        setting = settings[getattr(args, "ocr", "auto")]
        limits = ExtractLimits(ocr_languages=resolve_ocr(setting))
    except (RulesError, OcrUnavailable) as exc:
        print(exc, file=sys.stderr)
        return 2
    status = 0
    for name in args.files:
        status = max(status, _scan_file(Path(name), rules, limits, as_json=bool(args.json)))
    return status


def _rules(args: argparse.Namespace) -> RuleSet:
    if getattr(args, "rules", None):
        return load_rules(args.rules)
    if getattr(args, "config", None):
        return _rules_from_config(Path(args.config))
    return default_rules()


def _rules_from_config(path: Path) -> RuleSet:
    try:  # the scanner is mailsafe's; the inner agent need not be installed beside it
        from inner_agent.config import InnerConfig
    except ImportError:
        raise RulesError(f"{path.name}: the inner agent is not available to read it") from None
    try:
        config = load_config(path, InnerConfig)
    except ConfigError as exc:
        raise RulesError(str(exc)) from None
    rules_file = getattr(getattr(config, "outbound", None), "rules_file", None)
    return load_rules(rules_file) if rules_file else default_rules()


def _scan_file(path: Path, rules: RuleSet, limits: ExtractLimits, *, as_json: bool) -> int:
    try:
        if path.stat().st_size > MAX_MAIL_FILE_BYTES:
            print(
                f"{path}: larger than {MAX_MAIL_FILE_BYTES >> 20} MiB, not scanned", file=sys.stderr
            )
            return 1
        raw = path.read_bytes()
    except OSError as exc:
        print(f"{path}: cannot read ({exc.strerror or exc})", file=sys.stderr)
        return 1
    result = scan_message(raw, rules, SenderInfo(address=""), limits=limits)
    if as_json:
        print(json.dumps(_as_json(str(path), result), ensure_ascii=False))
    else:
        print(f"{path}: {result.summary()}")
        print(f"  {result.decision.explanation}")
    return 0


def _as_json(name: str, result: Any) -> dict[str, Any]:
    return {
        "file": name,
        "findings": [
            {
                "type": located.finding.type,
                "text": located.finding.text,
                "masked": located.finding.masked,
                "where": located.where,
                "position": _position(located.position),
            }
            for located in result.findings
        ],
        "decision": result.decision.action,
    }


def _position(position: Position) -> dict[str, Any]:
    return {
        "part": position.part,
        "file": position.file,
        "page": position.page,
        "start": position.start,
        "end": position.end,
        "boxes": [list(box) for box in position.boxes],
        "pixels": list(position.pixels),
    }
