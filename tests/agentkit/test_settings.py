"""Config files are refused with file, key and problem named."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agentkit.settings import (
    ConfigError,
    HostPort,
    KeysSection,
    LinkSection,
    LogSection,
    Section,
    load_config,
    parse_host_port,
)


class SmtpSection(Section):
    listen: HostPort = "127.0.0.1:25"
    max_recipients: int = 100


class SampleConfig(Section):
    smtp: SmtpSection = SmtpSection()
    log: LogSection = LogSection()
    link: LinkSection = LinkSection()


def load_text(tmp_path: Path, text: str, model: type[Section] = SampleConfig) -> Section:
    path = tmp_path / "outer.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, model)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[smtp]\nlisten = "127.0.0.1:70000"',
            "outer.toml: smtp.listen: port 70000 is out of range",
        ),
        (
            '[smtp]\nlisen = "127.0.0.1:25"',
            'outer.toml: smtp.lisen: unknown key (did you mean "listen"?)',
        ),
        ('[smtp]\nlisten = "nohost"', "outer.toml: smtp.listen: 'nohost' is not HOST:PORT"),
        ('[smtp]\nmax_recipients = "many"', "outer.toml: smtp.max_recipients: "),
        ('[log]\nlevel = "loud"', "outer.toml: log.level: "),
        ("[link]\nchunk_size = 10", "outer.toml: link.chunk_size: "),
        ('[link]\nextension = ".EXE"', "outer.toml: link.extension: "),
        ("[smtp\n", "outer.toml: is not valid TOML"),
        ("colour = 1\n", "outer.toml: colour: unknown key"),
    ],
)
def test_refusals_name_file_key_and_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, text)
    assert str(caught.value).startswith(message)


def test_valid_file_loads_with_defaults_and_relative_paths(tmp_path: Path) -> None:
    config = load_text(tmp_path, '[smtp]\nlisten = "[::1]:2525"\n[link]\nsend_dir = "link/in/send"')
    assert isinstance(config, SampleConfig)
    assert parse_host_port(config.smtp.listen) == ("::1", 2525)
    assert config.link.send_dir == tmp_path / "link/in/send"
    assert config.smtp.max_recipients == 100


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.toml", SampleConfig)


def test_config_objects_are_frozen(tmp_path: Path) -> None:
    config = load_text(tmp_path, "")
    with pytest.raises(Exception, match="frozen"):
        config.smtp = SmtpSection()  # type: ignore[misc]


class KeysOnly(Section):
    keys: KeysSection


def write_key(path: Path, mode: int) -> Path:
    path.write_bytes(b"key material")
    os.chmod(path, mode)
    return path


def test_private_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    write_key(tmp_path / "outer.key", 0o644)
    write_key(tmp_path / "inner.pub", 0o644)
    text = '[keys]\nsigning_key = "outer.key"\npeer_keys = ["inner.pub"]\n'
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, text, KeysOnly)
    assert "keys.signing_key" in str(caught.value)
    assert "readable by others (mode 0644)" in str(caught.value)
    assert "chmod 600" in str(caught.value)


def test_private_key_0600_and_missing_public_key(tmp_path: Path) -> None:
    write_key(tmp_path / "outer.key", 0o600)
    good = '[keys]\nsigning_key = "outer.key"\npeer_keys = ["inner.pub"]\n'
    with pytest.raises(ConfigError, match=r"keys.peer_keys: file .*inner.pub does not exist"):
        load_text(tmp_path, good, KeysOnly)
    write_key(tmp_path / "inner.pub", 0o644)
    config = load_text(tmp_path, good, KeysOnly)
    assert isinstance(config, KeysOnly)
    assert config.keys.peer_keys == (tmp_path / "inner.pub",)


def test_at_most_two_peer_keys(tmp_path: Path) -> None:
    write_key(tmp_path / "outer.key", 0o600)
    for name in ("a.pub", "b.pub", "c.pub"):
        write_key(tmp_path / name, 0o644)
    text = '[keys]\nsigning_key = "outer.key"\npeer_keys = ["a.pub", "b.pub", "c.pub"]\n'
    with pytest.raises(ConfigError, match="keys.peer_keys"):
        load_text(tmp_path, text, KeysOnly)
