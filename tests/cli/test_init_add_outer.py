"""`maildiode init DIR --add-outer ID` (issue 23): one more outer agent beside the pair that
`init` made — its keys, its config, its folder pair and its stream in inner.toml — which
`maildiode check` accepts; the pair's own files stay as they were; mistakes are named and
nothing is written. The agents started from the result pass mail: tests/e2e/
test_two_outer_agents.py (its stack is made with this command)."""

from __future__ import annotations

import hashlib
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from inner_agent.outbound.directory import Directory
from maildiode.commands.check import load_agent_config
from tests.support.command import maildiode
from tests.support.greeter import smtp_greeter


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[str, str]]:
    with smtp_greeter() as internal, smtp_greeter() as relay:
        yield internal, relay


def _pair(root: Path, servers: tuple[str, str]) -> Path:
    internal, relay = servers
    made = maildiode("init", str(root), "--smtp-port", "3525", "--relay", relay,
                     "--internal-smtp", internal)  # fmt: skip
    assert made.returncode == 0, made.stderr
    directory = Directory(root / "inner" / "directory.db")  # else check warns: no approver
    directory.import_csv(b"email,name,department,role\nhead@corp.example,H,Sales,head\n")
    directory.close()
    return root


def _digests(root: Path) -> dict[str, str]:
    """Every file init made for the pair but inner.toml, by its content."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "inner.toml"}  # fmt: skip


def test_an_added_outer_agent_gets_its_own_keys_folders_config_and_stream(
    tmp_path: Path, servers: tuple[str, str]
) -> None:
    root = _pair(tmp_path / "x", servers)
    pair = _digests(root)
    added = maildiode("init", str(root), "--add-outer", "mx2", "--smtp-port", "3535")
    assert added.returncode == 0, added.stderr
    assert f"maildiode carry {root}/link/mx2/in/send {root}/link/mx2/in/recv" in added.stdout
    assert f"maildiode outer -c {root}/outer-mx2.toml" in added.stdout
    assert {k: v for k, v in _digests(root).items() if k in pair} == pair  # the pair untouched
    for name in ("mx2.key", "mx2-enc.key", "mx2-at-rest.keys"):
        assert stat.S_IMODE((root / "keys" / name).stat().st_mode) == 0o600, name
    for private in ("mx2", "mx2/spool"):
        assert stat.S_IMODE((root / private).stat().st_mode) == 0o700, private
    mx2 = load_agent_config(root / "outer-mx2.toml", "outer")
    outer = load_agent_config(root / "outer.toml", "outer")
    inner = load_agent_config(root / "inner.toml", "inner")
    assert (mx2.link.stream, mx2.smtp.listen) == ("mx2", "127.0.0.1:3535")
    assert mx2.smtp.domains == outer.smtp.domains  # the first one's settings
    assert mx2.delivery.smarthost == outer.delivery.smarthost is not None
    assert mx2.keys.signing_key == root / "keys/mx2.key"
    assert mx2.keys.peer_keys == outer.keys.peer_keys == (root / "keys/inner.pub",)
    assert mx2.keys.encrypt_to == outer.keys.encrypt_to
    assert mx2.keys.decrypt_key == root / "keys/mx2-enc.key"
    assert mx2.keys.at_rest_key == root / "keys/mx2-at-rest.keys"
    assert (mx2.spool.dir, mx2.audit.path) == (root / "mx2/spool", root / "mx2/audit.db")
    (stream,) = inner.streams.outer
    assert stream.id == "mx2"
    assert (stream.recv_dir, mx2.link.send_dir) == (root / "link/mx2/in/recv",
                                                    root / "link/mx2/in/send")  # fmt: skip
    assert (stream.send_dir, mx2.link.recv_dir) == (root / "link/mx2/out/send",
                                                    root / "link/mx2/out/recv")  # fmt: skip
    assert stream.peer_keys == (root / "keys/mx2.pub",)
    assert stream.encrypt_to == root / "keys/mx2-enc.pub"
    for config in ("outer-mx2.toml", "inner.toml", "outer.toml"):
        checked = maildiode("check", "-c", str(root / config))
        assert checked.returncode == 0, (config, checked.stdout, checked.stderr)

    third = maildiode("init", str(root), "--add-outer", "mx3", "--smtp-port", "3545")
    assert third.returncode == 0, third.stderr
    inner = load_agent_config(root / "inner.toml", "inner")
    assert [s.id for s in inner.streams.outer] == ["mx2", "mx3"]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--add-outer", "mx2", "--smtp-port", "3536"), "already lists the outer agent 'mx2'"),
        (("--add-outer", "inbound", "--smtp-port", "3536"), "the pair's own stream"),
        (("--add-outer", "MX_2", "--smtp-port", "3536"), "is not a stream id"),
        (("--add-outer", "keys", "--smtp-port", "3536"), "keys exists"),
        (("--add-outer", "mx4"), "port 2525 is the first outer agent's"),
        (("--add-outer", "mx4", "--smtp-port", "3536", "--domain", "b.example"), "--domain"),
        (("--add-outer", "mx4", "--smtp-port", "70000"), "port 70000 is out of range"),
    ],
)
def test_a_mistake_is_named_and_nothing_is_written(
    tmp_path: Path, args: tuple[str, ...], said: str
) -> None:
    root = tmp_path / "x"
    assert maildiode("init", str(root)).returncode == 0
    assert maildiode("init", str(root), "--add-outer", "mx2", "--smtp-port", "3535").returncode == 0
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    refused = maildiode("init", str(root), *args)
    assert refused.returncode == 2
    assert said in refused.stderr
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_without_an_installation_there_is_nothing_to_add_to(tmp_path: Path) -> None:
    refused = maildiode("init", str(tmp_path / "none"), "--add-outer", "mx2", "--smtp-port", "3535")
    assert refused.returncode == 2
    assert "holds no outer.toml" in refused.stderr
    assert not (tmp_path / "none").exists()


def test_an_outer_toml_edited_past_what_init_wrote_is_named_not_guessed(tmp_path: Path) -> None:
    """The new agent's config is outer.toml with lines set; a section header it cannot find
    (here with a comment after it) is refused before anything is written."""
    root = tmp_path / "x"
    assert maildiode("init", str(root)).returncode == 0
    outer = root / "outer.toml"
    outer.write_text(outer.read_text().replace("[audit]\n", "[audit]   # ours\n"))
    refused = maildiode("init", str(root), "--add-outer", "mx2", "--smtp-port", "3535")
    assert refused.returncode == 2
    assert "outer.toml has no line [audit] to set path in" in refused.stderr
    assert not (root / "outer-mx2.toml").exists()
    assert not (root / "keys/mx2.key").exists()
