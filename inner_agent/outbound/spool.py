"""The outbound spool: one file per accepted mail, durable before the intake answers 250.

Write discipline (as the inbound intake and Postfix, by ``protocol.durable.write_durably``):
write a temp file in ``tmp/``, fsync, rename into ``mail/<id>``, fsync ``mail/``. A record is
versioned and length-checked, so a torn or foreign file is recognised and quarantined with a
reason instead of being half-processed.

Record: ``MDOUT1\\n`` + one line of JSON (envelope, ``size``) + ``\\n`` + the original bytes.
With an at-rest key the whole record is sealed (``protocol.atrest``: a held mail carrying a
resident number never sits in clear, issue 21); a record from before still reads.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agentkit.storeretention import move_into_quarantine
from inner_agent.outbound.errors import SpoolCorrupt
from protocol.atrest import CLEAR, AtRest
from protocol.durable import write_durably
from protocol.errors import AtRestError
from protocol.limits import BUNDLE_ID_LEN

__all__ = ["Spool", "SpooledMail", "new_mail_id"]

MAGIC = b"MDOUT1\n"
# An envelope line longer than this is not ours (100 recipients of 254 bytes fit easily).
MAX_HEADER_BYTES = 64 << 10


def new_mail_id() -> str:
    """32 hex digits; also the protocol bundle id (16 bytes) of the mail."""
    return secrets.token_hex(BUNDLE_ID_LEN)


@dataclass(frozen=True)
class SpooledMail:
    mail_id: str
    mail_from: str
    rcpt_to: tuple[str, ...]
    received_at: float
    client_addr: str
    helo: str


class Spool:
    """Folders ``mail/`` (accepted), ``tmp/`` (being written), ``quarantine/``."""

    def __init__(self, root: Path, *, at_rest: AtRest = CLEAR) -> None:
        self.root = root
        self.at_rest = at_rest
        for name in ("mail", "tmp", "quarantine"):
            (root / name).mkdir(parents=True, exist_ok=True, mode=0o700)

    def store(self, mail: SpooledMail, data: bytes) -> None:
        """Durable when it returns: file fsynced, renamed into place, folder fsynced."""
        header = dict(asdict(mail), rcpt_to=list(mail.rcpt_to), size=len(data))
        record = MAGIC + json.dumps(header).encode() + b"\n" + data
        sealed = self.at_rest.seal(record)
        write_durably(self._path(mail.mail_id), sealed, staging=self.root / "tmp")

    def load(self, mail_id: str) -> tuple[SpooledMail, bytes]:
        path = self._path(mail_id)
        stored = path.read_bytes()
        if stored.startswith(MAGIC):  # written before an at-rest key was configured
            return _decode(stored, str(path))
        try:
            return _decode(self.at_rest.open(stored, str(path)), str(path))
        except AtRestError as exc:
            raise SpoolCorrupt(str(exc)) from None

    def ids(self) -> list[str]:
        return sorted(p.name for p in (self.root / "mail").iterdir() if _is_mail_id(p.name))

    def remove(self, mail_id: str) -> None:
        self._path(mail_id).unlink(missing_ok=True)

    def quarantine(self, mail_id: str, reason: str) -> None:
        """Move the mail into ``quarantine/`` with its reason file, the reason first: the
        retention prune never finds it there without one (D87)."""
        folder = self.root / "quarantine"
        move_into_quarantine(self._path(mail_id), folder / mail_id, f"{reason}\n".encode(),
                             reason_path=folder / f"{mail_id}.reason",
                             staging=self.root / "tmp")  # fmt: skip

    def _path(self, mail_id: str) -> Path:
        if not _is_mail_id(mail_id):
            raise SpoolCorrupt(f"{mail_id!r} is not a mail id")
        return self.root / "mail" / mail_id


def _is_mail_id(name: str) -> bool:
    return len(name) == 32 and all(c in "0123456789abcdef" for c in name)


def _decode(untrusted: bytes, where: str) -> tuple[SpooledMail, bytes]:
    if not untrusted.startswith(MAGIC):
        raise SpoolCorrupt(f"{where}: not an outbound spool record (no {MAGIC!r})")
    end = untrusted.find(b"\n", len(MAGIC), len(MAGIC) + MAX_HEADER_BYTES)
    if end < 0:
        raise SpoolCorrupt(f"{where}: envelope line missing or longer than {MAX_HEADER_BYTES}")
    try:
        header: dict[str, Any] = json.loads(untrusted[len(MAGIC) : end])
        size = int(header.pop("size"))
        mail = SpooledMail(**dict(header, rcpt_to=tuple(header["rcpt_to"])))
    except (ValueError, KeyError, TypeError) as exc:
        raise SpoolCorrupt(f"{where}: envelope unreadable ({exc})") from None
    data = untrusted[end + 1 :]
    if len(data) != size:
        raise SpoolCorrupt(f"{where}: torn record ({len(data)} of {size} bytes)")
    return mail, data
