"""``maildiode outer -c outer.toml``: run the outer (internet-side) agent until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import sys

from agentkit.settings import ConfigError, load_config
from outer_agent.config import OuterConfig
from outer_agent.main import run as run_agent


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config, OuterConfig)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    return run_agent(config)
