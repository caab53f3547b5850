"""Session limits that an attacker cannot turn against others (issue 15.7), on a real intake
driven over loopback (127.0.0.0/8 gives each test client its own source address).

- Sessions are counted per client address exactly: addresses never share a count.
- A session with no mail transaction open (before MAIL, between mails) is closed after the
  short idle timeout; one in a transaction keeps the long one.
- Under stress (sessions at a fraction of the overall limit) every idle session gets the
  stress timeout, as Postfix's ``smtpd_timeout`` stress variant does.
"""

from __future__ import annotations

import itertools
import multiprocessing
import random
import smtplib
import socket
import threading
import time
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outer_agent.sessions import IdleTimeouts, Refusal, SessionCounter, address_key
from outer_agent.smtp import IntakeLimits
from tests.outer.conftest import start_intake

MAIL = b"From: a@ext.example\r\nTo: u@corp.example\r\nSubject: hi\r\n\r\nbody\r\n"


def _connect(port: int, source: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), source_address=(source, 0))
    sock.settimeout(10)
    return sock


def _line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(1024)
        if not chunk:
            break
        data += chunk
    return data


def _old_slot(ip: str) -> int:
    """The slot the counter used to share between addresses: CRC-32 modulo 4096."""
    return zlib.crc32(ip.encode()) % 4096


def _colliding(partner: str, count: int) -> list[str]:
    """``count`` loopback addresses that shared ``partner``'s slot under the old hashing."""
    found = []
    for b, c, d in itertools.product(range(256), range(256), range(1, 255)):
        ip = f"127.{b}.{c}.{d}"
        if ip != partner and _old_slot(ip) == _old_slot(partner):
            found.append(ip)
            if len(found) == count:
                return found
    raise AssertionError("not enough colliding addresses in 127.0.0.0/8")


# ------------------------------------------------------------------------- over the wire


def test_idle_sessions_from_colliding_addresses_do_not_lock_a_partner_out(tmp_path):
    """The attack: 20 idle sessions (the per-address limit) from 20 addresses whose old slot is
    the partner MX's; the partner must still get in and deliver."""
    running, stop = start_intake(tmp_path, max_sessions=100, max_sessions_per_ip=20)
    held = []
    try:
        for ip in _colliding("127.0.0.1", 20):
            held.append(_connect(running.port, ip))
            assert _line(held[-1]).startswith(b"220")
        with smtplib.SMTP("127.0.0.1", running.port, timeout=10) as partner:
            assert partner.sendmail("a@ext.example", ["u@corp.example"], MAIL) == {}
        # and one address is still held to its own limit, exactly
        more = [_connect(running.port, "127.0.0.9") for _ in range(21)]
        held += more
        replies = [_line(sock) for sock in more]
        assert [r[:3] for r in replies] == [b"220"] * 20 + [b"421"]
        assert replies[-1].startswith(Refusal.TOO_MANY_FROM_ADDRESS.value.encode())
    finally:
        for sock in held:
            sock.close()
        stop()


