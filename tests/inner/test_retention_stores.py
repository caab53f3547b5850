"""Retention of the inner agent's stores (issue 21.2): with the clock moved forward, each
quarantine, finished outbound mail and decided approval requests are pruned to their
``[retention]`` settings by the audit upkeep, never below the floor, never a held mail that
is not decided; the audit chain still verifies and each prune is an audit event."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from agentkit.retention import DAY_S
from agentkit.settings import ConfigError, load_config
from inner_agent.config import InnerConfig
from inner_agent.outbound.approval import Request, State
from inner_agent.outbound.lifecycle import MailState
from inner_agent.outbound.state import FINISHED_STATES, OutboundState
from inner_agent.retention import retention_stores
from maildiode.trial.layout import TrialPorts, make_folders, make_keys, write_configs
from maildiode.trial.stack import set_key
from tests.support.retention import START, Clock, Upkeep, written

QUARANTINES = {
    "inner_quarantine": (
        lambda c: c.state.dir / "quarantine", "quarantine_days",
        ("bundle-{id}.bin", "bundle-{id}.reason.json"),
    ),
    "link_quarantine": (
        lambda c: c.state.dir / "link-quarantine", "link_quarantine_days",
        ("md{id}.chunk", "md{id}.chunk.reason.json"),
    ),
    "outbound_quarantine": (
        lambda c: c.outbound.spool_dir / "quarantine", "quarantine_days", ("{id}", "{id}.reason"),
    ),
}  # fmt: skip


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    make_folders(tmp_path)
    make_keys(tmp_path / "keys")
    write_configs(tmp_path, ["corp.example"], TrialPorts(smtp_port=2525, outbound_port=2527,
                  web_port=8025, internal_smtp="127.0.0.1:2526"))  # fmt: skip
    return tmp_path


@pytest.fixture
def config(folder: Path) -> InnerConfig:
    loaded = load_config(folder / "inner.toml", InnerConfig)
    assert loaded.outbound is not None
    loaded.outbound.spool_dir.mkdir(parents=True, exist_ok=True)
    return loaded


def _upkeep(config: InnerConfig, folder: Path) -> Upkeep:
    return Upkeep.open(folder / "audit-test.db", "inner", retention_stores(config))


def _item(root: Path, names: tuple[str, ...], mail_id: str, at: float) -> list[Path]:
    return [written(root / name.format(id=mail_id), at) for name in names]


@pytest.mark.parametrize("store", sorted(QUARANTINES))
def test_each_quarantine_is_pruned_to_its_setting_and_audited(
    config: InnerConfig, folder: Path, store: str
) -> None:
    where, key, names = QUARANTINES[store]
    days, root = getattr(config.retention, key), where(config)
    upkeep = _upkeep(config, folder)
    now = START + (days + 1) * DAY_S
    old = _item(root, names, "old1", START) + _item(root / "released", names, "old2", START)
    young = _item(root, names, "young", now - (days - 0.5) * DAY_S)
    upkeep.days_later(days + 1)
    assert [p for p in old if p.exists()] == []
    assert all(p.exists() for p in young)
    assert upkeep.pruned() == [{"store": store, "count": 2, "days": days,
                                "before": round(now - days * DAY_S, 3)}]  # fmt: skip
    assert upkeep.chain_holds()


def _state(config: InnerConfig, clock: Clock) -> OutboundState:
    assert config.outbound is not None
    return OutboundState(config.outbound.spool_dir / "state.db", clock=clock)


def _mail(state: OutboundState, mail_id: str, *moves: str) -> None:
    state.add_mail(mail_id, "kim@corp.example", ("partner@ext.example",), state.clock())
    for move in moves:
        state.set_mail(mail_id, move)


def _held(state: OutboundState, mail_id: str, decided: State | None) -> None:
    """A mail held for approval; its request decided (``decided``) or still pending."""
    _mail(state, mail_id)
    request = Request(f"r-{mail_id}", mail_id, State.HELD, ("boss@corp.example",),
                      state.clock())  # fmt: skip
    assert state.add_request(request, b"preview", pages=b"pages")
    if decided is not None:
        done = replace(request, state=decided, decided_by="boss@corp.example")
        assert state.save_request(done, expect=request)


def test_finished_outbound_mail_is_pruned_and_held_mail_never(
    config: InnerConfig, folder: Path
) -> None:
    days = config.retention.finished_outbound_days
    upkeep = _upkeep(config, folder)
    state = _state(config, upkeep.clock)
    for finished in FINISHED_STATES:
        _mail(state, f"old-{finished}", finished)
    _held(state, "old-held", None)  # never decided: kept whatever its age
    _held(state, "old-approved", State.APPROVED)  # decided, not sent yet: kept
    _mail(state, "old-sending", "sending")
    upkeep.clock.now = START + 1.5 * DAY_S
    _mail(state, "young-sent", "sent")
    upkeep.days_later(days - 0.5)  # the old ones days + 1 old, the young one days - 0.5
    assert state.mail("old-sent") is None
    assert all(state.mail(f"old-{finished}") is None for finished in FINISHED_STATES)
    for kept in ("old-held", "old-approved", "old-sending", "young-sent"):
        assert state.mail(kept) is not None, kept
    assert state.pending_requests() != []  # the held mail's request too
    (pruned,) = [p for p in upkeep.pruned() if p["store"] == "finished_outbound"]
    assert (pruned["count"], pruned["days"]) == (len(FINISHED_STATES), days)
    assert upkeep.chain_holds()


def test_the_finished_states_are_the_lifecycles() -> None:
    finished = {s.value for s in MailState if s.finished} | {MailState.QUARANTINED.value}
    assert set(FINISHED_STATES) == finished


def test_decided_requests_and_their_previews_are_pruned_pending_ones_never(
    config: InnerConfig, folder: Path
) -> None:
    days = config.retention.approval_days
    upkeep = _upkeep(config, folder)
    state = _state(config, upkeep.clock)
    _held(state, "pending", None)
    _held(state, "rejected", State.REJECTED)
    state.set_mail("rejected", "rejected")
    _held(state, "approved-sent", State.APPROVED)
    state.set_mail("approved-sent", "sent")
    _held(state, "approved-sending", State.APPROVED)
    state.set_mail("approved-sending", "sending")
    upkeep.clock.now = START + 2 * DAY_S
    _held(state, "young", State.REJECTED)
    state.set_mail("young", "rejected")
    upkeep.days_later(days - 1)  # the old ones days + 1 old, the young one days - 1
    assert state.request_for_mail("rejected") is None
    assert state.request_for_mail("approved-sent") is None
    assert state.preview_pages("r-approved-sent") is None
    for kept in ("pending", "approved-sending", "young"):
        assert state.request_for_mail(kept) is not None, kept
    assert state.preview_pages("r-pending") == b"pages"
    assert state.mail("rejected") is not None  # its record goes by its own setting
    (pruned,) = [p for p in upkeep.pruned() if p["store"] == "approval"]
    assert (pruned["count"], pruned["days"]) == (2, days)
    assert upkeep.chain_holds()


@pytest.mark.parametrize(
    "key", ["quarantine_days", "link_quarantine_days", "finished_outbound_days", "approval_days"]
)
def test_a_setting_below_the_floor_or_past_five_years_is_refused(folder: Path, key: str) -> None:
    path = folder / "inner.toml"
    text = path.read_text()
    for refused in ("0", "1826"):
        path.write_text(set_key(text, "retention", key, refused))
        with pytest.raises(ConfigError, match=f"retention.{key}"):
            load_config(path, InnerConfig)
    path.write_text(set_key(text, "retention", key, "1"))
    assert getattr(load_config(path, InnerConfig).retention, key) == 1


def test_a_finished_mail_younger_than_the_floor_stays(folder: Path) -> None:
    path = folder / "inner.toml"
    path.write_text(set_key(path.read_text(), "retention", "finished_outbound_days", "1"))
    config = load_config(path, InnerConfig)
    assert config.outbound is not None
    config.outbound.spool_dir.mkdir(parents=True, exist_ok=True)
    upkeep = _upkeep(config, folder)
    state = _state(config, upkeep.clock)
    _mail(state, "day-old", "sent")
    upkeep.clock.now = START + 0.6 * DAY_S
    _mail(state, "hours-old", "sent")
    upkeep.days_later(0.9)  # 1.5 days after the first
    assert state.mail("day-old") is None
    assert state.mail("hours-old") is not None


def test_decided_inbound_holds_are_pruned_waiting_ones_never(folder: Path) -> None:
    from inner_agent.inbound.holds import HoldBook

    path = folder / "inner.toml"
    path.write_text(path.read_text() + "\n[inbound]\n")
    config = load_config(path, InnerConfig)
    assert config.outbound is not None
    config.outbound.spool_dir.mkdir(parents=True, exist_ok=True)
    days = config.retention.approval_days
    upkeep = _upkeep(config, folder)
    book = HoldBook(config.state.dir / "inbound-holds.db", clock=upkeep.clock)

    def held(mail_id: str) -> None:
        book.add(mail_id, rule="rrn", recipients=["lee@corp.example"],
                 approvers=["boss@corp.example"], approver_kind="department_head",
                 policy_version=1, held_until="2026-01-04T00:00:00Z",
                 sender="kim@partner.example", subject="[masked]")  # fmt: skip

    for mail_id in ("waiting", "released", "dropped-unsent", "expired"):
        held(mail_id)
    book.decide("released", "release", "boss@corp.example")
    book.sent("released", 7)
    book.decide("dropped-unsent", "drop", "boss@corp.example")  # its record not out yet
    book.expired("expired")
    upkeep.clock.now = START + 2 * DAY_S
    held("young")
    book.decide("young", "release", "boss@corp.example")
    book.sent("young", 8)
    upkeep.days_later(days - 1)  # the old ones days + 1 old, the young one days - 1
    assert [book.get(m) is None for m in ("released", "expired")] == [True, True]
    for kept in ("waiting", "dropped-unsent", "young"):
        assert book.get(kept) is not None, kept
    (pruned,) = [p for p in upkeep.pruned() if p["store"] == "inbound_holds"]
    assert (pruned["count"], pruned["days"]) == (2, days)
    assert upkeep.chain_holds()


def test_kept_chunks_of_every_outbound_stream_go_in_the_daily_pass(
    config: InnerConfig, folder: Path
) -> None:
    """Before: kept chunks (approved outbound mail, for resends) of a quiet sender stayed until
    it published again, and those of an outer agent's stream taken out of ``[streams]`` for
    ever. Now the daily pass prunes every ``sent-*`` folder past the resend window."""
    assert config.outbound is not None
    state = config.outbound.spool_dir / "link-state"
    group = "g00000000000000000"
    days = -(-int(config.link.resend_window_s) // int(DAY_S))
    old = [written(state / sent / group / f"{seq:020d}.{index:06d}.mdc", START)
           for sent, seq, index in (("sent-outbound", 1, 0), ("sent-outbound", 1, 1),
                                    ("sent-mx2-out", 7, 0))]  # fmt: skip
    young = written(state / "sent-outbound" / group / f"{2:020d}.000000.mdc", START + 2 * DAY_S)
    upkeep = _upkeep(config, folder)
    upkeep.days_later(days + 1)
    assert [p for p in old if p.exists()] == []
    assert young.exists()
    assert upkeep.pruned() == [{"store": "kept_chunks", "count": 3, "days": days,
                                "before": round(START + DAY_S, 3)}]  # fmt: skip
    assert upkeep.chain_holds()
