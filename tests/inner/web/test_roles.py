"""Roles on every route (issue 16.2): a table tries every route the listener's app has, with
every method it takes, as every kind of account and as nobody — so a page or an endpoint added
later is in the table without anyone adding it. A route that declares no role is closed to
everyone (deny by default); the API takes no cookies and the pages take no bearer tokens."""

from __future__ import annotations

import re

import pytest
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from inner_agent.outbound.web import create_app
from inner_agent.web.app import listener_app
from inner_agent.web.roles import (
    ALL_ROLES,
    DIRECTORY_ROLES,
    Role,
    declared_roles,
    is_public,
    require,
)
from tests.support.console import (
    ADMIN,
    APPROVER,
    AUDITOR,
    SECURITY,
    bearer,
    browser,
    console_site,
    sign_in,
)

# Who holds which roles: three console-only accounts and a department head of the HR export.
PERSONAS = {
    "admin": (ADMIN, frozenset({Role.ADMIN})),
    "auditor": (AUDITOR, frozenset({Role.AUDITOR})),
    "security": (SECURITY, frozenset({Role.SECURITY})),
    "approver": (APPROVER, DIRECTORY_ROLES),
}
# The policy of today's routes, pinned: changing who may use one is a decision, made here too.
POLICY = {
    ("GET", "/"): ALL_ROLES,
    # approvals (issue 20.4): an administrator may decide on behalf (D57)
    ("GET", "/requests"): {Role.APPROVER, Role.ADMIN},
    ("GET", "/requests/{request_id}"): {Role.APPROVER, Role.ADMIN},
    ("GET", "/requests/{request_id}/image.png"): {Role.APPROVER, Role.ADMIN},
    ("GET", "/requests/{request_id}/pages/{number}"): {Role.APPROVER, Role.ADMIN},
    ("POST", "/requests/{request_id}/confirm"): {Role.APPROVER, Role.ADMIN},
    ("POST", "/requests/{request_id}/decide"): {Role.APPROVER, Role.ADMIN},
    ("POST", "/requests/bulk"): {Role.APPROVER, Role.ADMIN},
    ("GET", "/absence"): {Role.APPROVER},
    ("POST", "/absence"): {Role.APPROVER},
    ("POST", "/absence/{absence_id}/cancel"): {Role.APPROVER},
    # the employee's own mail (issue 20.3)
    ("GET", "/my/sent"): {Role.EMPLOYEE},
    ("POST", "/my/sent/{mail_id}/withdraw"): {Role.EMPLOYEE},
    ("GET", "/my/held"): {Role.EMPLOYEE},
    ("GET", "/api/v1/whoami"): ALL_ROLES,
    ("GET", "/api/v1/access-records"): {Role.ADMIN, Role.AUDITOR},
    # the console (issue 16.4-16.7): security reads mail (its scope), not statistics or records
    ("GET", "/mail"): {Role.ADMIN, Role.AUDITOR, Role.SECURITY},
    ("GET", "/mail/{direction}/{mail_id}"): {Role.ADMIN, Role.AUDITOR, Role.SECURITY},
    ("GET", "/mail/{direction}/{mail_id}/picture.png"): {Role.ADMIN, Role.AUDITOR, Role.SECURITY},
    ("POST", "/mail/export"): {Role.ADMIN, Role.AUDITOR},
    ("GET", "/stats"): {Role.ADMIN, Role.AUDITOR},
    ("POST", "/stats/export"): {Role.ADMIN, Role.AUDITOR},
    ("GET", "/access"): {Role.ADMIN, Role.AUDITOR},
    ("POST", "/access/export"): {Role.ADMIN, Role.AUDITOR},
    ("POST", "/access/review"): {Role.ADMIN, Role.AUDITOR},
    ("GET", "/api/v1/status"): {Role.ADMIN, Role.AUDITOR},
    ("GET", "/api/v1/mail"): {Role.ADMIN, Role.AUDITOR, Role.SECURITY},
    ("GET", "/api/v1/mail/{mail_id}"): {Role.ADMIN, Role.AUDITOR, Role.SECURITY},
    ("GET", "/api/v1/stats"): {Role.ADMIN, Role.AUDITOR},
    # the directory (issue 20.2): auditors read it, only administrators change who approves
    ("GET", "/directory"): {Role.ADMIN, Role.AUDITOR},
    ("GET", "/directory/person"): {Role.ADMIN},
    ("POST", "/directory/person"): {Role.ADMIN},
    ("POST", "/directory/import"): {Role.ADMIN},
    ("POST", "/directory/import/apply"): {Role.ADMIN},
}
PUBLIC = {("GET", "/login"), ("POST", "/login"), ("POST", "/logout")}
ROLE_REFUSAL_PAGE = "권한이 없습니다"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = console_site(tmp_path_factory.mktemp("roles"))
    sessions, tokens = {}, {}
    for name, (email, _roles) in PERSONAS.items():
        sessions[name] = browser(site.app)
        assert sign_in(sessions[name], email).status_code == 303
        if name != "approver":  # tokens are for console roles only
            tokens[name] = site.token_for(email)
    return site, sessions, tokens


def routes_of(app):
    """(method, path template, route) for every route and method of the app."""
    return [
        (method, route.path, route)
        for route in app.routes
        if isinstance(route, Route)
        for method in sorted(route.methods or ())
        if method != "HEAD"
    ]


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x0", path)


def call(client, method: str, path: str, headers=None):
    return client.request(method, concrete(path), headers=headers or {})


def role_refused(response, path: str) -> bool:
    if path.startswith("/api/"):
        return response.status_code == 403 and response.json()["error"] == "forbidden"
    return response.status_code == 403 and ROLE_REFUSAL_PAGE in response.text