def test_a_client_reconnecting_at_its_limit_is_not_refused(tmp_path):
    """Issue 22: twenty concurrent sessions from one client, each sending a mail, quitting and
    connecting again at once, never get 421: a session that said QUIT no longer counts."""
    running, stop = start_intake(tmp_path, max_sessions=100, max_sessions_per_ip=20, acceptors=2)
    refused: list[tuple[int, bytes]] = []

    def client() -> None:
        for _ in range(12):
            try:
                with smtplib.SMTP("127.0.0.1", running.port, timeout=10) as session:
                    session.sendmail("a@ext.example", ["u@corp.example"], MAIL)
            except smtplib.SMTPConnectError as exc:
                refused.append((exc.smtp_code, exc.smtp_error))

    threads = [threading.Thread(target=client) for _ in range(20)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert refused == []
        assert len(running.committed) == 240
    finally:
        stop()


def test_a_session_idle_before_mail_is_closed_after_the_short_timeout(tmp_path):
    running, stop = start_intake(tmp_path, idle_timeout_s=1.0)  # timeout_s stays 300
    try:
        idle = smtplib.SMTP("127.0.0.1", running.port, timeout=10)
        idle.ehlo()
        busy = smtplib.SMTP("127.0.0.1", running.port, timeout=10)
        busy.ehlo()
        assert busy.mail("a@ext.example")[0] == 250
        started = time.monotonic()
        code, text = idle.getreply()  # nothing sent: the server speaks first, then hangs up
        waited = time.monotonic() - started
        assert (code, text) == (421, b"4.4.2 outer.test Error: timeout exceeded")
        assert 0.8 <= waited < 4
        with pytest.raises(smtplib.SMTPServerDisconnected):
            idle.noop()
        # in a mail transaction the long timeout holds, longer than the short one
        time.sleep(1.5)
        assert busy.rcpt("u@corp.example")[0] == 250
        time.sleep(1.5)
        assert busy.data(MAIL)[0] == 250
        # after the mail no transaction is open: the short timeout again
        assert busy.getreply()[0] == 421
        # a session that never says anything is closed too, and its count is freed
        silent = [_connect(running.port, "127.0.0.3") for _ in range(5)]
        assert all(_line(s).startswith(b"220") for s in silent)
        assert all(_line(s).startswith(b"421 4.4.2") for s in silent)
        again = _connect(running.port, "127.0.0.3")
        assert _line(again).startswith(b"220")
        again.close()
    finally:
        stop()


def test_under_stress_every_idle_session_gets_the_stress_timeout(tmp_path):
    running, stop = start_intake(
        tmp_path, max_sessions=10, max_sessions_per_ip=10,
        idle_timeout_s=60.0, stress_timeout_s=1.0, stress_fraction=0.5,
    )  # fmt: skip
    sessions = []
    try:
        for _ in range(4):  # in a mail transaction, below the stress mark (5 of 10)
            session = smtplib.SMTP("127.0.0.1", running.port, timeout=10)
            session.ehlo()
            session.mail("a@ext.example")
            sessions.append(session)
        time.sleep(2.5)  # longer than the stress timeout: no stress, nobody is cut
        assert [s.noop()[0] for s in sessions] == [250] * 4
        fifth = smtplib.SMTP("127.0.0.1", running.port, timeout=10)  # the stress mark
        fifth.ehlo()  # before MAIL: its 60 s are shortened too
        sessions.append(fifth)
        started = time.monotonic()
        replies = [s.getreply() for s in sessions]
        assert replies == [(421, b"4.4.2 outer.test Error: timeout exceeded")] * 5
        assert time.monotonic() - started < 5
        # below the mark again: a new idle session keeps the normal timeout
        calm = smtplib.SMTP("127.0.0.1", running.port, timeout=10)
        calm.ehlo()
        time.sleep(2.5)
        assert calm.noop()[0] == 250
        calm.quit()
    finally:
        for session in sessions:
            session.close()
        stop()


# ------------------------------------------------------------------------- the counter alone


def _limits(**kwargs: int) -> IntakeLimits:
    values = {"max_sessions": 100, "max_sessions_per_ip": 3} | kwargs
    return IntakeLimits(frozenset({"corp.example"}), 1 << 20, 10, **values)


def test_counts_are_exact_per_address_and_the_table_never_evicts():
    counter = SessionCounter(_limits(max_sessions=9), max_addresses=4)
    for ip in ("10.0.0.1", "10.0.0.2", "10.0.0.3", "::1"):
        assert counter.enter(ip) is None
    assert counter.enter("10.0.0.5") == Refusal.TOO_MANY_ADDRESSES  # full: no eviction
    assert counter.enter("10.0.0.1") is None  # addresses held keep counting
    assert counter.enter("10.0.0.1") is None
    assert counter.enter("10.0.0.1") == Refusal.TOO_MANY_FROM_ADDRESS
    assert counter.count("10.0.0.1") == 3
    counter.leave("10.0.0.2")
    assert counter.enter("10.0.0.5") is None  # room again
    assert counter.count("10.0.0.2") == 0
    assert counter.count("::ffff:10.0.0.1") == 3  # an IPv4-mapped address is the same client
    assert [counter.enter("10.0.0.3") for _ in range(3)] == [
        None,
        None,
        Refusal.TOO_MANY_FROM_ADDRESS,
    ]
    assert (counter.count("10.0.0.3"), counter.total) == (3, 8)
    assert counter.enter("::1") is None
    assert counter.enter("::1") == Refusal.TOO_MANY_SESSIONS


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 11)), max_size=200))
def test_the_table_agrees_with_a_dictionary(operations):
    """Random enters and leaves on a small table (many probe collisions, deletions that
    shift entries back) count exactly what a dictionary counts."""
    limits = _limits(max_sessions=1000, max_sessions_per_ip=5)
    counter = SessionCounter(limits, max_addresses=8)
    model: dict[str, int] = {}
    for entering, host in operations:
        ip = f"192.0.2.{host}"
        if entering:
            reply = counter.enter(ip)
            if model.get(ip, 0) >= 5:
                assert reply == Refusal.TOO_MANY_FROM_ADDRESS
            elif ip not in model and len(model) >= 8:
                assert reply == Refusal.TOO_MANY_ADDRESSES
            else:
                assert reply is None
                model[ip] = model.get(ip, 0) + 1
        elif ip in model:
            counter.leave(ip)
            model[ip] -= 1
            if model[ip] == 0:
                del model[ip]
        for known in {f"192.0.2.{h}" for h in range(12)}:
            assert counter.count(known) == model.get(known, 0)
        assert counter.total == sum(model.values())


