"""Quarantined files an administrator released (``maildiode requeue``): moved, never deleted."""

from __future__ import annotations

import os
from pathlib import Path

from protocol.durable import fsync_dir

__all__ = ["RELEASED_FOLDER", "move_to_released"]

RELEASED_FOLDER = "released"


def move_to_released(*paths: Path) -> Path:
    """Move ``paths`` (files of one quarantine folder; missing ones are skipped) into its
    ``released/`` subfolder, both folders synced; returns that subfolder."""
    source = paths[0].parent
    folder = source / RELEASED_FOLDER
    folder.mkdir(exist_ok=True)
    for path in paths:
        if path.exists():
            os.replace(path, folder / path.name)
    fsync_dir(folder)
    fsync_dir(source)
    return folder
