"""One more outer agent for an installation ``maildiode init`` made (issue 23; D74, D75):
``maildiode init DIR --add-outer ID``. The pair's files are read, never changed, but for one
``[[streams.outer]]`` entry appended to ``inner.toml``.

Beside the pair, in DIR::

    DIR/outer-ID.toml            its config: outer.toml's settings with its own stream, SMTP
                                 port, keys, spool, audit log and link folders
    DIR/keys/ID.key (0600)  ID.pub          its Ed25519 pair (the inner agent verifies with ID.pub)
    DIR/keys/ID-enc.key (0600)  ID-enc.pub  its X25519 pair (when the pair's link is encrypted)
    DIR/keys/ID-at-rest.keys (0600)         its at-rest key (when the pair's outer agent seals)
    DIR/link/ID/in/send  in/recv  out/send  out/recv   its folder pair through the linkage
    DIR/ID/  DIR/ID/spool        its state (private)
    DIR/inner.toml               + [[streams.outer]] id = "ID", its folders and keys
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentkit.settings import ConfigError, load_config, parse_host_port
from agentkit.streams import PAIR_INBOUND, PAIR_OUTBOUND, check_stream_id
from inner_agent.config import InnerConfig
from maildiode.trial.stack import set_key
from outer_agent.config import OuterConfig
from protocol import EncryptionKey, SigningKey
from protocol.atrest import AtRestKeyring
from protocol.durable import write_durably

__all__ = ["FurtherOuter", "add_outer", "further_outer_problem"]

_CHANNELS = ("in/send", "in/recv", "out/send", "out/recv")


@dataclass(frozen=True)
class FurtherOuter:
    """What the new outer agent gets, named from its stream id ``stream``."""

    root: Path
    stream: str
    smtp_port: int

    @property
    def config(self) -> Path:
        # "outer" in its name: every command tells from the name which agent a file is for
        return self.root / f"outer-{self.stream}.toml"

    def key(self, suffix: str) -> str:
        """A key file's path as the configs write it (relative to DIR)."""
        return f"keys/{self.stream}{suffix}"

    def link(self, channel: str) -> str:
        return f"link/{self.stream}/{channel}"

    def made_paths(self) -> list[Path]:
        """Every file or folder this writes; none may exist before."""
        keys = (".key", ".pub", "-enc.key", "-enc.pub", "-at-rest.keys")
        return [self.config, self.root / self.stream, self.root / "link" / self.stream,
                *(self.root / self.key(suffix) for suffix in keys)]  # fmt: skip


def further_outer_problem(further: FurtherOuter) -> str | None:
    """A sentence saying why ``further`` cannot be added to its DIR, or None."""
    root, stream = further.root, further.stream
    try:
        check_stream_id(stream)
    except ValueError as exc:
        return f"--add-outer: {exc}"
    if stream in (PAIR_INBOUND, PAIR_OUTBOUND):
        return f"--add-outer: {stream!r} is the pair's own stream; give the new outer agent an id"
    for name in ("outer.toml", "inner.toml"):
        if not (root / name).is_file():
            return f"{root} holds no {name}: --add-outer adds to what `maildiode init` made there"
    try:
        outer, inner = _load_pair(root)
    except ConfigError as exc:
        return f"the installation does not load, fix it first: {exc}"
    return _pair_problem(further, outer, inner) or next(
        (f"{path} exists: the id {stream!r} is taken here; choose another"
         for path in further.made_paths() if path.exists() or path.is_symlink()), None,
    )  # fmt: skip


def _load_pair(root: Path) -> tuple[OuterConfig, InnerConfig]:
    return load_config(root / "outer.toml", OuterConfig), load_config(root / "inner.toml",
                                                                      InnerConfig)  # fmt: skip


def _pair_problem(further: FurtherOuter, outer: OuterConfig, inner: InnerConfig) -> str | None:
    if not 1 <= further.smtp_port <= 65535:
        return f"--smtp-port: port {further.smtp_port} is out of range (1-65535)"
    if further.smtp_port == parse_host_port(outer.smtp.listen)[1]:
        return (f"--smtp-port: port {further.smtp_port} is the first outer agent's "
                "([smtp] listen in outer.toml); give the new one a port of its own")  # fmt: skip
    if outer.link.transport != "folder" or inner.link.transport != "folder":
        return ("--add-outer makes folder pairs; with link.transport = \"tcp\" add the stream by "
                "hand (docs/operations.md §3a)")  # fmt: skip
    known = [] if inner.streams is None else [s.id for s in inner.streams.outer]
    if further.stream in known:
        return f"inner.toml already lists the outer agent {further.stream!r} in [[streams.outer]]"
    return None


