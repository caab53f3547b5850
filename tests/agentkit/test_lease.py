"""The fencing lease: its decisions alone (agentkit.lease), then on disk with fake clocks
(agentkit.leasekeeper): two agents never both hold it, the token only grows, a standby takes it
only after expiry, and a holder that cannot renew closes its own fence before that."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentkit.lease import (
    Claimant,
    Held,
    Lease,
    Lost,
    Renewed,
    Taken,
    decide,
    renew_every_s,
    trusted_for_s,
)
from agentkit.leasekeeper import FenceClosed, LeaseKeeper, LeaseRefused, LeaseStore, acquire

A = Claimant("inner-a", 100, 20.0)
B = Claimant("inner-b", 200, 20.0)


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# -- the decisions ------------------------------------------------------------------------


def test_the_first_claimant_takes_token_one() -> None:
    assert decide(None, A, 50.0) == Taken(Lease("inner-a", 100, 1, 70.0), previous=None)


def test_a_valid_lease_of_another_is_held() -> None:
    held = Lease("inner-a", 100, 3, 70.0)
    assert decide(held, B, 69.9) == Held(held)


def test_an_expired_lease_is_taken_with_the_next_token() -> None:
    old = Lease("inner-a", 100, 3, 70.0)
    assert decide(old, B, 70.0) == Taken(Lease("inner-b", 200, 4, 90.0), previous=old)


def test_the_holder_renews_under_its_token() -> None:
    mine = Lease("inner-a", 100, 3, 70.0)
    assert decide(mine, A, 60.0, my_token=3) == Renewed(Lease("inner-a", 100, 3, 80.0))


def test_a_holder_whose_row_was_taken_has_lost() -> None:
    taken = Lease("inner-b", 200, 4, 90.0)
    assert decide(taken, A, 75.0, my_token=3) == Lost(taken)


def test_a_restart_on_the_same_host_takes_a_dead_processes_lease_at_once() -> None:
    dead = Lease("inner-a", 99, 3, 70.0)
    assert decide(dead, A, 60.0, holder_process_gone=True) == Taken(
        Lease("inner-a", 100, 4, 80.0), previous=dead
    )
    assert decide(dead, A, 60.0, holder_process_gone=False) == Held(dead)  # two on one host
    assert decide(dead, B, 60.0, holder_process_gone=True) == Held(dead)  # not B's to judge


leases = st.builds(
    Lease,
    holder=st.sampled_from(["inner-a", "inner-b", "inner-c"]),
    pid=st.integers(1, 5),
    token=st.integers(1, 1000),
    expires=st.floats(0, 1000),
)
claimants = st.builds(
    Claimant,
    holder=st.sampled_from(["inner-a", "inner-b", "inner-c"]),
    pid=st.integers(1, 5),
    ttl_s=st.floats(1, 600),
)


@given(current=st.none() | leases, claimant=claimants, now=st.floats(0, 1000),
       my_token=st.none() | st.integers(1, 1000), gone=st.booleans())  # fmt: skip
def test_a_decision_never_lets_a_valid_foreign_lease_go_or_the_token_fall(
    current: Lease | None, claimant: Claimant, now: float, my_token: int | None, gone: bool
) -> None:
    decision = decide(current, claimant, now, my_token=my_token, holder_process_gone=gone)
    foreign = current is not None and current.holder != claimant.holder
    if isinstance(decision, Taken | Renewed) and current is not None:
        assert decision.lease.token >= current.token
        if foreign and current.expires > now:
            raise AssertionError(f"took a valid lease of another host: {current} -> {decision}")
    if isinstance(decision, Taken):
        assert decision.lease.token == (current.token + 1 if current else 1)
        assert my_token is None
    if isinstance(decision, Renewed):
        assert decision.lease.token == my_token
        assert current is not None
        assert (current.holder, current.pid) == (claimant.holder, claimant.pid)


@given(ttl=st.floats(1, 600))
def test_the_holder_stops_trusting_before_expiry_and_renews_in_between(ttl: float) -> None:
    assert renew_every_s(ttl) < trusted_for_s(ttl) < ttl
    # room for a quarter TTL of clock difference between the hosts
    assert ttl - trusted_for_s(ttl) == pytest.approx(ttl / 4)


# -- on disk ------------------------------------------------------------------------------


def test_two_agents_on_one_state_one_takes_the_other_is_refused(tmp_path: Path) -> None:
    clock = Clock()
    first = LeaseStore(tmp_path, clock=clock)
    second = LeaseStore(tmp_path, clock=clock)
    taken = acquire(first, A, standby=False, stop=threading.Event())
    assert taken is not None
    assert taken.lease.token == 1
    with pytest.raises(LeaseRefused) as refused:
        acquire(second, B, standby=False, stop=threading.Event())
    line = str(refused.value)
    assert "inner-a (pid 100, fencing token 1)" in line
    assert "--standby" in line
    assert "\n" not in line
    clock.now += 20.0  # the holder died: nobody renewed
    assert second.attempt(B) == Taken(Lease("inner-b", 200, 2, clock.now + 20.0), taken.lease)
    assert isinstance(first.attempt(A, my_token=1), Lost)


def test_a_standby_waits_and_takes_over_when_the_lease_expires(tmp_path: Path) -> None:
    clock = Clock()
    LeaseStore(tmp_path, clock=clock).attempt(A)
    standby = LeaseStore(tmp_path, clock=clock)
    waits: list[float] = []

    class Expiring(threading.Event):  # each wait of the standby lets 5 s pass
        def wait(self, timeout: float | None = None) -> bool:
            waits.append(clock.now)
            clock.now += 5.0
            return False

    taken = acquire(standby, B, standby=True, stop=Expiring())
    assert taken is not None
    assert (taken.lease.holder, taken.lease.token) == ("inner-b", 2)
    assert len(waits) == 4  # took over at the first look after 20 s, not before


def test_a_clean_stop_hands_the_lease_over_at_once(tmp_path: Path) -> None:
    clock = Clock()
    store = LeaseStore(tmp_path, clock=clock)
    taken = store.attempt(A)
    assert isinstance(taken, Taken)
    keeper = LeaseKeeper(store, A, taken, on_lost=lambda why: None)
    keeper.stop()
    assert isinstance(LeaseStore(tmp_path, clock=clock).attempt(B), Taken)


def test_the_fence_closes_when_renewals_fail_before_a_standby_can_take_over(
    tmp_path: Path,
) -> None:
    wall, mono = Clock(), Clock(0.0)
    store = LeaseStore(tmp_path, clock=wall)
    taken = store.attempt(A)
    assert isinstance(taken, Taken)
    lost: list[str] = []
    keeper = LeaseKeeper(store, A, taken, on_lost=lost.append, monotonic=mono)
    keeper.fence()  # fresh: open
    wall.now += 14.0
    mono.now += 14.0  # renewals failed (a hung disk): 14 s of the 15 s trusted
    keeper.fence()
    mono.now += 1.5
    with pytest.raises(FenceClosed):
        keeper.fence()
    assert len(lost) == 1
    assert "not renewed in time" in lost[0]
    assert isinstance(LeaseStore(tmp_path, clock=wall).attempt(B), Held)  # still 4.5 s to go


def test_a_holder_that_finds_its_lease_taken_closes_the_fence_and_says_by_whom(
    tmp_path: Path,
) -> None:
    clock = Clock()
    store = LeaseStore(tmp_path, clock=clock)
    taken = store.attempt(A)
    assert isinstance(taken, Taken)
    lost: list[str] = []
    keeper = LeaseKeeper(store, A, taken, on_lost=lost.append)
    clock.now += 21.0  # paused longer than the TTL (a frozen VM)
    assert isinstance(LeaseStore(tmp_path, clock=clock).attempt(B), Taken)
    keeper.renew()
    with pytest.raises(FenceClosed):
        keeper.fence()
    assert lost == ["the lease (token 1) is now held by inner-b (token 2)"]
    keeper.stop()  # a lost lease is not released: the row stays B's
    assert isinstance(store.attempt(B, my_token=2), Renewed)


def test_a_renewal_moves_the_trusted_time_on(tmp_path: Path) -> None:
    wall, mono = Clock(), Clock(0.0)
    store = LeaseStore(tmp_path, clock=wall)
    taken = store.attempt(A)
    assert isinstance(taken, Taken)
    keeper = LeaseKeeper(store, A, taken, on_lost=lambda why: None, monotonic=mono)
    for _ in range(10):  # 100 s, renewed every 5 s
        wall.now += 5.0
        mono.now += 5.0
        keeper.renew()
        keeper.fence()
    assert isinstance(LeaseStore(tmp_path, clock=wall).attempt(B), Held)


def test_the_decisions_module_does_no_io() -> None:
    """agentkit.lease promises decisions without I/O: it imports nothing that could do any."""
    import ast

    import agentkit.lease

    tree = ast.parse(Path(agentkit.lease.__file__).read_text(encoding="utf-8"))
    imported = {
        alias.name if isinstance(node, ast.Import) else str(node.module)
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= {"__future__", "dataclasses"}, imported


# ------------------------------------------------------------- the fence seen from another process


def test_the_row_is_trusted_for_three_quarters_of_the_ttl_after_a_renewal_began() -> None:
    from agentkit.lease import Terms, still_trusted

    terms = Terms("inner-a", 100, 3, 20.0)
    row = Lease("inner-a", 100, 3, expires=1020.0)  # renewed at 1000
    assert still_trusted(row, terms, 1000.0)
    assert still_trusted(row, terms, 1014.9)
    assert not still_trusted(row, terms, 1015.0)  # a standby's clock may be 5 s ahead
    assert not still_trusted(Lease("inner-b", 200, 4, 1020.0), terms, 1000.0)
    assert not still_trusted(Lease("inner-a", 100, 4, 1020.0), terms, 1000.0)  # a new take
    assert not still_trusted(None, terms, 1000.0)


def test_the_web_process_watch_closes_once_the_standby_took_the_lease(tmp_path: Path) -> None:
    """``LeaseWatch``: what the agent's web process checks before it stores a decision."""
    from agentkit.leasekeeper import LeaseWatch

    now = [1000.0]
    store = LeaseStore(tmp_path, clock=lambda: now[0])
    taken = store.attempt(A)
    assert isinstance(taken, Taken)
    keeper = LeaseKeeper(store, A, taken, on_lost=lambda _why: None)
    watch = LeaseWatch(tmp_path, keeper.terms, clock=lambda: now[0])
    watch.fence()  # just taken: open
    now[0] += trusted_for_s(A.ttl_s) - 0.1
    watch.fence()
    now[0] += 0.2  # not renewed for three quarters of the TTL: closed, as the keeper's is
    with pytest.raises(FenceClosed):
        watch.fence()
    now[0] += A.ttl_s  # expired: the standby takes it
    assert isinstance(LeaseStore(tmp_path, clock=lambda: now[0]).attempt(B), Taken)
    with pytest.raises(FenceClosed, match="no longer this agent's"):
        watch.fence()
    store.close()
