"""What an agent needs of its host before it starts, checked without starting anything.

``maildiode check`` runs every check and reports every finding at once; the agents run the
same checks (errors only, no network probes) before they open anything, and refuse to start
with one line per error instead of a traceback (issue 22). Each finding reads
``FILE: KEY: problem — fix``.

Folders named in a config are never created here or by the agents: ``maildiode init`` (or the
installer) makes them with the right owner and mode. A misspelt folder that an agent created
silently would take chunks where the linkage product never looks.

I/O by nature (stat, bind, connect), but nothing is changed: no folder, file or socket is left
behind.
"""

from __future__ import annotations

import enum
import errno
import getpass
import os
import socket
import ssl
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from agentkit.settings import KeysSection, LinkSection, parse_host_port
from protocol.atrest import AtRestKeyring
from protocol.chunk import PREFIX_STRUCT
from protocol.errors import AtRestError, KeyFileError
from protocol.keys import EncryptionKey, EncryptionPublicKey, SigningKey, VerifyKey
from protocol.limits import MAGIC

__all__ = [
    "PROBE_TIMEOUT_S",
    "Finding",
    "Severity",
    "exit_status",
    "file_folder_problems",
    "folder_problems",
    "key_file_problems",
    "keys_problems",
    "listen_problems",
    "same_folder_problems",
    "secret_file_problems",
    "smtp_answer_problems",
    "swapped_link_problems",
    "tls_pair_problems",
]

# How long `check` waits for an SMTP server to greet it: a server that takes longer is as good
# as down for the agent too (whose own client timeout is longer, but retries).
PROBE_TIMEOUT_S = 5.0


class Severity(enum.IntEnum):
    """The exit status ``check`` gives for the worst finding (documented: docs/operations.md)."""

    WARNING = 1
    ERROR = 2


@dataclass(frozen=True)
class Finding:
    """One thing wrong: where (file and key), what, and what to do about it."""

    severity: Severity
    file: str
    key: str
    problem: str
    fix: str = ""
    # A listening address another process holds: a standby's holder does, until it takes over.
    address_in_use: bool = False

    def line(self) -> str:
        where = f"{self.file}: {self.key}: " if self.key else f"{self.file}: "
        fix = f" — {self.fix}" if self.fix else ""
        text = f"{where}{self.problem}{fix}"
        return " ".join(text.split())  # one line, whatever the OS error said


def exit_status(findings: Iterable[Finding]) -> int:
    """0 when nothing was found, else the worst severity (1 warnings, 2 errors)."""
    return max((int(f.severity) for f in findings), default=0)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for this uid (a container)
        return f"uid {os.getuid()}"


