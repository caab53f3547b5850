"""Starting an agent from the command line (``maildiode outer|inner -c FILE``): the checks of
``maildiode check`` first (errors only, no servers asked), then the agent. An administrator's
mistake ends in one line per problem (``FILE: KEY: problem — fix``) on standard error and in
the agent's log file, never in a traceback; ``--debug`` lets a fault's traceback through.

Exit status (docs/operations.md): 0 a clean stop; 2 refused before starting (the config, a
folder, a key, a port, state from a newer release: nothing was started); 3 a fault while
starting or running that the checks did not foresee (one line; the traceback with --debug,
or in the log at level debug); 4 the inner agent lost its state's fencing lease to a standby
and stopped. A second inner agent started on a state another one holds is refused (2) in one
line naming the holder.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentkit.leasekeeper import LeaseRefused
from agentkit.logs import setup_logging
from agentkit.preflight import Severity
from maildiode.commands.check import agent_findings
from protocol.errors import NewerStateError

__all__ = ["EXIT_FAULT", "EXIT_REFUSED", "fault_line", "start_agent"]

log = logging.getLogger(__name__)

EXIT_REFUSED = 2
EXIT_FAULT = 3


def start_agent(args: argparse.Namespace, agent: str, run_agent: Callable[[Any, Path], int]) -> int:
    """``run_agent(config, path)``: the path lets the agent read its file again on SIGHUP."""
    path = Path(args.config)
    standby = bool(getattr(args, "standby", False))
    config, findings = agent_findings(path, agent, probes=False, standby=standby)
    errors = [f.line() for f in findings if f.severity is Severity.ERROR]
    if config is None or errors:
        _say(config, agent, errors)
        return EXIT_REFUSED
    try:
        if getattr(args, "debug", False):
            return run_agent(config, path)
        return run_agent(config, path)
    except LeaseRefused as exc:  # a second agent on a held state: a refusal, not a fault
        _say(config, agent, [f"{path.name}: {exc}"])
        return EXIT_REFUSED
    except NewerStateError as exc:  # the state is a newer release's: refused, nothing touched
        _say(config, agent, [f"{path.name}: refused to start: {exc}"])
        return EXIT_REFUSED
    except Exception as exc:  # one line for the administrator, not a traceback
        if getattr(args, "debug", False):
            raise
        _say(config, agent, [fault_line(path, exc)])
        log.debug("the fault's traceback", exc_info=True)
        return EXIT_FAULT


def fault_line(path: Path, exc: BaseException) -> str:
    """One line naming what failed, where, and what to do: an OS error names its file."""
    check = f"maildiode check -c {path} lists what else is wrong"
    if isinstance(exc, OSError) and exc.filename is not None:
        return (f"{path.name}: {exc.filename}: {exc.strerror or exc} — make it the service "
                f"user's (owner, mode) or free the resource; {check}")  # fmt: skip
    problem = " ".join(str(exc).split()) or type(exc).__name__
    return (f"{path.name}: the agent stopped: {type(exc).__name__}: {problem} — {check}; "
            "run with --debug for the traceback")  # fmt: skip


def _say(config: Any, agent: str, lines: list[str]) -> None:
    """Print each line, and write it to the agent's log file too (when the log goes to
    standard error, the printed line is the log line: journald keeps it)."""
    for line in lines:
        print(line, file=sys.stderr)
    log_file = getattr(getattr(config, "log", None), "file", None)
    if log_file is None or not log_file.parent.is_dir():
        return
    if not logging.getLogger().handlers:
        try:
            setup_logging(config.log, agent=f"maildiode-{agent}")
        except OSError:
            return  # the log file itself is the fault; its line is on standard error
    for line in lines:
        log.error(line)
