"""Retention of the outer agent's stores (issue 21.2): with the clock moved forward, each
quarantine is pruned to its ``[retention]`` setting by the audit upkeep, never below its floor;
the audit chain still verifies and each prune is an audit event."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentkit.retention import DAY_S
from agentkit.settings import ConfigError, load_config
from maildiode.trial.layout import TrialPorts, make_folders, make_keys, write_configs
from maildiode.trial.stack import set_key
from outer_agent.config import OuterConfig
from outer_agent.retention import retention_stores
from tests.support.retention import START, Upkeep, written

# store -> its folder under the spool, its setting, the files one quarantined item leaves
STORES = {
    "outer_quarantine": ("inbound/quarantine", "quarantine_days", ("{id}", "{id}.reason")),
    "delivery_quarantine": (
        "outbound/quarantine", "quarantine_days", ("{id}.0a0b", "{id}.0a0b.reason"),
    ),
    "link_quarantine": (
        "link-out/quarantine", "link_quarantine_days", ("{id}.chunk", "{id}.chunk.reason.json"),
    ),
}  # fmt: skip


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    make_folders(tmp_path)
    make_keys(tmp_path / "keys")
    write_configs(tmp_path, ["corp.example"], TrialPorts(smtp_port=2525, outbound_port=2527,
                  web_port=8025, internal_smtp="127.0.0.1:2526"))  # fmt: skip
    return tmp_path


def _item(root: Path, names: tuple[str, ...], mail_id: str, at: float) -> list[Path]:
    return [written(root / name.format(id=mail_id), at) for name in names]


@pytest.mark.parametrize("store", sorted(STORES))
def test_each_quarantine_is_pruned_to_its_setting_and_audited(folder: Path, store: str) -> None:
    config = load_config(folder / "outer.toml", OuterConfig)
    where, key, names = STORES[store]
    days = getattr(config.retention, key)
    root = config.spool.dir / where
    upkeep = Upkeep.open(folder / "audit-test.db", "outer", retention_stores(config))
    now = START + (days + 1) * DAY_S
    old = _item(root, names, "old1", START) + _item(root / "released", names, "old2", START)
    young = _item(root, names, "young", now - (days - 0.5) * DAY_S)
    upkeep.days_later(days + 1)
    assert [p for p in old if p.exists()] == []
    assert all(p.exists() for p in young)
    (pruned,) = upkeep.pruned()
    assert pruned == {"store": store, "count": 2, "days": days,
                      "before": round(now - days * DAY_S, 3)}  # fmt: skip
    assert upkeep.chain_holds()


@pytest.mark.parametrize("key", ["quarantine_days", "link_quarantine_days"])
def test_a_setting_below_the_floor_is_refused_and_the_floor_keeps_a_day(
    folder: Path, key: str
) -> None:
    path = folder / "outer.toml"
    text = path.read_text()
    path.write_text(set_key(text, "retention", key, "0"))
    with pytest.raises(ConfigError, match=f"retention.{key}"):
        load_config(path, OuterConfig)
    path.write_text(set_key(text, "retention", key, "1"))
    config = load_config(path, OuterConfig)
    store = "link_quarantine" if key.startswith("link") else "outer_quarantine"
    root = config.spool.dir / STORES[store][0]
    upkeep = Upkeep.open(folder / "audit-test.db", "outer", retention_stores(config))
    day_old = _item(root, STORES[store][2], "a", START)
    hours_old = _item(root, STORES[store][2], "b", START + 0.6 * DAY_S)
    upkeep.days_later(1.5)
    assert not any(p.exists() for p in day_old)
    assert all(p.exists() for p in hours_old)  # younger than the floor: kept


def test_kept_chunks_of_a_quiet_sender_and_of_a_stream_no_longer_sent_go_in_the_daily_pass(
    folder: Path,
) -> None:
    """Before: the sender dropped its kept copies only when it published again, and a stream
    no longer configured never; the daily pass did not know them. Now it prunes every
    ``sent-*`` folder past the resend window (in whole days) and records it."""
    import os

    from outer_agent.link import inbound_publisher

    config = load_config(folder / "outer.toml", OuterConfig)
    state = config.spool.dir / "sender"
    publisher = inbound_publisher(config, state)
    publisher.publish(b"a mail's package" * 100, b"\x01" * 16)
    publisher.close()
    sent = sorted(p for p in (state / "sent-inbound").rglob("*") if p.is_file())
    assert sent
    for path in sent:
        os.utime(path, (START, START))
    gone_stream = written(
        state / "sent-mx9" / "g00000000000000000" / "00000000000000000001.000000.mdc", START
    )
    days = -(-int(config.link.resend_window_s) // int(DAY_S))
    upkeep = Upkeep.open(folder / "audit-test.db", "outer", retention_stores(config))
    young = written(state / "sent-inbound" / "g00000000000000000" / "00000000000000000002.000000.mdc",
                    START + 2 * DAY_S)  # fmt: skip
    upkeep.days_later(days + 1)
    assert [p for p in [*sent, gone_stream] if p.exists()] == []
    assert young.exists()
    (pruned,) = upkeep.pruned()
    assert pruned == {"store": "kept_chunks", "count": len(sent) + 1, "days": days,
                      "before": round(START + DAY_S, 3)}  # fmt: skip
    assert upkeep.chain_holds()
