"""A real OpenLDAP server for the directory sync's tests: Debian's ``slapd``, started by the
test with its own ``slapd.conf`` (mdb backend) and database in the test's folder, on a free
loopback port, and stopped after it — no system service, no shared state.

The entries are written as LDIF (non-ASCII values and DNs base64-encoded, as RFC 2849 asks)
and loaded with ``ldapadd``; a test changes them through ``modify``.
"""

from __future__ import annotations

import base64
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maildiode.trial.stack import free_port

__all__ = ["SUFFIX", "Slapd", "ldif", "running_slapd"]

SUFFIX = "dc=corp,dc=example"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "test-root-password"
SLAPD = "/usr/sbin/slapd"
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")
START_TIMEOUT_S = 15.0

_CONF = """\
{includes}
pidfile {folder}/slapd.pid
argsfile {folder}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 10485760
suffix "{suffix}"
rootdn "{root_dn}"
rootpw {root_password}
directory {folder}/db
index objectClass eq
"""


@dataclass
class Slapd:
    url: str
    folder: Path
    process: subprocess.Popen[bytes]
    ldaps_url: str = ""  # with tls: the same server over ldaps://, its certificate from ``ca``
    command: tuple[str, ...] = ()  # how it was started, to start it again (``start``)

    def stop(self) -> None:
        """Stop the server (an outage); its data stay for ``start``."""
        _stop(self.process)

    def start(self) -> None:
        """Start the stopped server again, on the same port with the same data."""
        log = (self.folder / "slapd.log").open("ab")
        self.process = subprocess.Popen(list(self.command), stdout=log, stderr=log)
        log.close()  # the child holds its own descriptor
        _wait_for_port(int(self.url.rsplit(":", 1)[1]), self.process, self.folder)

    def add(self, entries: Sequence[tuple[str, Mapping[str, Sequence[str]]]]) -> None:
        """Load entries with ``ldapadd`` (the command-line tool, as an administrator would)."""
        text = "\n".join(ldif(dn, attributes) for dn, attributes in entries)
        subprocess.run(
            ["ldapadd", "-x", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PASSWORD],
            input=text.encode(), check=True, capture_output=True, timeout=30,
        )  # fmt: skip

    def modify(self, dn: str, changes: Mapping[str, Sequence[str]]) -> None:
        """Replace attributes of one entry (an empty list deletes the attribute)."""
        import ldap3

        # Not ``with``: ldap3 leaves an auto-bound connection open at the end of the block.
        connection = ldap3.Connection(self.url, ROOT_DN, ROOT_PASSWORD, auto_bind=True)
        try:
            done = connection.modify(
                dn,
                {name: [(ldap3.MODIFY_REPLACE, list(values))] for name, values in changes.items()},
            )
            assert done, connection.result
        finally:
            connection.unbind()


def ldif(dn: str, attributes: Mapping[str, Sequence[str]]) -> str:
    lines = [_line("dn", dn)]
    lines += [_line(name, value) for name, values in attributes.items() for value in values]
    return "\n".join(lines) + "\n"


def _line(name: str, value: str) -> str:
    if value.isascii() and not value.startswith((" ", ":", "<")):
        return f"{name}: {value}"
    return f"{name}:: {base64.b64encode(value.encode()).decode()}"


def running_slapd(folder: Path, tls: Any = None) -> Iterator[Slapd]:
    """A started slapd in ``folder``; stopped (and its data left for the test's folder) after.
    ``tls``: a ``trustme.CA`` that issues the server's certificate for 127.0.0.1, served on a
    second port over ldaps://."""
    if shutil.which(SLAPD) is None and not Path(SLAPD).exists():
        raise RuntimeError("slapd is not installed: `make deps` installs Debian's slapd")
    (folder / "db").mkdir(parents=True)
    includes = "\n".join(f"include /etc/ldap/schema/{name}.schema" for name in SCHEMAS)
    conf = folder / "slapd.conf"
    text = _CONF.format(includes=includes, folder=folder, suffix=SUFFIX, root_dn=ROOT_DN,
                        root_password=ROOT_PASSWORD)  # fmt: skip
    port, tls_port = free_port(), free_port()
    url, ldaps_url = f"ldap://127.0.0.1:{port}", f"ldaps://127.0.0.1:{tls_port}" if tls else ""
    if tls is not None:
        text = _tls_lines(folder, tls) + text
    conf.write_text(text)
    log = (folder / "slapd.log").open("wb")
    urls = f"{url}/ {ldaps_url}/" if tls else f"{url}/"
    # -d 0: stay in the foreground (the test owns the process), log nothing but errors.
    command = (SLAPD, "-f", str(conf), "-h", urls, "-d", "0")
    process = subprocess.Popen(list(command), stdout=log, stderr=log)
    server = Slapd(url, folder, process, ldaps_url, command)
    try:
        _wait_for_port(port, process, folder)
        if tls is not None:
            _wait_for_port(tls_port, process, folder)
        server.add([(SUFFIX, {"objectClass": ["top", "dcObject", "organization"],
                              "dc": ["corp"], "o": ["Corp"]})])  # fmt: skip
        yield server
    finally:
        _stop(server.process)
        log.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _tls_lines(folder: Path, ca: Any) -> str:
    issued = ca.issue_cert("127.0.0.1")
    issued.private_key_pem.write_to_path(str(folder / "server.key"))
    issued.cert_chain_pems[0].write_to_path(str(folder / "server.pem"))
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    return (f"TLSCACertificateFile {folder}/ca.pem\nTLSCertificateFile {folder}/server.pem\n"
            f"TLSCertificateKeyFile {folder}/server.key\n")  # fmt: skip


def _wait_for_port(port: int, process: subprocess.Popen[bytes], folder: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"slapd exited: {(folder / 'slapd.log').read_text(errors='replace')}"
            )
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"slapd did not listen on port {port} within {START_TIMEOUT_S} s")
