"""``maildiode restore -c FILE SRC``: see :mod:`maildiode.commands.backup`."""

from __future__ import annotations

from maildiode.commands.backup import run_restore as run

__all__ = ["run"]
