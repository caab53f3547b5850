"""SIGHUP (``systemctl reload``): read the configuration again, apply what can change safely
while mail flows, and say which changes need a restart (issue 22.4).

What applies at once: the log level, the audit retention settings and every store's
``[retention]`` days (the next daily prune uses them); and the contents of the
rules files and the directory, which the inner agent reads again on every reload. Every other
key (a rules file's path included) — listeners, folders, keys, limits, the link — is held by
running parts (open sockets, open databases, a sender's sequence) and only takes effect at the
next start; the reload says so per key instead of half-applying it. A file that no longer
loads is refused as a whole and the agent goes on with what it has.

Pure: :func:`changed_keys` and :func:`classify` compare two loaded configurations.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from agentkit.auditsigning import AuditCheckpointer
from agentkit.storeretention import StorePrune

__all__ = [
    "APPLIED_AT_ONCE",
    "ReloadOutcome",
    "apply_reloaded",
    "changed_keys",
    "classify",
    "reload_config",
]

log = logging.getLogger(__name__)

# Keys a reload applies without a restart (dotted paths; a prefix covers its sub-keys).
APPLIED_AT_ONCE = (
    "log.level",
    "audit.retention_days",
    "audit.access_retention_days",
    "audit.rights_retention_days",
    "retention",
)


@dataclass(frozen=True)
class ReloadOutcome:
    applied: tuple[str, ...]  # changed keys now in force
    need_restart: tuple[str, ...]  # changed keys that wait for the next start
    refused: str | None = None  # why the file was not taken (it no longer loads)


def changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths of the settings that differ between two loaded configurations."""
    if isinstance(old, BaseModel) and isinstance(new, BaseModel) and type(old) is type(new):
        found: list[str] = []
        for name in type(old).model_fields:
            found += changed_keys(getattr(old, name), getattr(new, name), f"{prefix}{name}.")
        return found
    return [] if old == new else [prefix.rstrip(".")]


def classify(keys: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(applied at once, needing a restart)."""
    applied: list[str] = []
    restart: list[str] = []
    for key in keys:
        at_once = any(key == a or key.startswith(f"{a}.") for a in APPLIED_AT_ONCE)
        (applied if at_once else restart).append(key)
    return tuple(applied), tuple(restart)


def reload_config(
    running: Any,
    load: Callable[[], Any],
    apply: Callable[[Any], None],
) -> ReloadOutcome:
    """Load the file again; ``apply(new)`` what may change at once; log every changed key.

    ``running``: the configuration the agent started with (restart-bound keys are compared
    with it, so a key changed and changed back is not reported)."""
    try:
        new = load()
    except Exception as exc:  # noqa: BLE001 - any reason the file does not load is the answer
        log.error("reload refused: the configuration does not load (%s); nothing changed", exc)
        return ReloadOutcome((), (), str(exc))
    applied, restart = classify(changed_keys(running, new))
    apply(new)
    for key in applied:
        log.warning("reload: %s changed and is in force", key)
    for key in restart:
        log.warning("reload: %s changed; it takes effect at the next restart", key)
    if not applied and not restart:
        log.info("reload: the configuration is unchanged; rules and directory read again")
    return ReloadOutcome(applied, restart)


def apply_reloaded(
    new: Any,
    *,
    checkpointer: AuditCheckpointer | None = None,
    stores: Callable[[Any], Sequence[StorePrune]] | None = None,
) -> None:
    """Put the keys of APPLIED_AT_ONCE in force (both agents' configs have these sections).
    ``stores``: the agent's stores to prune, made from the new configuration's
    ``[retention]`` (and the running one's folders: those are restart-bound)."""
    logging.getLogger().setLevel(new.log.level.upper())
    if checkpointer is not None:
        checkpointer.retention = new.audit.retention()
        if stores is not None:
            checkpointer.stores = stores(new)
