"""What the inner agent needs of its host, checked before it starts and by ``maildiode check``
(agentkit.preflight holds the checks; this module says which keys of ``inner.toml`` they apply
to), and the directory warnings only ``check`` gives."""

from __future__ import annotations

from pathlib import Path

from agentkit.preflight import (
    Finding,
    Severity,
    file_folder_problems,
    folder_problems,
    keys_problems,
    link_problems,
    listen_problems,
    secret_file_problems,
    smtp_answer_problems,
)
from agentkit.readonly import query_read_only
from inner_agent.config import InnerConfig
from inner_agent.outbound.config import OutboundSection
from inner_agent.outbound.tokens import SECRET_BYTES

__all__ = ["preflight"]


def preflight(config: InnerConfig, file: str, *, probes: bool) -> list[Finding]:
    """Every problem found; ``probes``: also ask the internal server whether it answers and look
    at the directory (warnings)."""
    found = folder_problems(file, "state.dir", config.state.dir)
    found += file_folder_problems(file, "audit.path", config.audit.path)
    if config.log.file is not None:
        found += file_folder_problems(file, "log.file", config.log.file)
    keys = keys_problems(file, config.keys)
    found += keys
    found += _link_problems(config, file, keys_ok=not keys)
    if config.outbound is not None:
        found += _outbound_problems(config.outbound, file)
    if probes:
        found += smtp_answer_problems(file, "inject.server", config.inject.server)
        if config.outbound is not None:
            found += _directory_warnings(config.outbound, file)
            notice = config.outbound.notice.internal_smtp
            if notice != config.inject.server:
                found += smtp_answer_problems(file, "outbound.notice.internal_smtp", notice)
    return found


def _link_problems(config: InnerConfig, file: str, *, keys_ok: bool) -> list[Finding]:
    return link_problems(file, config.link, config.keys.signing_key, keys_ok=keys_ok)


def _outbound_problems(section: OutboundSection, file: str) -> list[Finding]:
    found = listen_problems(file, "outbound.listen", section.listen)
    found += listen_problems(file, "outbound.web.listen", section.web.listen)
    found += folder_problems(file, "outbound.spool_dir", section.spool_dir)
    found += file_folder_problems(file, "outbound.directory_db", section.directory_db)
    found += secret_file_problems(
        file, "outbound.web.secret_key_file", section.web.secret_key_file, min_bytes=SECRET_BYTES
    )
    return found


def _directory_warnings(section: OutboundSection, file: str) -> list[Finding]:
    """Outbound mail needs people to approve it: an empty directory, or a department with no
    head or delegate in it or above it (and no fallback approver), holds mail for nobody."""
    path = section.directory_db
    if not query_read_only(path, "SELECT 1 FROM users LIMIT 1"):
        return [
            Finding(
                Severity.WARNING,
                file,
                "outbound.directory_db",
                f"the directory {path} is empty: outbound mail has nobody to approve it",
                f"import the HR export: maildiode directory -c {file} import HR.csv",
            )
        ]
    if section.approval.fallback_approver is not None:
        return []
    return [
        Finding(
            Severity.WARNING,
            file,
            "outbound.directory_db",
            f"department {name!r} has no head or delegate, nor has any department above it, "
            "and there is no fallback approver: its mail waits for nobody",
            "give it a head or delegate in the HR export, or set "
            "outbound.approval.fallback_approver",
        )
        for name in _departments_without_approver(path)
    ]


def _departments_without_approver(db: Path) -> list[str]:
    parents = dict(query_read_only(db, "SELECT name, parent FROM departments"))
    with_approver = {
        row[0]
        for row in query_read_only(
            db, "SELECT DISTINCT department FROM users WHERE role IN ('head', 'delegate')"
        )
    }
    lacking = []
    for (name,) in query_read_only(db, "SELECT DISTINCT department FROM users ORDER BY 1"):
        current, seen = name, set()
        while current is not None and current not in seen and current not in with_approver:
            seen.add(current)
            current = parents.get(current)
        if current is None or current in seen:
            lacking.append(name)
    return lacking
