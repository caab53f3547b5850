"""MTA-STS (RFC 8461): parsing, matching, caching, the HTTPS fetch, and delivery under an
enforce policy (issue 21.4)."""

from __future__ import annotations

import http.server
import ssl
import threading
from collections.abc import Iterator

import pytest
import trustme

from outer_agent import mtasts
from outer_agent.delivery import SmtpHop
from outer_agent.errors import DeliveryDeferred
from outer_agent.mtasts import (
    StsPolicy,
    StsPolicyError,
    StsResolver,
    mx_allowed,
    parse_policy,
    parse_txt,
)
from tests.outer.sinks import FaultySink, start_sink

POLICY = "version: STSv1\r\nmode: enforce\r\nmx: mx1.partner.example\r\nmx: *.mail.partner.example\r\nmax_age: 86400\r\n"


def test_a_policy_parses_and_its_mx_patterns_match_one_label() -> None:
    policy = parse_policy(POLICY)
    assert policy == StsPolicy("enforce", ("mx1.partner.example", "*.mail.partner.example"), 86400)
    assert mx_allowed(policy, "MX1.partner.example.")
    assert mx_allowed(policy, "a.mail.partner.example")
    assert not mx_allowed(policy, "a.b.mail.partner.example")  # * is one label
    assert not mx_allowed(policy, "mail.partner.example")
    assert not mx_allowed(policy, "evil.example")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("version: STSv2\nmode: enforce\nmx: a\nmax_age: 1\n", "STSv1"),
        ("version: STSv1\nmode: strict\nmx: a\nmax_age: 1\n", "mode"),
        ("version: STSv1\nmode: enforce\nmax_age: 1\n", "no mx"),
        ("version: STSv1\nmode: enforce\nmx: a\nmax_age: 99999999999\n", "max_age"),
        ("version: STSv1\nmode: enforce\nmx: a\nmax_age: soon\n", "max_age"),
        ("version: STSv1\n" + "x: y\n" * 20000, "larger"),
    ],
)
def test_a_broken_policy_is_refused_by_name(text: str, why: str) -> None:
    with pytest.raises(StsPolicyError, match=why):
        parse_policy(text)


def test_the_txt_record_gives_the_id_only_when_there_is_exactly_one() -> None:
    assert parse_txt(["v=STSv1; id=20261205T1;"]) == "20261205T1"
    assert parse_txt(["v=spf1 -all", "v=STSv1; id=a"]) == "a"
    assert parse_txt(["v=STSv1; id=a", "v=STSv1; id=b"]) is None
    assert parse_txt([]) is None


class Clock:
    now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_the_policy_is_cached_for_max_age_and_fetched_again_when_the_id_changes() -> None:
    txt = {"_mta-sts.partner.example": ["v=STSv1; id=1"]}
    fetched: list[str] = []

    def fetch(domain: str) -> str:
        fetched.append(domain)
        return POLICY

    clock = Clock()
    resolver = StsResolver(lambda name: txt.get(name, []), fetch, clock)
    assert resolver.policy_for("partner.example").mode == "enforce"  # type: ignore[union-attr]
    assert resolver.policy_for("partner.example") is not None
    assert fetched == ["partner.example"]
    txt["_mta-sts.partner.example"] = ["v=STSv1; id=2"]
    assert resolver.policy_for("partner.example").policy_id == "2"  # type: ignore[union-attr]
    assert len(fetched) == 2
    assert resolver.policy_for("nopolicy.example") is None


def test_an_unreachable_policy_server_falls_back_to_the_cached_policy() -> None:
    clock = Clock()
    answers = iter([POLICY])

    def fetch(domain: str) -> str:
        try:
            return next(answers)
        except StopIteration:
            raise OSError("connection refused") from None

    resolver = StsResolver(lambda name: ["v=STSv1; id=1"], fetch, clock)
    assert resolver.policy_for("partner.example") is not None
    resolver._cache["partner.example"] = (resolver._cache["partner.example"][0], clock.now - 1)
    assert resolver.policy_for("partner.example") is None  # expired and unreachable: none