def _churn(counter: SessionCounter, seed: int, rounds: int) -> None:
    rng = random.Random(seed)
    for _ in range(rounds):
        ip = f"198.51.100.{rng.randrange(40)}"
        if counter.enter(ip) is None:
            counter.leave(ip)


def test_the_counts_are_shared_and_exact_across_forked_acceptors():
    context = multiprocessing.get_context("fork")
    counter = SessionCounter(_limits(max_sessions=200, max_sessions_per_ip=2), context=context)
    assert counter.enter("203.0.113.7") is None
    children = [context.Process(target=_churn, args=(counter, seed, 2000)) for seed in range(4)]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=60)
    assert [child.exitcode for child in children] == [0] * 4
    assert counter.total == 1
    assert counter.count("203.0.113.7") == 1
    assert all(counter.count(f"198.51.100.{n}") == 0 for n in range(40))
    holder = context.Process(target=counter.enter, args=("203.0.113.7",))
    holder.start()
    holder.join(timeout=10)
    assert (
        counter.enter("203.0.113.7") == Refusal.TOO_MANY_FROM_ADDRESS
    )  # the child's count is seen


@pytest.mark.parametrize(
    ("in_transaction", "stressed", "limit"),
    [(True, False, 300.0), (False, False, 30.0), (True, True, 10.0), (False, True, 10.0)],
)
def test_idle_limits(in_transaction: bool, stressed: bool, limit: float) -> None:
    timeouts = IdleTimeouts(transaction_s=300.0, no_transaction_s=30.0, stress_s=10.0)
    assert timeouts.limit_s(in_transaction=in_transaction, stressed=stressed) == limit


def test_a_short_session_timeout_is_never_lengthened() -> None:
    """[smtp] timeout_s below the idle or stress timeout stays the limit everywhere."""
    timeouts = IdleTimeouts(transaction_s=5.0, no_transaction_s=30.0, stress_s=10.0)
    assert {
        timeouts.limit_s(in_transaction=t, stressed=s) for t in (True, False) for s in (True, False)
    } == {5.0}


def test_address_keys() -> None:
    assert address_key("192.0.2.1") == address_key("::ffff:192.0.2.1")
    assert address_key("192.0.2.1") != address_key("192.0.2.2")
    assert address_key("fe80::1%eth0") == address_key("fe80::1")
    assert address_key("2001:db8::1") < 2**128
    assert address_key("not an address") == address_key("not an address") < 2**128
