"""The evidence a refused inbound bundle leaves: ``bundle-<id>.bin`` (its bytes) and
``bundle-<id>.reason.json`` beside it, written durably in the quarantine folder.

``maildiode requeue`` (:mod:`inner_agent.requeue`) reads them back once the cause is fixed.
"""

from __future__ import annotations

import json
from pathlib import Path

from inner_agent.bundle_check import BundleRefused
from protocol import ReceivedBundle
from protocol.atrest import CLEAR, AtRest
from protocol.durable import write_durably

__all__ = ["quarantine_files"]


def quarantine_files(
    folder: Path,
    bundle: ReceivedBundle,
    refusal: BundleRefused,
    mail_id: str,
    now: float,
    *,
    at_rest: AtRest = CLEAR,
) -> Path:
    """Write the bundle (sealed at rest when a key is set) and its reason file; returns the
    bundle file's path."""
    bundle_hex = bundle.bundle_id.hex()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"bundle-{bundle_hex}.bin"
    # Evidence must survive a power cut: both files durable, the folder synced once after both.
    write_durably(path, at_rest.seal(bundle.data), sync_folder=False)
    reason = {
        "reason": refusal.code,
        "detail": refusal.detail,
        "bundle_id": bundle_hex,
        "mail_id": mail_id,
        "seq": bundle.seq,
        "time": now,
    }
    write_durably(path.with_suffix(".reason.json"), json.dumps(reason).encode())
    return path
