"""``maildiode inner -c inner.toml``: run the inner (intranet-side) agent until SIGTERM/SIGINT.

The checks of ``maildiode check`` (the OCR one among them) run first; an administrator's
mistake ends in one line (maildiode.commands.agent_start). ``--standby`` waits for the state's
fencing lease instead of refusing while another inner agent holds it (inner_agent.standby)."""

from __future__ import annotations

import argparse
import functools
from pathlib import Path
from typing import Any

from maildiode.commands.agent_start import start_agent


def run(args: argparse.Namespace) -> int:
    standby = bool(getattr(args, "standby", False))
    return start_agent(args, "inner", functools.partial(_run_inner, standby=standby))


def _run_inner(config: Any, path: Path, *, standby: bool) -> int:
    from inner_agent.main import run as run_agent

    return run_agent(config, config_path=path, standby=standby)
