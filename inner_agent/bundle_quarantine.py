"""The evidence a refused inbound bundle leaves: ``bundle-<id>.bin`` (its bytes) and
``bundle-<id>.reason.json`` beside it, written durably in the quarantine folder.

``maildiode requeue`` (:mod:`inner_agent.requeue`) reads them back once the cause is fixed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from inner_agent.bundle_check import BundleRefused
from protocol import ReceivedBundle

__all__ = ["quarantine_files"]


def quarantine_files(
    folder: Path, bundle: ReceivedBundle, refusal: BundleRefused, mail_id: str, now: float
) -> Path:
    """Write the bundle and its reason file; returns the bundle file's path."""
    bundle_hex = bundle.bundle_id.hex()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"bundle-{bundle_hex}.bin"
    _write_durably(path, bundle.data)
    reason = {
        "reason": refusal.code,
        "detail": refusal.detail,
        "bundle_id": bundle_hex,
        "mail_id": mail_id,
        "seq": bundle.seq,
        "time": now,
    }
    _write_durably(path.with_suffix(".reason.json"), json.dumps(reason).encode())
    return path


def _write_durably(path: Path, data: bytes) -> None:
    """Temp file, fsync, rename, fsync the folder: evidence must survive a power cut."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
