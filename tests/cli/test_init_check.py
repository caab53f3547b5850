"""`maildiode init DIR` writes a matched pair that `maildiode check` accepts; errors are named."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from inner_agent.outbound.directory import Directory
from maildiode.commands.check import load_agent_config
from tests.support.greeter import smtp_greeter

LINKS = ("link/in/send", "link/in/recv", "link/out/send", "link/out/recv")


def maildiode(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "maildiode", *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[str, str]]:
    """(internal server, relay): check asks both whether they answer (a warning, exit 1, if
    not)."""
    with smtp_greeter() as internal, smtp_greeter() as relay:
        yield internal, relay


@pytest.fixture(scope="module")
def trial(tmp_path_factory: pytest.TempPathFactory, servers: tuple[str, str]) -> Path:
    root = tmp_path_factory.mktemp("trial") / "x"
    internal, relay = servers
    result = maildiode("init", str(root), "--domain", "bank.example", "--domain", "card.example",
                       "--smtp-port", "3525", "--relay", relay, "--internal-smtp", internal)  # fmt: skip
    assert result.returncode == 0, result.stderr
    # check warns of an empty directory: an approver for the one department
    directory = Directory(root / "inner" / "directory.db")
    directory.import_csv(b"email,name,department,role\nhead@bank.example,H,Sales,head\n")
    directory.close()
    return root


def test_init_writes_contract_folders_and_private_keys(trial: Path) -> None:
    for name in LINKS:
        assert (trial / name).is_dir(), name
    for agent in ("outer", "inner"):
        mode = stat.S_IMODE((trial / "keys" / f"{agent}.key").stat().st_mode)
        assert mode == 0o600, (agent, oct(mode))
        assert (trial / "keys" / f"{agent}.pub").is_file()


def test_check_accepts_both_generated_configs(trial: Path) -> None:
    for agent in ("outer", "inner"):
        result = maildiode("check", "-c", str(trial / f"{agent}.toml"))
        assert result.returncode == 0, result.stderr
        assert "ok" in result.stdout


def test_generated_configs_match_each_other(trial: Path) -> None:
    outer = load_agent_config(trial / "outer.toml", "outer")
    inner = load_agent_config(trial / "inner.toml", "inner")
    assert outer.link.send_dir == trial / "link/in/send"
    assert inner.link.recv_dir == trial / "link/in/recv"
    assert inner.link.send_dir == trial / "link/out/send"
    assert outer.link.recv_dir == trial / "link/out/recv"
    assert outer.keys.peer_keys == (trial / "keys/inner.pub",)
    assert inner.keys.peer_keys == (trial / "keys/outer.pub",)
    assert outer.smtp.listen == "127.0.0.1:3525"


def test_misspelt_key_fails_naming_the_key(trial: Path, tmp_path: Path) -> None:
    text = (trial / "outer.toml").read_text(encoding="utf-8")
    broken = trial / "outer-broken.toml"
    broken.write_text(text.replace("\nlisten", "\nlisten_on", 1), encoding="utf-8")
    result = maildiode("check", "-c", str(broken))
    assert result.returncode == 2  # an error (issue 22: 0 ok, 1 warnings, 2 errors)
    assert "outer-broken.toml: smtp.listen_on: unknown key" in result.stderr


def test_ocr_asked_for_but_not_installed_is_refused_by_check_and_at_start(trial: Path) -> None:
    text = (trial / "inner.toml").read_text(encoding="utf-8")
    assert '\nocr = "auto"' in text  # the generated config says what it does
    strict = trial / "inner-ocr.toml"
    strict.write_text(text.replace('\nocr = "auto"', "\nocr = true", 1), encoding="utf-8")
    assert maildiode("check", "-c", str(strict)).returncode == 0  # installed here
    # No tesseract on the PATH: Python itself is called by its full path.
    without = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    for command in ("check", "inner"):
        result = subprocess.run(
            [sys.executable, "-m", "maildiode", command, "-c", str(strict)],
            capture_output=True, text=True, timeout=120, env=without,
        )  # fmt: skip
        assert result.returncode in (1, 2), (command, result.stderr)
        assert "outbound.ocr: OCR is on but the tesseract program is not installed" in (
            result.stderr
        ), command
        assert "apt-get install tesseract-ocr tesseract-ocr-kor" in result.stderr
    auto = subprocess.run(
        [sys.executable, "-m", "maildiode", "check", "-c", str(trial / "inner.toml")],
        capture_output=True, text=True, timeout=120, env=without,
    )  # fmt: skip
    assert auto.returncode == 0, auto.stderr  # "auto" is simply off there


def test_too_open_key_file_is_refused(trial: Path) -> None:
    key = trial / "keys/outer.key"
    os.chmod(key, 0o644)
    try:
        result = maildiode("check", "-c", str(trial / "outer.toml"))
    finally:
        os.chmod(key, 0o600)
    assert result.returncode == 2  # an error (issue 22: 0 ok, 1 warnings, 2 errors)
    assert "keys.signing_key" in result.stderr
    assert "readable by others" in result.stderr


def test_init_refuses_a_non_empty_folder_and_bad_ports(trial: Path, tmp_path: Path) -> None:
    again = maildiode("init", str(trial))
    assert again.returncode == 2
    assert "not empty" in again.stderr
    bad = maildiode("init", str(tmp_path / "y"), "--web-port", "70000")
    assert bad.returncode == 2
    assert "port 70000 is out of range" in bad.stderr


def test_every_subcommand_has_help() -> None:
    from maildiode.cli import COMMANDS

    for name in COMMANDS:
        result = maildiode(name, "--help")
        assert result.returncode == 0, (name, result.stderr)
        assert "usage: maildiode " + name in result.stdout
