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
    key_file_problems,
    keys_problems,
    link_problems,
    listen_problems,
    same_folder_problems,
    secret_file_problems,
    smtp_answer_problems,
    tls_pair_problems,
)
from inner_agent.config import InnerConfig
from inner_agent.outbound.config import OutboundSection
from inner_agent.outbound.directory_check import directory_gaps, directory_scope_names
from inner_agent.outbound.ldap_config import LdapSection
from inner_agent.outbound.tokens import SECRET_BYTES
from mailsafe.policy import RulesError, load_rules, unknown_scope_names
from protocol import EncryptionPublicKey, VerifyKey

__all__ = ["directory_warnings", "listen_addresses", "preflight", "rule_scope_problems"]


def preflight(
    config: InnerConfig, file: str, *, probes: bool, standby: bool = False
) -> list[Finding]:
    """Every problem found; ``probes``: also ask the internal server whether it answers and look
    at the directory (warnings). ``standby``: a listening address in use is no problem (the
    agent holding the state's lease on this host listens there; the standby binds it once it
    has taken over, inner_agent.standby)."""
    found = _host_problems(config, file, probes=probes)
    if standby:
        return [finding for finding in found if not finding.address_in_use]
    return found


def listen_addresses(config: InnerConfig) -> list[tuple[str, str]]:
    """Every (key, address) the inner agent listens on: the links' TCP intakes, the outbound
    intake and its web pages."""
    found: list[tuple[str, str]] = []
    if config.link.transport == "tcp" and config.link.tcp_listen is not None:
        found.append(("link.tcp_listen", config.link.tcp_listen))
    for stream in config.streams.outer if config.streams is not None else ():
        if stream.tcp_listen is not None:
            found.append((f"streams.outer[{stream.id}].tcp_listen", stream.tcp_listen))
    if (section := config.outbound) is not None:
        found += [("outbound.listen", section.listen), ("outbound.web.listen", section.web.listen)]
    return found


def _host_problems(config: InnerConfig, file: str, *, probes: bool) -> list[Finding]:
    found = folder_problems(file, "state.dir", config.state.dir)
    found += file_folder_problems(file, "audit.path", config.audit.path)
    if config.log.file is not None:
        found += file_folder_problems(file, "log.file", config.log.file)
    keys = keys_problems(file, config.keys)
    found += keys
    found += _link_problems(config, file, keys_ok=not keys)
    found += _stream_problems(config, file)
    if config.outbound is not None:
        found += _outbound_problems(config.outbound, file)
    if config.directory.ldap is not None:
        found += _ldap_problems(config.directory.ldap, file)
    if probes:
        found += smtp_answer_problems(file, "inject.server", config.inject.server)
        if config.outbound is not None:
            found += directory_warnings(config.outbound, file)
            found += rule_scope_problems(config.outbound, file)
            notice = config.outbound.notice.internal_smtp
            if notice != config.inject.server:
                found += smtp_answer_problems(file, "outbound.notice.internal_smtp", notice)
    return found


def _link_problems(config: InnerConfig, file: str, *, keys_ok: bool) -> list[Finding]:
    return link_problems(file, config.link, config.keys.signing_key, keys_ok=keys_ok)


def _stream_problems(config: InnerConfig, file: str) -> list[Finding]:
    """Each further outer agent's channel and keys (``[[streams.outer]]``), and no folder
    shared between two streams (the agent would read one agent's chunks as another's)."""
    if config.streams is None:
        return []
    found: list[Finding] = []
    folders: dict[str, Path | None] = {"link.send_dir": config.link.send_dir,
                                       "link.recv_dir": config.link.recv_dir}  # fmt: skip
    for stream in config.streams.outer:
        where = f"streams.outer[{stream.id}]"
        for key, path in (("recv_dir", stream.recv_dir), ("send_dir", stream.send_dir)):
            if path is not None:
                found += folder_problems(file, f"{where}.{key}", path)
                folders[f"{where}.{key}"] = path
        if stream.tcp_listen is not None:
            found += listen_problems(file, f"{where}.tcp_listen", stream.tcp_listen)
        for path in stream.peer_keys:
            found += key_file_problems(file, f"{where}.peer_keys", path, VerifyKey.load)
        if stream.encrypt_to is not None:
            found += key_file_problems(file, f"{where}.encrypt_to", stream.encrypt_to,
                                       EncryptionPublicKey.load)  # fmt: skip
    shared = same_folder_problems(file, folders)  # the pair's own: link_problems says so
    return found + [p for p in shared if p.key.startswith("streams.")]