@pytest.fixture
def policy_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[int, list[bytes]]]:
    """An HTTPS server answering every path with the queued bodies, its CA trusted by the
    fetch (the system's CAs stand in for a public CA)."""
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("mta-sts.partner.example").configure_cert(server_ctx)
    bodies: list[bytes] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = bodies.pop(0)
            if body.startswith(b"REDIRECT"):
                self.send_response(302)
                self.send_header("Location", "https://elsewhere.example/policy")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = server_ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    real_context = ssl.create_default_context

    def trusting_context(*args: object, **kwargs: object) -> ssl.SSLContext:
        context = real_context()
        ca.configure_trust(context)
        return context

    monkeypatch.setattr(mtasts.ssl, "create_default_context", trusting_context)
    real_connection = mtasts.urllib.request.HTTPSHandler.https_open
    port = httpd.server_address[1]

    def to_local(self: object, request: object) -> object:  # the name resolves to us
        request.host = f"mta-sts.partner.example:{port}"  # type: ignore[attr-defined]
        return real_connection(self, request)  # type: ignore[arg-type]

    monkeypatch.setattr(mtasts.urllib.request.HTTPSHandler, "https_open", to_local)
    monkeypatch.setattr("socket.getaddrinfo", _only_loopback(__import__("socket").getaddrinfo))
    try:
        yield port, bodies
    finally:
        httpd.shutdown()


def _only_loopback(real):  # type: ignore[no-untyped-def]
    def resolve(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        return real("127.0.0.1" if host.endswith("partner.example") else host, *args, **kwargs)

    return resolve


def test_the_policy_is_fetched_over_verified_https_and_redirects_are_refused(
    policy_server: tuple[int, list[bytes]],
) -> None:
    _, bodies = policy_server
    bodies.append(POLICY.encode())
    assert parse_policy(mtasts.fetch_policy_text("partner.example")).mode == "enforce"
    bodies.append(b"REDIRECT")
    with pytest.raises(OSError, match="redirect"):
        mtasts.fetch_policy_text("partner.example")


def _hop(sink_port: int, policy: str, *, starttls: str = "opportunistic") -> SmtpHop:
    resolver = StsResolver(lambda name: ["v=STSv1; id=1"], lambda domain: policy)
    return SmtpHop(
        smarthost=None, helo="outer.test", timeout_s=5, starttls=starttls, mta_sts=resolver,
        resolve_mx=lambda domain: [("127.0.0.1", sink_port)],
    )  # fmt: skip


def test_an_enforce_policy_keeps_mail_from_an_mx_it_does_not_name() -> None:
    sink = FaultySink()
    controller = start_sink(sink)
    try:
        with pytest.raises(DeliveryDeferred, match="matches its MTA-STS policy"):
            _hop(controller.port, POLICY).send("a@corp.example", ["b@partner.example"], b"x\r\n")
    finally:
        controller.stop()
    assert sink.received == []


def test_an_enforce_policy_demands_tls_even_where_ours_would_go_in_clear() -> None:
    named = POLICY.replace("mx1.partner.example", "127.0.0.1")
    sink = FaultySink()
    controller = start_sink(sink)  # no STARTTLS
    try:
        with pytest.raises(DeliveryDeferred, match="does not offer STARTTLS"):
            _hop(controller.port, named, starttls="off").send(
                "a@corp.example", ["b@partner.example"], b"x\r\n"
            )
        testing = named.replace("mode: enforce", "mode: testing")
        _hop(controller.port, testing, starttls="off").send(
            "a@corp.example", ["b@partner.example"], b"x\r\n"
        )
    finally:
        controller.stop()
    assert len(sink.received) == 1  # testing mode changes nothing
