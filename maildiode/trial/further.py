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
from dataclasses import dataclass
from pathlib import Path

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
    problem = _pair_problem(further, outer, inner)
    try:
        _config_text(further, outer)
    except ValueError as exc:
        problem = problem or f"{exc}: give the new agent's config by hand (docs §3a)"
    taken = next((p for p in further.made_paths() if p.exists() or p.is_symlink()), None)
    if problem is None and taken is not None:
        problem = f"{taken} exists: the id {stream!r} is taken here; choose another"
    return problem


def _load_pair(root: Path) -> tuple[OuterConfig, InnerConfig]:
    outer = load_config(root / "outer.toml", OuterConfig)
    return outer, load_config(root / "inner.toml", InnerConfig)


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


def add_outer(further: FurtherOuter) -> None:
    """Write what :func:`further_outer_problem` found nothing against: keys, folders, its
    config, then its entry in ``inner.toml`` (opening ``[streams]`` when there is none)."""
    outer, inner = _load_pair(further.root)
    text = _config_text(further, outer)
    _make_keys(further)
    _make_folders(further)
    template = further.root / "outer.toml"
    write_durably(further.config, text.encode(), mode=template.stat().st_mode & 0o777)
    encrypted = outer.keys.decrypt_key is not None
    entry = _stream_entry(further, encrypted, open_table=inner.streams is None)
    path = further.root / "inner.toml"
    before = path.read_text(encoding="utf-8")
    write_durably(path, (before.rstrip("\n") + "\n" + entry).encode(),
                  mode=path.stat().st_mode & 0o777)  # fmt: skip


def _config_text(further: FurtherOuter, outer: OuterConfig) -> str:
    """outer.toml with what differs set; raises ValueError when a section it sets is missing
    (a file edited past what ``init`` wrote)."""
    text = (further.root / "outer.toml").read_text(encoding="utf-8")
    for (section, key), value in _settings(further, outer).items():
        if f"[{section}]\n" not in text:
            raise ValueError(f"outer.toml has no line [{section}] to set {key} in")
        text = set_key(text, section, key, value)
    return text


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


def _settings(further: FurtherOuter, outer: OuterConfig) -> dict[tuple[str, str], str]:
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
    if outer.keys.at_rest_key is not None:
        settings["keys", "at_rest_key"] = f'"{further.key("-at-rest.keys")}"'
    if outer.keys.decrypt_key is not None:
        settings["keys", "decrypt_key"] = f'"{further.key("-enc.key")}"'
    if outer.log.file is not None:
        settings["log", "file"] = f'"{stream}/{stream}.log"'
    return settings


def _stream_entry(further: FurtherOuter, encrypted: bool, *, open_table: bool) -> str:
    """The lines appended to inner.toml; ``open_table``: it has no ``[streams]`` yet."""
    lines = []
    if open_table:
        lines += ["", "# Several outer agents (docs/operations.md §3a; decisions D74, D75).",
                  "[streams]"]  # fmt: skip
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
