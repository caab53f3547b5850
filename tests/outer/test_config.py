"""outer.toml: the example loads, every refusal names the key."""

from __future__ import annotations

import pytest

from agentkit.settings import ConfigError, load_config
from outer_agent.config import OuterConfig
from tests.outer.agent_support import make_agent_dir, set_key


@pytest.fixture
def agent_dir(tmp_path):
    return make_agent_dir(tmp_path)


def test_example_loads_with_every_section(agent_dir):
    config = load_config(agent_dir.config, OuterConfig)
    assert config.smtp.domains == ("corp.example",)
    assert config.smtp.listen == f"127.0.0.1:{agent_dir.port}"
    assert config.spool.dir == agent_dir.root / "outer" / "spool"
    assert config.link.send_dir == agent_dir.root / "link" / "in" / "send"
    assert config.delivery.smarthost is None
    assert config.render.on_failure == "not_displayable"


def test_example_has_every_key_present():
    from outer_agent.config import example_toml

    text = example_toml(domains=["corp.example"], relay="relay.example:25")
    for section in (
        OuterConfig.model_fields["smtp"].annotation,
        OuterConfig.model_fields["delivery"].annotation,
    ):
        for key in section.model_fields:
            assert f"{key} =" in text, key
    assert 'smarthost = "relay.example:25"' in text


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("smtp", "domains", "[]", "smtp.domains"),
        ("smtp", "domains", '["not a domain"]', "smtp.domains.0"),
        ("smtp", "listen", '"127.0.0.1:70000"', "out of range"),
        ("smtp", "max_recipients", "0", "smtp.max_recipients"),
        ("smtp", "tls_cert", '"missing.pem"', "tls_cert and tls_key must be given together"),
        ("smtp", "require_tls", "true", "require_tls needs tls_cert"),
        ("smtp", "max_sesions", "3", 'did you mean "max_sessions"'),
        ("auth", "mode", '"trust_mx"', "trusted_authserv_id"),
        ("delivery", "username", '"u"', "username and password_file"),
        ("render", "on_failure", '"drop"', "render.on_failure"),
        ("link", "encrypt", "true", "link.encrypt needs keys.encrypt_to"),
        ("delivery", "password_file", '"keys/outer.pub"', "readable by others"),
    ],
)
def test_refusals_name_the_key(agent_dir, section, key, value, message):
    agent_dir.config.write_text(set_key(agent_dir.config.read_text(), section, key, value))
    with pytest.raises(ConfigError, match=message):
        load_config(agent_dir.config, OuterConfig)


def test_maildiode_check_accepts_the_example(agent_dir):
    from maildiode.cli import main

    assert main(["check", "-c", str(agent_dir.config)]) == 0
