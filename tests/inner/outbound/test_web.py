"""The approval pages over plain HTTP (Starlette's TestClient): sign-in, list, detail with the
masked image, approve, reject with a reason; CSRF and every kind of bad token refused and
audited."""

from __future__ import annotations

import re
import warnings
from urllib.parse import urljoin, urlsplit

import pytest

with warnings.catch_warnings():
    # Starlette 1.x asks for "httpx2" in its TestClient; httpx is what we have, and works.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from tests.inner.outbound.test_workflow import accept
from tests.support.outbound import (
    PASSWORDS,
    RRN,
    RRN_MASKED,
    approval_app,
    build_workflow,
    rrn_mail,
)


@pytest.fixture
def site(tmp_path):
    parts = build_workflow(tmp_path)
    return parts, approval_app(parts)


def client_for(app) -> TestClient:
    return TestClient(app, base_url="http://127.0.0.1", follow_redirects=False)


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)


def token_of(page: str) -> str:
    return re.search(r'name="token" value="([^"]+)"', page).group(1)


def sign_in(client: TestClient, email: str, next_path: str = "/requests") -> None:
    page = client.get("/login").text
    response = client.post(
        "/login",
        data={
            "csrf": csrf_of(page),
            "email": email,
            "password": PASSWORDS[email],
            "next": next_path,
        },
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == next_path


def refused_reasons(parts) -> list[str]:
    return [f["reason"] for _m, s, f in parts.audit.events if s == "token_refused"]


def test_sign_in_list_detail_approve(site):
    parts, app = site
    mail_id = accept(parts, rrn_mail())
    request = parts.state.request_for_mail(mail_id)
    client = client_for(app)
    assert client.get("/requests").headers["location"] == "/login?next=/requests"
    sign_in(client, "lee@corp.example")
    listing = client.get("/requests")
    assert "거래처 명단 송부" in listing.text
    assert request.request_id in listing.text
    assert listing.headers["referrer-policy"] == "no-referrer"
    detail = client.get(f"/requests/{request.request_id}")
    assert RRN_MASKED in detail.text
    assert RRN not in detail.text
    image = client.get(f"/requests/{request.request_id}/image.png")
    assert image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG")
    response = client.post(
        f"/requests/{request.request_id}/decide",
        data={"csrf": csrf_of(detail.text), "token": token_of(detail.text), "action": "approve"},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/requests?done=approved"
    assert parts.state.mail(mail_id).state == "sending"
    assert "approved" in parts.audit.steps(mail_id)


def test_reject_needs_a_reason(site):
    parts, app = site
    mail_id = accept(parts, rrn_mail())
    request = parts.state.request_for_mail(mail_id)
    client = client_for(app)
    sign_in(client, "park@corp.example")
    detail = client.get(f"/requests/{request.request_id}").text
    form = {"csrf": csrf_of(detail), "token": token_of(detail), "action": "reject"}
    empty = client.post(f"/requests/{request.request_id}/decide", data={**form, "reason": " "})
    assert empty.status_code == 400
    assert "반려 사유" in empty.text
    done = client.post(
        f"/requests/{request.request_id}/decide", data={**form, "reason": "개인정보 포함"}
    )
    assert done.status_code == 303
    assert parts.state.request(request.request_id).reason == "개인정보 포함"
    assert parts.state.mail(mail_id).state == "rejected"


def test_link_from_the_mail_leads_through_sign_in(site):
    parts, app = site
    mail_id = accept(parts, rrn_mail())
    request = parts.state.request_for_mail(mail_id)
    token = parts.workflow.issue_token(request, "lee@corp.example")
    link = f"/requests/{request.request_id}?t={token}&do=approve"
    client = client_for(app)
    first = client.get(link)
    assert first.status_code == 303
    assert first.headers["location"].startswith("/login?next=")
    sign_in(client, "lee@corp.example", next_path=link)
    detail = client.get(link)
    assert detail.status_code == 200
    assert token_of(detail.text) == token


def test_csrf_is_required_on_every_post(site):
    parts, app = site
    mail_id = accept(parts, rrn_mail())
    request = parts.state.request_for_mail(mail_id)
    client = client_for(app)
    page = client.get("/login").text
    no_csrf = client.post(
        "/login", data={"email": "lee@corp.example", "password": PASSWORDS["lee@corp.example"]}
    )
    assert no_csrf.status_code == 403
    stranger = client_for(app)  # another browser: its session does not match this token
    assert (
        stranger.post(
            "/login",
            data={
                "csrf": csrf_of(page),
                "email": "lee@corp.example",
                "password": PASSWORDS["lee@corp.example"],
            },
        ).status_code
        == 403
    )
    sign_in(client, "lee@corp.example")
    detail = client.get(f"/requests/{request.request_id}").text
    forged = client.post(
        f"/requests/{request.request_id}/decide",
        data={"csrf": "0" * 64, "token": token_of(detail), "action": "approve"},
    )
    assert forged.status_code == 403
    assert client.post("/logout", data={}).status_code == 403
    assert parts.state.mail(mail_id).state == "held"
    assert refused_reasons(parts) == ["csrf"] * 4


def test_bad_tokens_are_refused_and_audited(site):
    parts, app = site
    mail_id = accept(parts, rrn_mail())
    request = parts.state.request_for_mail(mail_id)
    lee, park = client_for(app), client_for(app)
    sign_in(lee, "lee@corp.example")
    sign_in(park, "park@corp.example")
    lee_page = lee.get(f"/requests/{request.request_id}").text
    park_page = park.get(f"/requests/{request.request_id}").text

    def decide(client, page, token, action="approve"):
        return client.post(
            f"/requests/{request.request_id}/decide",
            data={"csrf": csrf_of(page), "token": token, "action": action, "reason": "x"},
        )

    # someone else's token: park presents lee's
    assert decide(park, park_page, token_of(lee_page)).status_code == 403
    # forged: a token signed with another key
    from inner_agent.outbound.tokens import TokenSigner

    forged = TokenSigner(b"z" * 32).issue(
        request.request_id, "park@corp.example", now=parts.clock(), ttl_s=600
    )
    assert decide(park, park_page, forged).status_code == 403
    assert park.get(f"/requests/{request.request_id}?t={forged}").status_code == 403
    # expired
    old = parts.workflow.signer.issue(
        request.request_id, "park@corp.example", now=parts.clock() - 100, ttl_s=10
    )
    assert decide(park, park_page, old).status_code == 403
    # reused: lee approves, then tries the same token again
    assert decide(lee, lee_page, token_of(lee_page)).status_code == 303
    again = decide(lee, lee_page, token_of(lee_page), action="reject")
    assert again.status_code == 403
    assert "이미 사용한" in again.text
    assert refused_reasons(parts) == ["wrong-approver", "forged", "forged", "expired", "reused"]
    assert parts.state.mail(mail_id).state == "sending"
    assert parts.state.request(request.request_id).decided_by == "lee@corp.example"


def test_other_users_cannot_see_a_request(site):
    parts, app = site
    mail_id = accept(parts, rrn_mail())
    request = parts.state.request_for_mail(mail_id)
    client = client_for(app)
    sign_in(client, "choi@corp.example")
    assert client.get(f"/requests/{request.request_id}").status_code == 404
    assert client.get(f"/requests/{request.request_id}/image.png").status_code == 404
    assert request.request_id not in client.get("/requests").text


def test_wrong_password_and_lockout(site):
    _parts, app = site
    client = client_for(app)
    for _ in range(5):
        page = client.get("/login").text
        bad = client.post(
            "/login", data={"csrf": csrf_of(page), "email": "lee@corp.example", "password": "nope"}
        )
        assert bad.status_code == 401
    page = client.get("/login").text
    locked = client.post(
        "/login",
        data={
            "csrf": csrf_of(page),
            "email": "lee@corp.example",
            "password": PASSWORDS["lee@corp.example"],
        },
    )
    assert locked.status_code == 401  # right password, but locked for the window


def test_next_is_never_another_site(site):
    _parts, app = site
    client = client_for(app)
    page = client.get("/login").text
    response = client.post(
        "/login",
        data={
            "csrf": csrf_of(page),
            "email": "lee@corp.example",
            "password": PASSWORDS["lee@corp.example"],
            "next": "//evil.example/x",
        },
    )
    assert response.headers["location"] == "/requests"


@pytest.mark.parametrize(
    "target",
    ["/\t/evil.example/x", "/\n/evil.example/x", "/\r\n/evil.example", "/\\evil.example",
     "/\\/evil.example", "https://evil.example/", "/%2F/evil.example", " //evil.example"],
)  # fmt: skip
def test_next_cannot_be_made_another_site_by_what_browsers_strip(site, target):
    """A1 red team (held; no test had these): a browser drops tabs and line breaks from a URL
    and reads a backslash as a slash, so "/\t/evil.example" is "//evil.example" to it. The
    Location must stay on this site as a browser resolves it (urllib strips them the same)."""
    _parts, app = site
    client = client_for(app)
    page = client.get("/login").text
    response = client.post("/login", data={
        "csrf": csrf_of(page), "email": "lee@corp.example",
        "password": PASSWORDS["lee@corp.example"], "next": target})  # fmt: skip
    assert response.status_code == 303
    location = response.headers["location"]
    resolved = urlsplit(urljoin("http://127.0.0.1:8443/", location.replace("\\", "/")))
    assert resolved.netloc == "127.0.0.1:8443", location


def test_someone_elses_link_is_refused_and_logged(site, caplog):
    parts, app = site
    mail_id = accept(parts, rrn_mail())
    request = parts.state.request_for_mail(mail_id)
    lee_link = f"/requests/{request.request_id}?t={parts.workflow.issue_token(request, 'lee@corp.example')}"
    client = client_for(app)
    sign_in(client, "choi@corp.example")
    with caplog.at_level("WARNING", logger="inner_agent.outbound.token_gate"):
        page = client.get(lee_link)
    assert page.status_code == 403
    assert "로그인한 사용자가 결정할 수 없습니다" in page.text
    assert refused_reasons(parts) == ["wrong-approver"]
    assert "approval token refused (wrong-approver) for choi@corp.example" in caplog.text


def test_a_stranger_posting_an_empty_rejection_sees_nothing(site):
    """The "reason missing" page shows the request again: only to someone who may see it."""
    parts, app = site
    mail_id = accept(parts, rrn_mail())
    request = parts.state.request_for_mail(mail_id)
    client = client_for(app)
    sign_in(client, "choi@corp.example")
    listing = client.get("/requests").text
    response = client.post(
        f"/requests/{request.request_id}/decide",
        data={"csrf": csrf_of(listing), "token": "x", "action": "reject", "reason": ""},
    )
    assert response.status_code == 404
    assert "거래처 명단 송부" not in response.text
    assert parts.state.mail(mail_id).state == "held"


def test_a_decision_reaching_an_agent_without_the_lease_is_503_and_not_stored(site):
    """The web process of an agent that lost its state's lease (frozen, or stopping) stores
    no decision: 503 with Retry-After, the request still pending for the new holder."""
    from tests.support.outbound import SwitchableFence

    parts, app = site
    mail_id = accept(parts, rrn_mail())
    request = parts.state.request_for_mail(mail_id)
    client = client_for(app)
    sign_in(client, "lee@corp.example")
    detail = client.get(f"/requests/{request.request_id}")
    fence = SwitchableFence()
    parts.workflow.desk.fence = fence
    fence.close("the lease (token 1) is no longer this agent's")
    response = client.post(
        f"/requests/{request.request_id}/decide",
        data={"csrf": csrf_of(detail.text), "token": token_of(detail.text), "action": "approve"},
    )
    assert response.status_code == 503
    assert response.headers["retry-after"] == "60"
    assert "no longer holds its state's lease" in response.text
    assert parts.state.mail(mail_id).state == "held"
    assert "approved" not in parts.audit.steps(mail_id)
