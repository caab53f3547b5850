"""Quarantined files an administrator released (``maildiode requeue``): moved, never deleted."""

from __future__ import annotations

from pathlib import Path

from protocol.durable import move_durably

__all__ = ["RELEASED_FOLDER", "move_to_released"]

RELEASED_FOLDER = "released"


def move_to_released(*paths: Path) -> Path:
    """Move ``paths`` (files of one quarantine folder; missing ones are skipped) into its
    ``released/`` subfolder, both folders synced; returns that subfolder."""
    source = paths[0].parent
    folder = source / RELEASED_FOLDER
    folder.mkdir(exist_ok=True)
    move_durably([(path, folder / path.name) for path in paths if path.exists()])
    return folder
