"""Release a quarantined bundle once its cause is fixed: check it again, queue its notifications.

A bundle the inner agent refused (``quarantine/bundle-<id>.bin`` with ``.reason.json`` beside
it) already passed the signature check; it was refused by the inner checks, e.g. a page over
``images.max_pixels``. After an administrator has changed what caused it, :func:`release` runs
every check again with the current configuration (nothing is skipped) and, if the bundle now
passes, queues its notifications in the same injection queue the running agent delivers from
(SQLite in WAL mode, so the agent may run meanwhile). The files move to
``quarantine/released/``: evidence is never deleted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from agentkit.released import move_to_released
from inner_agent.bundle_check import BundleRefused
from inner_agent.bundle_handler import BundleHandler
from protocol import Kind, ReceivedBundle
from protocol.atrest import is_sealed
from protocol.errors import AtRestError

__all__ = ["NOT_RELEASABLE", "BundleRefused", "Released", "RequeueError", "release"]

# Refusals no configuration change can cure: a non-data bundle is a control record, and a
# control record that did not decode (reasons ``control_*``) is no mail either.
NOT_RELEASABLE = frozenset({"unexpected_kind"})
CONTROL_REASON_PREFIX = "control_"


class RequeueError(Exception):
    """The file is not a quarantined bundle this command can release (says why)."""


@dataclass(frozen=True)
class Released:
    mail_id: str
    bundle_id: str
    notifications: int
    already_queued: bool


def release(
    path: Path,
    handler: BundleHandler,
    *,
    holding: Callable[[], AbstractContextManager[object]] = nullcontext,
) -> Released:
    """Check ``path`` (the ``.bin`` or its ``.reason.json``) again and queue it.

    Raises BundleRefused when it still fails a check (the files stay where they are) and
    RequeueError when the file is not a releasable quarantined bundle. ``holding``: the block
    the queueing, its audit record and the files' move run in, after the checks (the hand
    command's ``fenced_write``: nothing of it lands once another host holds the state).
    """
    data_path, reason_path = _paths(path)
    try:
        reason = json.loads(reason_path.read_text(encoding="utf-8"))
        bundle_id = bytes.fromhex(reason["bundle_id"])
        data = data_path.read_bytes()
        if is_sealed(data):
            data = handler.queue.at_rest.open(data, str(data_path))
    except (OSError, ValueError, KeyError, TypeError, AtRestError) as exc:
        raise RequeueError(f"{path}: not a quarantined bundle ({exc})") from None
    code = str(reason.get("reason", ""))
    if code in NOT_RELEASABLE or code.startswith(CONTROL_REASON_PREFIX):
        raise RequeueError(f"{path}: refused as {reason['reason']}, which no change can cure")
    # As the link delivered it (a refused bundle is always DATA); its epoch and creation
    # time are not kept with the evidence and are not checked again.
    bundle = ReceivedBundle("inbound", int(reason.get("seq", 0)), bundle_id, Kind.DATA, data,
                            created_ms=0, epoch=0)  # fmt: skip
    prepared = handler.prepare(bundle)
    mail_id = prepared.mail.manifest.mail_id
    with holding():
        queued = handler.queue.release_quarantined(
            bundle_id, mail_id, handler.options.from_address, prepared.recipients,
            prepared.messages,
        )  # fmt: skip
        handler.audit.record(
            mail_id,
            "requeued",
            bundle_id=bundle_id.hex(),
            previous_reason=reason.get("reason"),
            notifications=len(prepared.messages) if queued else 0,
            already_queued=not queued,
        )
        move_to_released(data_path, reason_path)
    return Released(mail_id, bundle_id.hex(), len(prepared.messages), not queued)


def _paths(path: Path) -> tuple[Path, Path]:
    name = path.name
    if name.endswith(".reason.json"):
        stem = name.removesuffix(".reason.json")
    elif name.endswith(".bin"):
        stem = name.removesuffix(".bin")
    else:
        raise RequeueError(f"{path}: expected a quarantine/bundle-<id>.bin file")
    if not stem.startswith("bundle-"):
        raise RequeueError(f"{path}: expected a quarantine/bundle-<id>.bin file")
    return path.with_name(stem + ".bin"), path.with_name(stem + ".reason.json")