def add_outer(further: FurtherOuter, *, streams: Mapping[str, str] | None = None) -> None:
    """Write what :func:`further_outer_problem` found nothing against: keys, folders, its
    config, then its entry in ``inner.toml``. ``streams``: ``[streams]`` settings (TOML values)
    written when inner.toml has no ``[streams]`` table yet."""
    outer, inner = _load_pair(further.root)
    sealed, encrypted = outer.keys.at_rest_key is not None, outer.keys.decrypt_key is not None
    _make_keys(further)
    _make_folders(further)
    template = further.root / "outer.toml"
    text = template.read_text(encoding="utf-8")
    for (section, key), value in _settings(further, outer, sealed, encrypted).items():
        text = set_key(text, section, key, value)
    write_durably(further.config, text.encode(), mode=template.stat().st_mode & 0o777)
    entry = _stream_entry(further, encrypted, None if inner.streams is not None else streams or {})
    path = further.root / "inner.toml"
    before = path.read_text(encoding="utf-8")
    write_durably(path, (before.rstrip("\n") + "\n" + entry).encode(),
                  mode=path.stat().st_mode & 0o777)  # fmt: skip


def _make_keys(further: FurtherOuter) -> None:
    root = further.root
    key = SigningKey.generate()
    key.save(root / further.key(".key"))
    key.verify_key.save(root / further.key(".pub"))
    link = EncryptionKey.generate()
    link.save(root / further.key("-enc.key"))
    link.public_key.save(root / further.key("-enc.pub"))
    AtRestKeyring.generate().save(root / further.key("-at-rest.keys"))


def _make_folders(further: FurtherOuter) -> None:
    for channel in _CHANNELS:
        (further.root / further.link(channel)).mkdir(parents=True)
    for name in (further.stream, f"{further.stream}/spool"):
        (further.root / name).mkdir(mode=0o700)
        os.chmod(further.root / name, 0o700)  # mkdir's mode is masked by the umask


def _settings(
    further: FurtherOuter, outer: OuterConfig, sealed: bool, encrypted: bool
) -> dict[tuple[str, str], str]:
    """What differs from outer.toml (TOML values). Its link stream names it to the inner
    agent; every file it writes is its own, so both can run on one host for a trial."""
    stream = further.stream
    settings = {
        ("smtp", "listen"): f'"{parse_host_port(outer.smtp.listen)[0]}:{further.smtp_port}"',
        ("spool", "dir"): f'"{stream}/spool"',
        ("link", "stream"): f'"{stream}"',
        ("link", "send_dir"): f'"{further.link("in/send")}"',
        ("link", "recv_dir"): f'"{further.link("out/recv")}"',
        ("keys", "signing_key"): f'"{further.key(".key")}"',
        ("audit", "path"): f'"{stream}/audit.db"',
    }
    if sealed:
        settings["keys", "at_rest_key"] = f'"{further.key("-at-rest.keys")}"'
    if encrypted:
        settings["keys", "decrypt_key"] = f'"{further.key("-enc.key")}"'
    if outer.log.file is not None:
        settings["log", "file"] = f'"{stream}/{stream}.log"'
    return settings


def _stream_entry(further: FurtherOuter, encrypted: bool, streams: Mapping[str, Any] | None) -> str:
    """The lines appended to inner.toml; ``streams`` (None: the table exists) opens [streams]."""
    lines = []
    if streams is not None:
        lines += ["", "# Several outer agents (docs/operations.md §3a; decisions D74, D75).",
                  "[streams]", *(f"{key} = {value}" for key, value in streams.items())]  # fmt: skip
    lines += [
        "",
        f"[[streams.outer]]                 # added by maildiode init --add-outer {further.stream}",
        f'id = "{further.stream}"',
        f'recv_dir = "{further.link("in/recv")}"',
        f'send_dir = "{further.link("out/send")}"',
        f'peer_keys = ["{further.key(".pub")}"]',
    ]
    if encrypted:
        lines.append(f'encrypt_to = "{further.key("-enc.pub")}"')
    return "\n".join(lines) + "\n"
