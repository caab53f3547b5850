"""``[outbound]``: the example validates; refusals name the key and the problem."""

from __future__ import annotations

import tomllib

import pytest

from agentkit.settings import ConfigError, load_config
from inner_agent.config import InnerConfig
from inner_agent.outbound.config import OutboundSection, example_toml_section


def test_example_section_validates(tmp_path):
    document = tomllib.loads(example_toml_section())
    section = OutboundSection.model_validate(document["outbound"], context={"config_dir": tmp_path})
    assert section.spool_dir == tmp_path / "inner/outbound"
    assert section.web.secret_key_file == tmp_path / "keys/web.secret"
    assert section.approval.on_expiry == "reject"
    assert section.rules_file is None
    assert section.sender_mismatch == "hold"
    signin = section.web.signin
    assert signin.db == tmp_path / "inner/signin.db"
    assert (signin.hash_workers, signin.hash_queue, signin.lock_after) == (2, 8, 5)
    assert section.web.session_idle_s == 1200
    assert section.web.trusted_proxies == ("127.0.0.1",)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('allowed_networks = ["10.0.0.0/33"]', "outbound.allowed_networks"),
        ('rules_file = "missing.toml"', "rules file"),
        ('[outbound.web]\npublic_url = "ftp://x"', "outbound.web.public_url"),
        (
            "[outbound.approval]\nremind_after_s = 10\nexpire_after_s = 5",
            "remind_after_s must be shorter",
        ),
        ('[outbound.approval]\non_expiry = "ignore"', "outbound.approval.on_expiry"),
        ('[outbound.approval]\nfallback_approver = "nobody"', "not a mail address"),
        ('[outbound.notice]\nfrom_adress = "a@b.kr"', 'unknown key (did you mean "from_address"?)'),
        ('ocr = "kor; rm -rf /"', "outbound.ocr"),
        ("ocr = 3", "outbound.ocr"),
        ('sender_mismatch = "ignore"', "outbound.sender_mismatch"),
        ('[outbound.web]\ntrusted_proxies = ["proxy"]', "outbound.web.trusted_proxies"),
        ("[outbound.web.signin]\nhash_workers = 0", "outbound.web.signin.hash_workers"),
        (
            "[outbound.web.signin]\nlock_first_s = 7200\nlock_max_s = 60",
            "lock_first_s must not be longer than lock_max_s",
        ),
    ],
)
def test_refusals(tmp_path, body, message):
    path = tmp_path / "inner.toml"
    keys = tmp_path / "k"
    keys.mkdir()
    (keys / "peer.pub").write_text("x")
    (keys / "own.key").write_text("x")
    (keys / "own.key").chmod(0o600)
    path.write_text(
        '[link]\nrecv_dir = "in"\nsend_dir = "out"\n[keys]\nsigning_key = "k/own.key"\n'
        'peer_keys = ["k/peer.pub"]\n[outbound]\n' + body + "\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, InnerConfig)
    assert message in str(caught.value)
    assert str(caught.value).startswith("inner.toml: ")
