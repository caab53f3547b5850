"""What the outer agent needs of its host, checked before it starts and by ``maildiode check``
(agentkit.preflight holds the checks; this module says which keys of ``outer.toml`` they apply
to)."""

from __future__ import annotations

from agentkit.preflight import (
    Finding,
    file_folder_problems,
    folder_problems,
    keys_problems,
    listen_problems,
    same_folder_problems,
    smtp_answer_problems,
    swapped_link_problems,
    tls_pair_problems,
)
from outer_agent.config import OuterConfig
from protocol import SigningKey

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
    link = config.link
    if link.transport == "tcp":
        if link.tcp_listen is None:
            return []
        return listen_problems(file, "link.tcp_listen", link.tcp_listen)
    folders = {"link.send_dir": link.send_dir, "link.recv_dir": link.recv_dir}
    found = [p for key, path in folders.items() if path for p in folder_problems(file, key, path)]
    found += same_folder_problems(file, folders)
    if keys_ok and not found and link.send_dir is not None and link.recv_dir is not None:
        own = SigningKey.load(config.keys.signing_key).key_id
        found += swapped_link_problems(
            file, link.send_dir, link.recv_dir, own_key_id=own, extension=link.extension
        )
    return found
