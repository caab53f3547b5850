"""Whether the LDAP server answered the last time anyone asked: one small JSON file in the
state folder (``directory-ldap.json``), written by whoever asked — the sync pass (every pass)
and sign-in (when the server stops or starts answering it) — and read by ``maildiode status``
and the console's dashboard (alarm ``directory_unreachable``).

The agent and its web process are two processes; a file both can write durably (last writer
wins, each write whole) is enough for "what was last seen", and needs no schema.

With several servers (D92) the file also lists each one as that look saw it (``servers``: the
one that answered, those that could not, with their reasons); a file written before has no
such list and reads as its one ``server``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from inner_agent.outbound.ldap_bind import DirectoryState
from protocol.durable import write_durably

__all__ = ["HEALTH_FILE", "health_recorder", "read_health", "record_health"]

log = logging.getLogger(__name__)

HEALTH_FILE = "directory-ldap.json"
VERSION = 1
# A file larger than this is not ours: do not read it whole (eight servers' reasons fit).
MAX_HEALTH_BYTES = 16384
MAX_SERVERS_READ = 8  # ldap_config.MAX_LDAP_SERVERS


def record_health(state_dir: Path, state: DirectoryState, source: str) -> None:
    """Keep ``state`` as what ``source`` ("sync", "sign-in") last saw; a disk error is logged,
    not raised (the caller's work does not depend on it)."""
    servers = [{"server": s.server, "reachable": s.reachable, "reason": s.reason,
                "since": s.since} for s in state.servers]  # fmt: skip
    found = {"version": VERSION, "server": state.server, "reachable": state.reachable,
             "reason": state.reason, "since": state.since, "source": source,
             "servers": servers}  # fmt: skip
    try:
        write_durably(state_dir / HEALTH_FILE, json.dumps(found, ensure_ascii=False).encode())
    except OSError as exc:
        log.warning("directory health: cannot write %s: %s", state_dir / HEALTH_FILE, exc)


def health_recorder(state_dir: Path | None, source: str) -> Callable[[DirectoryState], None] | None:
    """``record_health`` into ``state_dir`` as ``source``; None without a state folder."""
    if state_dir is None:
        return None
    return lambda state: record_health(state_dir, state, source)


def read_health(state_dir: Path) -> dict[str, Any] | None:
    """What was last seen of the LDAP server; None when nothing was (or the file is not ours)."""
    path = state_dir / HEALTH_FILE
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_HEALTH_BYTES + 1)
        found = json.loads(raw) if len(raw) <= MAX_HEALTH_BYTES else None
    except (OSError, ValueError):
        return None
    if not isinstance(found, dict) or found.get("version") != VERSION:
        return None
    health = {key: found.get(key) for key in ("server", "reachable", "reason", "since", "source")}
    return {**health, "servers": _servers(found.get("servers"))}


def _servers(untrusted: Any) -> list[dict[str, Any]]:
    """Each server's entry as written (a file of an older version has none: [])."""
    if not isinstance(untrusted, list):
        return []
    keys = ("server", "reachable", "reason", "since")
    return [{key: item.get(key) for key in keys}
            for item in untrusted[:MAX_SERVERS_READ] if isinstance(item, dict)]  # fmt: skip
