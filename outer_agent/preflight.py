"""What the outer agent needs of its host, checked before it starts and by ``maildiode check``
(agentkit.preflight holds the checks; this module says which keys of ``outer.toml`` they apply
to)."""

from __future__ import annotations

from agentkit.preflight import (
    Finding,
    file_folder_problems,
    folder_problems,
    keys_problems,
    link_problems,
    listen_problems,
    smtp_answer_problems,
    tls_pair_problems,
)
from outer_agent.config import OuterConfig

__all__ = ["preflight"]


def preflight(config: OuterConfig, file: str, *, probes: bool) -> list[Finding]:
    """Every problem found; ``probes``: also ask the relays whether they answer (warnings)."""
    found = folder_problems(file, "spool.dir", config.spool.dir)
    found += file_folder_problems(file, "audit.path", config.audit.path)
    if config.log.file is not None:
        found += file_folder_problems(file, "log.file", config.log.file)
    keys = keys_problems(file, config.keys)
    found += keys
    found += _link_problems(config, file, keys_ok=not keys)
    found += listen_problems(file, "smtp.listen", config.smtp.listen)
    smtp = config.smtp
    if smtp.tls_cert is not None and smtp.tls_key is not None:
        found += tls_pair_problems(file, "smtp.tls_cert", smtp.tls_cert, smtp.tls_key)
    if probes:
        if config.delivery.smarthost is not None:
            found += smtp_answer_problems(file, "delivery.smarthost", config.delivery.smarthost)
        if config.archive.smtp is not None:
            found += smtp_answer_problems(file, "archive.smtp", config.archive.smtp)
    return found


def _link_problems(config: OuterConfig, file: str, *, keys_ok: bool) -> list[Finding]:
    return link_problems(file, config.link, config.keys.signing_key, keys_ok=keys_ok)
