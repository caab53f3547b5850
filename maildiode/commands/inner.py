"""``maildiode inner -c inner.toml``: run the inner (intranet-side) agent until SIGTERM/SIGINT.

The checks of ``maildiode check`` (the OCR one among them) run first; an administrator's
mistake ends in one line (maildiode.commands.agent_start)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from maildiode.commands.agent_start import start_agent


def run(args: argparse.Namespace) -> int:
    return start_agent(args, "inner", _run_inner)


def _run_inner(config: Any, path: Path) -> int:
    from inner_agent.main import run as run_agent

    return run_agent(config, config_path=path)
