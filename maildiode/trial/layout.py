"""A ready pair of configs, keys and folders for a trial on one machine (``maildiode init``).

Layout (the link folder names are part of the contract with the linkage product)::

    DIR/outer.toml  DIR/inner.toml
    DIR/keys/outer.key (0600)  outer.pub  inner.key (0600)  inner.pub
    DIR/keys/outer-enc.key (0600)  outer-enc.pub  inner-enc.key (0600)  inner-enc.pub
                                      (X25519: the link is encrypted both ways, decision D56)
    DIR/keys/outer-at-rest.keys (0600)  inner-at-rest.keys (0600)   (stored mail sealed, issue 21)
    DIR/link/in/send   outer publishes   -> linkage pickup, internet side
    DIR/link/in/recv   linkage delivery  -> inner reads
    DIR/link/out/send  inner publishes   -> linkage pickup, intranet side
    DIR/link/out/recv  linkage delivery  -> outer reads
    DIR/outer/ ...     outer agent state (spool/, audit log)
    DIR/inner/ ...     inner agent state (protocol state, queues, quarantine, outbound/, audit log)
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from inner_agent.config import example_toml as inner_example
from outer_agent.config import example_toml as outer_example
from protocol import EncryptionKey, SigningKey
from protocol.atrest import AtRestKeyring
from protocol.durable import write_durably

__all__ = [
    "DEFAULT_DOMAIN",
    "LINK_FOLDERS",
    "PRIVATE_FOLDERS",
    "TrialPorts",
    "make_folders",
    "make_keys",
    "make_web_certificate",
    "write_configs",
]

LINK_FOLDERS = ("link/in/send", "link/in/recv", "link/out/send", "link/out/recv")
# The agents refuse a configured folder that does not exist (a misspelt one would otherwise be
# made silently): every folder the configs name is made here, with the state folders private.
PRIVATE_FOLDERS = ("keys", "outer", "outer/spool", "inner", "inner/outbound")
DEFAULT_DOMAIN = "corp.example"


def make_folders(root: Path) -> None:
    for name in LINK_FOLDERS:
        (root / name).mkdir(parents=True, exist_ok=True)
    for name in PRIVATE_FOLDERS:
        (root / name).mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(root / name, 0o700)


def make_keys(keys: Path) -> None:
    """Each agent's signing pair, link encryption pair and at-rest key file."""
    for agent in ("outer", "inner"):
        key = SigningKey.generate()
        key.save(keys / f"{agent}.key")
        key.verify_key.save(keys / f"{agent}.pub")
        link = EncryptionKey.generate()
        link.save(keys / f"{agent}-enc.key")
        link.public_key.save(keys / f"{agent}-enc.pub")
        AtRestKeyring.generate().save(keys / f"{agent}-at-rest.keys")


def make_web_certificate(keys: Path, names: Sequence[str]) -> tuple[Path, Path]:
    """A self-signed certificate for the trial's web listener (``keys/web.crt``, ``web.key``
    0600), valid for ``names`` (host names or IP addresses) for one year. For a trial only:
    browsers warn about it; a site uses a certificate from its own CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    alternatives: list[x509.GeneralName] = []
    for name in names:
        try:
            alternatives.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternatives.append(x509.DNSName(name))
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = keys / "web.crt", keys / "web.key"
    write_durably(cert_path, certificate.public_bytes(serialization.Encoding.PEM), mode=0o644)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())  # fmt: skip
    write_durably(key_path, pem, mode=0o600)
    return cert_path, key_path


@dataclass(frozen=True)
class TrialPorts:
    """Where a trial pair listens and sends, all on loopback unless given otherwise."""

    smtp_port: int  # outer agent's SMTP intake
    outbound_port: int  # inner agent's outbound intake
    web_port: int  # inner agent's web pages
    internal_smtp: str = "127.0.0.1:2526"  # the internal mail server, HOST:PORT
    relay: str | None = None  # the outer agent's smarthost for approved mail, HOST:PORT


def write_configs(root: Path, domains: Sequence[str], ports: TrialPorts) -> None:
    """``outer.toml`` and ``inner.toml`` in ``root``: the agents' example files, filled in."""
    domains = tuple(domains or [DEFAULT_DOMAIN])
    outer = outer_example(
        domains=domains,
        smtp_listen=f"127.0.0.1:{ports.smtp_port}",
        relay=ports.relay,
        **_key_files("outer", "inner"),
    )
    inner = inner_example(
        domains=domains,
        internal_smtp=ports.internal_smtp,
        outbound_listen=f"127.0.0.1:{ports.outbound_port}",
        web_listen=f"127.0.0.1:{ports.web_port}",
        **_key_files("inner", "outer"),
    )
    (root / "outer.toml").write_text(outer, encoding="utf-8")
    (root / "inner.toml").write_text(inner, encoding="utf-8")


def _key_files(agent: str, peer: str) -> dict[str, str]:
    return {
        "at_rest_key": f"keys/{agent}-at-rest.keys",
        "decrypt_key": f"keys/{agent}-enc.key",
        "encrypt_to": f"keys/{peer}-enc.pub",
    }
