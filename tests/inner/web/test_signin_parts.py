"""The sign-in's parts alone: lockout back-off, per-client buckets, spraying alerts, signed
cookies, the second factor, the bounded pool, the store's bounds, sessions' limits, and what
the log may show of a typed address."""

from __future__ import annotations

import asyncio
import threading
import time

import pyotp
import pytest

from inner_agent.web import store as store_module
from inner_agent.web.cookies import DEVICE_TTL_S, FORM_TTL_S, Cookies
from inner_agent.web.lockout import FORGET_AFTER_S, LockPolicy, Strikes, after_failure, locked_for
from inner_agent.web.pool import Busy, CheckPool
from inner_agent.web.redact import AddressRedactor
from inner_agent.web.second_factor import matching_step
from inner_agent.web.sessions import Sessions
from inner_agent.web.spraying import SprayWatch
from inner_agent.web.store import SignInStore
from inner_agent.web.throttle import ClientBuckets

NOW = 1_800_000_000.0
SECRET = b"s" * 32


# ------------------------------------------------------------------------------ lockout


def test_five_failures_lock_then_each_failure_after_a_lock_doubles_it():
    policy, strikes, now = LockPolicy(5, 60, 3600), Strikes(), NOW
    for _ in range(4):
        strikes = after_failure(strikes, now, policy)
        assert locked_for(strikes, now) == 0
    locks = []
    for _ in range(9):
        strikes = after_failure(strikes, now, policy)
        locks.append(locked_for(strikes, now))
        now += locked_for(strikes, now) + 1  # the next try comes after the lock ran out
    assert locks == [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]


def test_a_quiet_day_forgets_the_strikes():
    policy = LockPolicy(5, 60, 3600)
    strikes = Strikes(failures=0, locks=6, locked_until=NOW, updated=NOW)
    assert locked_for(after_failure(strikes, NOW + 10, policy), NOW + 10) == 3600
    fresh = after_failure(strikes, NOW + FORGET_AFTER_S, policy)
    assert (fresh.failures, fresh.locks) == (1, 0)


# ------------------------------------------------------------------------------ buckets


def test_a_client_gets_its_burst_then_the_rate_and_others_are_not_affected():
    buckets = ClientBuckets(per_minute=10, burst=3)
    assert [buckets.take("a", NOW) for _ in range(3)] == [0, 0, 0]
    assert buckets.take("a", NOW) == 6  # one token every six seconds
    assert buckets.take("b", NOW) == 0
    assert buckets.take("a", NOW + 6) == 0
    assert buckets.take("a", NOW + 6) > 0


def test_the_bucket_map_is_bounded():
    buckets = ClientBuckets(per_minute=10, burst=1, max_clients=100)
    for n in range(1000):
        buckets.take(f"10.0.{n // 250}.{n % 250}", NOW)
    assert len(buckets._buckets) == 100


# ------------------------------------------------------------------------------ spraying


def test_spraying_alerts_once_per_subject_and_window():
    watch = SprayWatch()
    alerts = [a for n in range(50) for a in watch.failed(f"u{n}@x", "10.0.0.1", NOW + n)]
    assert [(a.pattern, a.subject, a.count) for a in alerts] == [("many-accounts", "10.0.0.1", 5)]
    later = [a for n in range(5) for a in watch.failed(f"v{n}@x", "10.0.0.1", NOW + 700 + n)]
    assert [a.pattern for a in later] == ["many-accounts"]  # a new window, a new alert
    clients = [a for n in range(6) for a in watch.failed("lee@x", f"10.1.0.{n}", NOW + n)]
    assert [(a.pattern, a.count) for a in clients] == [("many-clients", 5)]


def test_one_person_mistyping_is_not_spraying():
    watch = SprayWatch()
    assert not [a for n in range(20) for a in watch.failed("lee@x", "10.0.0.1", NOW + n)]


# ------------------------------------------------------------------------------ cookies


def test_the_form_token_is_bound_to_its_pre_session_cookie_and_expires():
    cookies = Cookies(SECRET)
    pre = cookies.new_pre_session()
    token = cookies.form_token(pre, NOW)
    assert all(c in "0123456789abcdef" for c in token)
    assert cookies.form_token_ok(token, pre, NOW + 10)
    assert not cookies.form_token_ok(token, cookies.new_pre_session(), NOW + 10)
    assert not cookies.form_token_ok(token, "", NOW)
    assert not cookies.form_token_ok(token, pre, NOW + FORM_TTL_S + 1)
    assert not Cookies(b"t" * 32).form_token_ok(token, pre, NOW)
    flipped = "1" if token[-1] == "0" else "0"  # a different last digit, whatever it was
    assert not cookies.form_token_ok(token[:-1] + flipped, pre, NOW)
    assert not cookies.form_token_ok("zz" + token[2:], pre, NOW)
    assert not cookies.form_token_ok("x" * 5000, pre, NOW)


