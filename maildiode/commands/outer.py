"""``maildiode outer -c outer.toml``: run the outer (internet-side) agent until SIGTERM/SIGINT.

The checks of ``maildiode check`` run first; an administrator's mistake ends in one line
(maildiode.commands.agent_start)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from maildiode.commands.agent_start import start_agent


def run(args: argparse.Namespace) -> int:
    return start_agent(args, "outer", _run_outer)


def _run_outer(config: Any, path: Path) -> int:
    from outer_agent.main import run as run_agent

    return run_agent(config, config_path=path)