def not_let_in(response, path: str) -> bool:
    if path.startswith("/api/"):
        return response.status_code == 401 and response.headers["www-authenticate"].startswith(
            "Bearer"
        )
    return response.status_code == 303 and response.headers["location"].startswith("/login?next=")


def test_the_pinned_policy_is_what_the_routes_declare(site):
    """Every route of the app is pinned here: a new one is added to POLICY with its roles."""
    site, _sessions, _tokens = site
    declared = {}
    for method, path, route in routes_of(site.app):
        if is_public(route.endpoint):
            declared[(method, path)] = "public"
        else:
            declared[(method, path)] = declared_roles(route.endpoint)
            assert declared[(method, path)], f"{method} {path} declares no role"
    for key, roles in POLICY.items():
        assert declared[key] == frozenset(roles), key
    assert {key for key, value in declared.items() if value == "public"} == PUBLIC
    assert set(declared) == set(POLICY) | PUBLIC


def test_every_route_with_every_role(site):
    site, sessions, tokens = site
    tried = 0
    for method, path, route in routes_of(site.app):
        if is_public(route.endpoint):
            continue
        allowed = declared_roles(route.endpoint)
        api = path.startswith("/api/")
        assert not_let_in(call(browser(site.app), method, path), path), (method, path)
        for name, (_email, roles) in PERSONAS.items():
            if api and name not in tokens:
                continue  # no token: the cookie is ignored, see the next test
            client, headers = (browser(site.app), bearer(tokens[name])) if api else (
                sessions[name], None)  # fmt: skip
            response = call(client, method, path, headers)
            if roles & allowed:
                assert not role_refused(response, path), (method, path, name, response.text)
                assert not not_let_in(response, path), (method, path, name)
            else:
                assert role_refused(response, path), (method, path, name, response.status_code)
            tried += 1
    assert tried >= 20


def test_the_api_takes_no_cookie_and_the_pages_take_no_token(site):
    site, sessions, tokens = site
    signed_in = sessions["admin"]
    response = signed_in.get("/api/v1/whoami")
    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"
    assert response.headers["www-authenticate"] == 'Bearer realm="maildiode"'
    page = browser(site.app).get("/", headers=bearer(tokens["admin"]))
    assert page.status_code == 303
    assert page.headers["location"].startswith("/login")


def test_a_role_refusal_is_an_access_record(site):
    site, sessions, _tokens = site
    sessions["auditor"].get("/requests")
    found = site.records(account=AUDITOR, action="denied")
    assert found
    assert found[0].detail == "GET /requests"


def test_a_route_without_a_role_refuses_everyone(tmp_path):
    """Deny by default: a page someone forgot to give a role is closed, not open."""
    site = console_site(tmp_path)

    async def forgotten(_request):
        return PlainTextResponse("secret")

    @require(Role.AUDITOR)
    async def guarded(_request):
        return PlainTextResponse("fine")

    app = listener_app(site.listener, [Route("/forgotten", forgotten),
                                       Route("/api/v1/forgotten", forgotten),
                                       Route("/guarded", guarded)])  # fmt: skip
    admin, auditor = browser(app), browser(app)
    assert sign_in(admin, ADMIN).status_code == 303
    assert sign_in(auditor, AUDITOR).status_code == 303
    for client in (admin, auditor, browser(app)):
        page = client.get("/forgotten")
        assert page.status_code == 403
        assert "secret" not in page.text
    api = browser(app).get("/api/v1/forgotten", headers=bearer(site.token_for(ADMIN)))
    assert api.status_code == 403
    assert api.json()["error"] == "forbidden"
    assert auditor.get("/guarded").text == "fine"
    assert role_refused(admin.get("/guarded"), "/guarded")


def test_require_refuses_in_an_app_without_the_gate():
    """An endpoint taken into an app built some other way keeps its check: nobody passes."""
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    @require(Role.ADMIN)
    async def page(_request):
        return PlainTextResponse("secret")

    response = TestClient(Starlette(routes=[Route("/", page)])).get("/")
    assert response.status_code == 403
    assert "secret" not in response.text


def test_a_console_only_account_is_told_who_it_is_not_sent_to_the_approvals(tmp_path):
    site = console_site(tmp_path)
    auditor = browser(site.app)
    response = sign_in(auditor, AUDITOR)
    assert response.headers["location"] == "/"
    home = auditor.get("/")
    assert home.status_code == 200
    assert "감사자" in home.text
    approver = browser(site.app)
    assert sign_in(approver, APPROVER).headers["location"] == "/requests"
    assert approver.get("/").headers["location"] == "/requests"


def test_the_approval_app_is_the_listener_app(tmp_path):
    """The approval pages are one page set on the listener: the API is on the same app."""
    site = console_site(tmp_path)
    app = create_app(site.parts.workflow.desk, site.listener)
    paths = {route.path for route in app.routes}
    assert {"/login", "/requests", "/api/v1/whoami", "/api/v1/access-records"} <= paths


def test_a_refused_path_cannot_drive_the_readers_terminal(site, caplog):
    """Control characters in a refused path (an ESC sequence clears an operator's screen)
    are escaped in the log line and the record. (The test client drops CR and LF itself.)"""
    site, sessions, _tokens = site
    with caplog.at_level("WARNING", logger="inner_agent.web.gate"):
        sessions["security"].get("/requests/x%1B[2J%08%7F")
    assert caplog.records
    assert all("\x1b" not in r.getMessage() for r in caplog.records)
    found = site.records(account=SECURITY, action="denied")
    assert found[0].detail == "GET /requests/x\\x1b[2J\\x08\\x7f"
