from __future__ import annotations

from pathlib import Path

import pytest

from agentkit.settings import ConfigError, load_config
from inner_agent.config import InnerConfig
from maildiode.trial.layout import TrialPorts, make_folders, make_keys, write_configs
from maildiode.trial.stack import drop_section, set_key


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    make_folders(tmp_path)
    make_keys(tmp_path / "keys")
    ports = TrialPorts(
        smtp_port=2525, outbound_port=2527, web_port=8025, internal_smtp="127.0.0.1:2526"
    )
    write_configs(tmp_path, ["corp.example"], ports)
    return tmp_path


def test_example_loads_with_defaults(folder: Path) -> None:
    config = load_config(folder / "inner.toml", InnerConfig)
    assert config.notify.language == "ko"
    assert config.notify.subject_prefix == "[외부메일]"
    assert config.notify.our_domains == ("corp.example",)
    assert config.link.recv_dir == folder / "link/in/recv"
    assert config.outbound is not None


def test_outbound_section_is_optional(folder: Path) -> None:
    path = folder / "inner.toml"
    path.write_text(drop_section(path.read_text(), "outbound"))
    assert load_config(path, InnerConfig).outbound is None


@pytest.mark.parametrize(
    ("section", "key", "value", "problem"),
    [
        ("notify", "language", '"fr"', "notify.language"),
        ("inject", "username", '"me"', "username and password_file"),
        ("inject", "server", '"nohost"', "inject.server"),
        ("notify", "subject_prefix", '"a\\nb"', "control characters"),
        ("images", "max_pixels", "10", "images.max_pixels"),
    ],
)
def test_refusals_name_key_and_problem(
    folder: Path, section: str, key: str, value: str, problem: str
) -> None:
    path = folder / "inner.toml"
    path.write_text(set_key(path.read_text(), section, key, value))
    with pytest.raises(ConfigError) as refused:
        load_config(path, InnerConfig)
    assert problem in str(refused.value)
    assert "inner.toml" in str(refused.value)