def folder_problems(file: str, key: str, path: Path) -> list[Finding]:
    """A folder an agent writes into: it must exist, be a folder, and be writable."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return [
            Finding(
                Severity.ERROR,
                file,
                key,
                f"folder {path} does not exist",
                f"create it (maildiode init makes the layout; or: install -d -m 0700 "
                f"{path}), or correct the path",
            )
        ]
    except OSError as exc:
        return [
            Finding(
                Severity.ERROR,
                file,
                key,
                f"folder {path} cannot be reached: {exc.strerror}",
                "check the permissions of the folders above it",
            )
        ]
    if not stat.S_ISDIR(info.st_mode):
        return [
            Finding(
                Severity.ERROR, file, key, f"{path} is not a folder", "point the key at a folder"
            )
        ]
    if not os.access(path, os.W_OK | os.X_OK):
        return [
            Finding(
                Severity.ERROR,
                file,
                key,
                f"folder {path} is not writable by {_user()}",
                f"chown {_user()} {path} (the service user must own it), or run "
                "check as the service user",
            )
        ]
    return []


def file_folder_problems(file: str, key: str, path: Path) -> list[Finding]:
    """A file an agent creates or writes (a database, a log): its folder must be usable, and
    the file, if there, writable."""
    problems = folder_problems(file, key, path.parent)
    if not problems and path.exists() and not os.access(path, os.R_OK | os.W_OK):
        problems.append(
            Finding(
                Severity.ERROR,
                file,
                key,
                f"{path} is not readable and writable by {_user()}",
                f"chown {_user()} {path}",
            )
        )
    return problems


def same_folder_problems(file: str, folders: dict[str, Path | None]) -> list[Finding]:
    """Two keys that must name different folders (the link's send and receive sides)."""
    seen: dict[Path, str] = {}
    problems = []
    for key, path in folders.items():
        if path is None:
            continue
        real = Path(os.path.realpath(path))
        if real in seen:
            problems.append(
                Finding(
                    Severity.ERROR,
                    file,
                    key,
                    f"{path} is also {seen[real]}: this agent would read what it publishes",
                    "give each direction its own folder",
                )
            )
        seen.setdefault(real, key)
    return problems


def listen_problems(file: str, key: str, address: str) -> list[Finding]:
    """An address an agent listens on must be free and this host's: bind it once, let go."""
    host, port = parse_host_port(address)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return [
            Finding(
                Severity.ERROR,
                file,
                key,
                f"{host} does not resolve ({exc.strerror})",
                "give an IP address or a name of this host",
            )
        ]
    family, kind, proto, _, sockaddr = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the agents bind
        try:
            probe.bind(sockaddr)
        except OSError as exc:
            return [_bind_finding(file, key, address, exc)]
    return []


def _bind_finding(file: str, key: str, address: str, exc: OSError) -> Finding:
    if exc.errno == errno.EADDRINUSE:
        problem = f"{address}: address already in use"
        fix = "stop the program listening there (or the agent already running), or choose "
        fix += "another port"
        return Finding(Severity.ERROR, file, key, problem, fix, address_in_use=True)
    if exc.errno == errno.EADDRNOTAVAIL:
        problem, fix = f"{address} is not an address of this host", "give one of its addresses"
    elif exc.errno == errno.EACCES:
        problem = f"{address}: a port below 1024 needs privilege"
        fix = "run under the systemd unit (it grants CAP_NET_BIND_SERVICE) or use a port ≥ 1024"
    else:
        problem, fix = f"cannot listen on {address}: {exc.strerror}", "check the address"
    return Finding(Severity.ERROR, file, key, problem, fix)


def tls_pair_problems(file: str, key: str, cert: Path, private_key: Path) -> list[Finding]:
    """A certificate chain and its key must load together (the key must be the certificate's)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(str(cert), str(private_key))
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc) or "key values mismatch" in str(exc):
            problem = f"certificate {cert} does not match the key {private_key}"
        else:
            problem = f"{cert} and {private_key} are not a PEM certificate and key ({exc.reason})"
        return [
            Finding(
                Severity.ERROR, file, key, problem, "give the certificate and the key made with it"
            )
        ]
    except OSError as exc:
        return [
            Finding(
                Severity.ERROR,
                file,
                key,
                f"cannot read {cert} or {private_key}: {exc.strerror}",
                "make both readable by the service user",
            )
        ]
    return []


def secret_file_problems(file: str, key: str, path: Path, *, min_bytes: int) -> list[Finding]:
    """A secret the agent makes at first start (0600) or reads: either it is there and
    readable by the owner only, or its folder lets the agent make it."""
    if not path.exists() and not path.is_symlink():
        if os.access(path.parent, os.W_OK | os.X_OK):
            return []
        return [
            Finding(
                Severity.ERROR,
                file,
                key,
                f"{path} does not exist and {path.parent} is not writable by {_user()}, "
                "so it cannot be made at first start",
                f"make it once: head -c 32 /dev/urandom > {path} && chmod 600 {path} && "
                f"chown {_user()} {path}",
            )
        ]
    return _existing_secret_problems(file, key, path, min_bytes)


def _existing_secret_problems(file: str, key: str, path: Path, min_bytes: int) -> list[Finding]:
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            problem, fix = f"{path} is not a regular file", "point the key at the secret's file"
        elif info.st_mode & 0o077:
            problem = f"{path} is readable by others (mode {stat.S_IMODE(info.st_mode):04o})"
            fix = f"chmod 600 {path}"
        elif len(path.read_bytes()) < min_bytes:
            problem = f"{path} holds fewer than {min_bytes} bytes"
            fix = f"make a new one: head -c 32 /dev/urandom > {path} (links already sent stop)"
        else:
            return []
    except OSError as exc:
        problem = f"{path} cannot be read by {_user()}: {exc.strerror}"
        fix = f"chown {_user()} {path} && chmod 600 {path}"
    return [Finding(Severity.ERROR, file, key, problem, fix)]


def smtp_answer_problems(file: str, key: str, address: str) -> list[Finding]:
    """A server the agent sends to should greet (220) now; a warning if not: the agent keeps
    the mail and retries, but nothing will leave until it answers."""
    host, port = parse_host_port(address)
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S) as conn:
            conn.settimeout(PROBE_TIMEOUT_S)
            greeting = conn.recv(512)
            conn.sendall(b"QUIT\r\n")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return [
            Finding(
                Severity.WARNING,
                file,
                key,
                f"no SMTP server answers at {address} ({reason})",
                "start it, or correct the address; mail waits until it answers",
            )
        ]
    if not greeting.startswith(b"220"):
        said = greeting[:60].decode("ascii", "replace").strip() or "nothing"
        return [
            Finding(
                Severity.WARNING,
                file,
                key,
                f"the server at {address} did not greet with 220 (it said {said!r})",
                "check that it is an SMTP server and accepts this host",
            )
        ]
    return []


# Chunk files looked at per folder for the swapped-folders check: enough to tell, cheap on a
# folder with a backlog.
SWAP_SAMPLE_FILES = 20


def link_problems(
    file: str, link: LinkSection, signing_key: Path, *, keys_ok: bool
) -> list[Finding]:
    """The link's folders (or its TCP listener): present, writable, not the same, not
    swapped (the receive folder holding chunks signed with this agent's own key)."""
    if link.transport == "tcp":
        if link.tcp_listen is None:
            return []
        return listen_problems(file, "link.tcp_listen", link.tcp_listen)
    folders = {"link.send_dir": link.send_dir, "link.recv_dir": link.recv_dir}
    found = [p for key, path in folders.items() if path for p in folder_problems(file, key, path)]
    found += same_folder_problems(file, folders)
    if keys_ok and not found and link.send_dir is not None and link.recv_dir is not None:
        own = SigningKey.load(signing_key).key_id
        found += swapped_link_problems(
            file, link.send_dir, link.recv_dir, own_key_id=own, extension=link.extension
        )
    return found


def swapped_link_problems(
    file: str, send_dir: Path, recv_dir: Path, *, own_key_id: bytes, extension: str
) -> list[Finding]:
    """Chunks this agent signed waiting in its receive folder mean the link folders are swapped
    (or the linkage product carries them back): nothing would ever reach the peer."""
    if own_key_id not in _signers(recv_dir, extension):
        return []
    return [Finding(Severity.ERROR, file, "link.recv_dir",
                    f"{recv_dir} holds chunks signed by this agent's own key: link.send_dir "
                    f"({send_dir}) and link.recv_dir look swapped",
                    "exchange the two paths (the agent reads where the linkage product "
                    "delivers, and publishes where it picks up)")]  # fmt: skip


def _signers(folder: Path, extension: str) -> set[bytes]:
    """The key ids in the prefixes of a few chunk files in ``folder`` (not verified: a hint)."""
    found: set[bytes] = set()
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(extension))
    except OSError:
        return found
    for name in names[:SWAP_SAMPLE_FILES]:
        try:
            with open(folder / name, "rb") as chunk:
                untrusted_prefix = chunk.read(PREFIX_STRUCT.size)
        except OSError:
            continue
        if len(untrusted_prefix) == PREFIX_STRUCT.size:
            magic, *_, untrusted_key_id = PREFIX_STRUCT.unpack(untrusted_prefix)
            if magic == MAGIC:
                found.add(untrusted_key_id)
    return found


def key_file_problems(
    file: str, key: str, path: Path, load: Callable[[Path], object]
) -> list[Finding]:
    """A key file must hold a key of the kind the key names (``load`` is protocol.keys' loader
    of that kind: SigningKey.load, VerifyKey.load, ...); the config load checked the file's
    existence and mode with the same rules."""
    try:
        load(path)
    except KeyFileError as exc:
        return [Finding(Severity.ERROR, file, key, str(exc), _key_fix(str(exc)))]
    return []


def _key_fix(problem: str) -> str:
    if "does not exist" in problem:
        return "correct the path, or make a pair with: maildiode keygen DIR"
    if "chmod" in problem or "cannot read" in problem:
        return "make it the service user's, mode 0600 for a private key"
    return "give the file maildiode keygen made for this key (a PEM key of the right kind)"


def keys_problems(file: str, keys: KeysSection) -> list[Finding]:
    """Each key file of ``[keys]`` holds a key of its kind (a public key given as our signing
    key, garbage, an X25519 key where an Ed25519 one belongs...)."""
    found = key_file_problems(file, "keys.signing_key", keys.signing_key, SigningKey.load)
    for path in keys.peer_keys:
        found += key_file_problems(file, "keys.peer_keys", path, VerifyKey.load)
    if keys.decrypt_key is not None:
        found += key_file_problems(file, "keys.decrypt_key", keys.decrypt_key, EncryptionKey.load)
    if keys.encrypt_to is not None:
        load = EncryptionPublicKey.load
        found += key_file_problems(file, "keys.encrypt_to", keys.encrypt_to, load)
    if keys.at_rest_key is not None:
        found += at_rest_key_problems(file, keys.at_rest_key)
    return found


def at_rest_key_problems(file: str, path: Path) -> list[Finding]:
    """The at-rest key file loads (a bad one would stop the agent's start)."""
    try:
        AtRestKeyring.load(path)
    except AtRestError as exc:
        fix = "give the file maildiode keygen --at-rest made (mode 0600), or restore it"
        return [Finding(Severity.ERROR, file, "keys.at_rest_key", str(exc), fix)]
    return []
