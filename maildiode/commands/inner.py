"""``maildiode inner -c inner.toml``: run the inner (intranet-side) agent until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agentkit.settings import ConfigError, load_config
from inner_agent.config import InnerConfig
from inner_agent.main import run as run_agent
from maildiode.commands.check import check_ocr


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config, InnerConfig)
        check_ocr(Path(args.config), config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    return run_agent(config)