def _outbound_problems(section: OutboundSection, file: str) -> list[Finding]:
    found = listen_problems(file, "outbound.listen", section.listen)
    found += listen_problems(file, "outbound.web.listen", section.web.listen)
    found += folder_problems(file, "outbound.spool_dir", section.spool_dir)
    found += file_folder_problems(file, "outbound.directory_db", section.directory_db)
    found += secret_file_problems(
        file, "outbound.web.secret_key_file", section.web.secret_key_file, min_bytes=SECRET_BYTES
    )
    web = section.web
    if web.tls_cert is not None and web.tls_key is not None:
        found += tls_pair_problems(file, "outbound.web.tls_cert", web.tls_cert, web.tls_key)
    return found


_LDAP_FILE_FIX = {
    "bind_password_file": "write the bind DN's password into it (one line), chmod 600 {path}",
    "ca_file": "copy the CA certificate (PEM) that signed the LDAP server's there",
}


def _ldap_problems(ldap: LdapSection, file: str) -> list[Finding]:
    """The sync's secret must be there (the agent never makes it) and readable by it alone."""
    found: list[Finding] = []
    for key, path in (("bind_password_file", ldap.bind_password_file), ("ca_file", ldap.ca_file)):
        if path is not None and not path.exists():
            found.append(Finding(Severity.ERROR, file, f"directory.ldap.{key}",
                                 f"{path} does not exist",
                                 _LDAP_FILE_FIX[key].format(path=path)))  # fmt: skip
    password = ldap.bind_password_file
    if password is not None and password.exists():
        found += secret_file_problems(file, "directory.ldap.bind_password_file", password,
                                      min_bytes=1)  # fmt: skip
    return found


def directory_warnings(section: OutboundSection, file: str) -> list[Finding]:
    """Outbound mail needs people to approve it: an empty directory, or a department with
    someone who has no manager and no head or delegate in it or above it (and no fallback
    approver), holds mail for nobody. Disabled people approve nothing and count for nobody.
    Also logged by the agent at start (``OutboundService``)."""
    path = section.directory_db
    gaps = directory_gaps(path, fallback_approver=section.approval.fallback_approver)
    if gaps.empty:
        return [
            Finding(
                Severity.WARNING,
                file,
                "outbound.directory_db",
                f"the directory {path} is empty: outbound mail has nobody to approve it",
                f"import the HR export: maildiode directory import HR.csv -c {file} "
                f"(or sync it from LDAP: [directory.ldap], maildiode directory sync -c {file})",
            )
        ]
    return [
        Finding(
            Severity.WARNING,
            file,
            "outbound.directory_db",
            f"department {name!r} has no head or delegate, nor has any department above it, "
            "and there is no fallback approver: its mail waits for nobody",
            "give it a head or delegate in the HR export (부서장, 대결자) or its people a "
            "manager, or set outbound.approval.fallback_approver",
        )
        for name in gaps.without_approver
    ]


def rule_scope_problems(section: OutboundSection, file: str) -> list[Finding]:
    """A rule scoped to a department, group or job rank the directory does not know applies to
    nobody: an error naming the rule and the key. Not asked of an empty directory (its own
    warning says why) nor of a rules file that does not load (``check`` names that)."""
    known = directory_scope_names(section.directory_db)
    if section.rules_file is None or known is None:
        return []
    try:
        rules = load_rules(section.rules_file)
    except RulesError:
        return []
    fix = ("correct the name in the rule, or import the HR export that has it "
           f"(maildiode directory import HR.csv -c {file})")  # fmt: skip
    name = section.rules_file.name
    return [Finding(Severity.ERROR, file, "outbound.rules_file", f"{name}: {line}", fix)
            for line in unknown_scope_names(rules, known)]  # fmt: skip