def test_a_known_device_cookie_works_for_its_account_only():
    cookies = Cookies(SECRET)
    value = cookies.device("lee@corp.example", "dev1", NOW)
    assert cookies.device_of(value, "lee@corp.example", NOW + 86400) == "dev1"
    assert cookies.device_of(value, "park@corp.example", NOW) is None
    assert cookies.device_of(value, "lee@corp.example", NOW + DEVICE_TTL_S + 1) is None
    assert cookies.device_of(value.replace("dev1", "dev2"), "lee@corp.example", NOW) is None
    assert cookies.device_of("", "lee@corp.example", NOW) is None
    assert cookies.device_of("a.b.c", "lee@corp.example", NOW) is None


# ------------------------------------------------------------------------------ second factor


def test_a_code_matches_its_step_and_its_neighbours_only():
    secret = pyotp.random_base32()
    totp = pyotp.TOTP(secret)
    step = totp.timecode(int(NOW))
    assert matching_step(secret, totp.at(NOW), NOW) == step
    assert matching_step(secret, totp.at(NOW - 30), NOW) == step - 1
    assert (
        matching_step(secret, " " + totp.at(NOW + 30)[:3] + " " + totp.at(NOW + 30)[3:], NOW)
        == step + 1
    )
    assert matching_step(secret, totp.at(NOW - 90), NOW) is None
    assert matching_step(secret, "", NOW) is None
    assert matching_step(secret, "12345", NOW) is None
    assert matching_step(secret, "abcdef", NOW) is None


# ------------------------------------------------------------------------------ pool


def test_the_pool_runs_at_most_its_workers_and_turns_away_past_its_queue():
    pool = CheckPool(workers=2, queue=3)
    running, peak, lock = [0], [0], threading.Lock()

    def check(n: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return n

    async def many() -> list[object]:
        return await asyncio.gather(*(pool.run(check, n) for n in range(20)))

    try:
        answers = asyncio.run(many())
    finally:
        pool.close()
    assert peak[0] == 2
    assert sorted(a for a in answers if isinstance(a, int)) == [0, 1, 2, 3, 4]
    busy = [a for a in answers if isinstance(a, Busy)]
    assert len(busy) == 15
    assert all(b.retry_after_s >= 1 for b in busy)


def test_the_pool_workers_run_at_a_lower_priority():
    import os

    pool = CheckPool(workers=1, queue=0)
    try:
        nice = asyncio.run(
            pool.run(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        )
    finally:
        pool.close()
    assert nice >= os.getpriority(os.PRIO_PROCESS, 0) + 10 or nice == 19


# ------------------------------------------------------------------------------ store


def test_strikes_are_bounded_unlocked_pairs_go_first(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "MAX_STRIKES", 50)
    monkeypatch.setattr(store_module, "EVICT_BATCH", 10)
    store = SignInStore(tmp_path / "signin.db")
    locked = Strikes(0, 1, NOW + 3600, NOW)
    store.put_strikes("lee@corp.example", "address:10.6.6.6", locked)
    for n in range(500):
        store.put_strikes(f"r{n}@corp.example", "address:10.6.6.7", Strikes(1, 0, 0, NOW + n))
    assert store.strike_rows() <= 50
    assert store.strikes("lee@corp.example", "address:10.6.6.6") == locked
    store.close()
    assert (
        SignInStore(tmp_path / "signin.db").strikes("lee@corp.example", "address:10.6.6.6")
        == locked
    )


def test_a_second_factor_step_is_spent_once(tmp_path):
    store = SignInStore(tmp_path / "signin.db")
    assert store.spend_step("lee@corp.example", 100)
    assert not store.spend_step("lee@corp.example", 100)
    assert not store.spend_step("lee@corp.example", 99)
    assert store.spend_step("lee@corp.example", 101)
    assert store.spend_step("park@corp.example", 100)


# ------------------------------------------------------------------------------ sessions


def test_sessions_end_when_idle_and_at_their_absolute_limit(tmp_path):
    clock = [NOW]
    sessions = Sessions(SignInStore(tmp_path / "s.db"), idle_s=1200, absolute_s=8 * 3600,
                        clock=lambda: clock[0])  # fmt: skip
    idle = sessions.start("lee@corp.example")
    clock[0] += 1199
    assert sessions.user_of(idle) == "lee@corp.example"
    clock[0] += 1200
    assert sessions.user_of(idle) is None  # twenty minutes without a request
    busy = sessions.start("park@corp.example")
    for _ in range(8 * 6 - 1):
        clock[0] += 600
        assert sessions.user_of(busy) == "park@corp.example"
    clock[0] += 600
    assert sessions.user_of(busy) is None  # eight hours after sign-in, however busy
    assert sessions.user_of("x" * 43) is None
    assert sessions.user_of("short") is None
    ended = sessions.start("lee@corp.example")
    sessions.end(ended)
    assert sessions.user_of(ended) is None


# ------------------------------------------------------------------------------ redaction


@pytest.mark.parametrize("typed", ["800101-1234567", "hunter2-password", "nobody@corp.example", ""])
def test_only_a_directory_address_is_logged_as_typed(typed):
    redact = AddressRedactor(SECRET, lambda a: a == "lee@corp.example")
    assert redact("lee@corp.example") == "lee@corp.example"
    shown = redact(typed)
    assert typed not in shown or typed == ""
    assert shown == redact(typed)  # the same value, the same mark
    assert shown.startswith("?")
    assert f"({len(typed)} chars)" in shown
    assert AddressRedactor(b"t" * 32, lambda a: False)(typed) != shown
