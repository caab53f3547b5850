"""The outbound rules the scanner uses, kept current without a restart.

Read at start (a rules file that does not validate stops the start, as before); read again
when the file changes — its inode, size or modification time, checked before each mail is
scanned, so a mail taken after a save is decided by the saved rules — and when the agent is
told to (``reload_policy``: the console's save wakes it, SIGHUP calls it). A file that no
longer validates is not taken: the last good rules stay in force, and the refusal is logged
as an ALARM and audited (``policy_refused``) once per change of the file; a taken file is
audited as ``policy_reloaded``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from mailsafe.policy import RulesError, RuleSet, default_rules, load_rules

__all__ = ["RulesSource", "fingerprint"]

log = logging.getLogger(__name__)

Fingerprint = tuple[int, int, int] | None
NO_MAIL = "-"


class Audit(Protocol):
    def record(self, mail_id: str, step: str, **fields: Any) -> None: ...


def fingerprint(path: Path | None) -> Fingerprint:
    """What changes when the file is written (a durable write renames: a new inode)."""
    if path is None:
        return None
    try:
        found = path.stat()
    except OSError:
        return None
    return (found.st_ino, found.st_size, found.st_mtime_ns)


class RulesSource:
    def __init__(self, path: Path | None, audit: Audit,
                 load: Callable[[Path], RuleSet] = load_rules) -> None:  # fmt: skip
        self.path, self.audit, self._load = path, audit, load
        self._lock = threading.Lock()
        self._seen = fingerprint(path)
        self._rules = load(path) if path is not None else default_rules()

    @property
    def rules(self) -> RuleSet:
        return self._rules

    def current(self) -> RuleSet:
        """The rules in force, read again first when the file changed."""
        if self.path is not None and fingerprint(self.path) != self._seen:
            self.reload()
        return self._rules

    def reload(self) -> bool:
        """Read the file again now; False (the last good rules kept) when it does not validate."""
        if self.path is None:
            return True
        with self._lock:
            seen, self._seen = self._seen, fingerprint(self.path)
            try:
                rules = self._load(self.path)
            except RulesError as exc:
                if self._seen != seen:
                    self._refused(str(exc))
                return False
            self._rules = rules
        digest = hashlib.sha256(rules.model_dump_json().encode()).hexdigest()
        self.audit.record(NO_MAIL, "policy_reloaded", direction="outbound", file=self.path.name,
                          rules=len(rules.rule), sha256=digest)  # fmt: skip
        log.info("outbound rules read again from %s (%d rules)", self.path, len(rules.rule))
        return True

    def _refused(self, why: str) -> None:
        log.error("ALARM: the outbound rules were not read again (%s); the last good rules "
                  "stay in force", why)  # fmt: skip
        self.audit.record(NO_MAIL, "policy_refused", code="bad_rules", direction="outbound",
                          file=self.path.name if self.path else "", detail=why[:300])  # fmt: skip
