"""Run ``maildiode COMMAND ...`` as an administrator would: a new process, its output captured."""

from __future__ import annotations

import subprocess
import sys

COMMAND_TIMEOUT_S = 60


def maildiode(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "maildiode", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )
