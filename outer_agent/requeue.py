"""Release mails the outer agent quarantined, once the cause is fixed: render them again.

A mail lands in ``spool/inbound/quarantine/`` when it could not be rendered and the policy says
so (``render.on_failure = "quarantine"``), or when a segment of several mails could not be
split. :func:`release` writes the quarantined mails back as a new segment in ``incoming/``, the
way the SMTP intake does (durably, same envelope, same bundle id), so the running agent's
splitter takes them within a second (or the next start does) and renders them with the
configuration as it is now. The quarantined files move to ``quarantine/released/``: evidence is
never deleted. A record that does not decode (a torn file) cannot be released.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agentkit.released import move_to_released
from outer_agent.errors import SpoolCorrupt
from outer_agent.spool import QUARANTINE, Spool, decode_segment

__all__ = ["Released", "RequeueError", "release"]


class RequeueError(Exception):
    """The file cannot be released (says why)."""


@dataclass(frozen=True)
class Released:
    mail_ids: tuple[str, ...]


# Spool record kinds that are mail (outer_agent.spool, outer_agent.holds), not a package.
RELEASABLE = frozenset({"mail", "generated", "held"})


def release(spool: Spool, name: str) -> Released:
    """Put ``quarantine/NAME`` (a mail id, or a path to the file) back into the intake."""
    path = _quarantined(spool, name)
    try:
        records = decode_segment(path.read_bytes(), str(path), spool.at_rest)
    except SpoolCorrupt as exc:
        raise RequeueError(f"{path}: {exc.problem}; a torn record cannot be released") from None
    except OSError as exc:
        raise RequeueError(f"{path}: cannot be read ({exc.strerror})") from None
    kinds = [str(record.header.get("kind")) for record in records]
    if not records or any(kind not in RELEASABLE for kind in kinds):
        raise RequeueError(f"{path}: not a received mail (a rendered package is not released)")
    # each record keeps its kind: a bounce notice is not filtered, a released held mail not again
    spool.write_segment([(record.envelope, record.payload) for record in records], kinds)
    move_to_released(path, path.with_name(path.name + ".reason"))
    return Released(tuple(record.envelope.mail_id for record in records))


def _quarantined(spool: Spool, name: str) -> Path:
    folder = spool.folder(QUARANTINE)
    path = folder / Path(name).name
    if path.name.endswith(".reason"):
        path = path.with_name(path.name.removesuffix(".reason"))
    if not path.is_file():
        raise RequeueError(f"{name}: no such mail in {folder}")
    return path
