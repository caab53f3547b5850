"""Operational logging for both agents: human text or JSON lines, one event per line."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from agentkit.settings import LogSection

__all__ = ["JsonLinesFormatter", "setup_logging"]

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any ``extra=`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        entry: dict[str, Any] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def setup_logging(section: LogSection, *, agent: str = "maildiode") -> None:
    """Configure the root logger once, at start-up, from the [log] section."""
    if section.file is not None:
        section.file.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(section.file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    if section.format == "json":
        handler.setFormatter(JsonLinesFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s {agent} %(levelname)s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(section.level.upper())
    # aiosmtpd logs every SMTP command at INFO: too loud for operators, kept for debug.
    if section.level != "debug":
        logging.getLogger("mail.log").setLevel(logging.WARNING)
