"""Access records (접속기록, issue 16.3): who did what on the web listener and the command line,
when, from which address, to which mail — one audit event each, in the agent's audit store.

Every sign-in, sign-out, failed sign-in, refused API token, refused role, view of a mail's
details, findings or image, export, configuration change and change of an account or token
is recorded by calling ``AccessLog.record(account, client, action, mail_id=..., detail=...)``.
The event is the audit step ``access`` with the details ``account``, ``address``, ``action``
and, where there is one, ``mail``, ``detail`` and ``count``. The audit row's own mail id is
always ``-``: an access record is not a step of the mail, so it never shows in a mail's trail
(a security officer reading a mail must not learn who else read it); it is found by its
``mail`` detail (``AccessQuery(mail=...)``, ``maildiode audit --step access --search ID``).
Rows are only ever appended (the audit store gets a hash chain in a later issue).

Auditors read them with ``read_access`` (the API's ``{"items": [...], "total": N}``, newest
first, paged) or the monthly review (``access_review``). Reading opens the store read-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import tzinfo
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from agentkit.mailindex.errors import QueryRefused
from agentkit.mailindex.periods import iso_time, parse_instant
from agentkit.readonly import query_read_only

__all__ = [
    "ACCESS_STEP",
    "ACTION_NAMES_KO",
    "AccessLog",
    "AccessPage",
    "AccessQuery",
    "AccessQueryRefused",
    "AccessRecord",
    "Action",
    "iso_time",
    "parse_time",
    "read_access",
    "records_between",
]

ACCESS_STEP = "access"
NO_MAIL = "-"  # the audit row's mail id: an access is not a step of a mail
# An address is at most 254 characters (RFC 5321); an account or client address longer than
# that is cut, as is a detail past a short sentence: records must stay small under a flood.
MAX_NAME_CHARS = 254
MAX_DETAIL_CHARS = 300
MAX_MAIL_ID_CHARS = 128
# A page of records: enough for a screen or a script's batch; more is asked page by page.
DEFAULT_PAGE = 100
MAX_PAGE = 1000
# Deeper than any auditor pages by hand; past it, narrow the time range instead.
MAX_OFFSET = 1_000_000


class Action(StrEnum):
    """What was done. The values are stable codes (scripts filter on them); none is a secret."""

    SIGNIN = "signin"
    SIGNOUT = "signout"
    SIGNIN_FAILED = "signin_failed"
    API_TOKEN_REFUSED = "api_token_refused"  # noqa: S105 - a name, not a token
    DENIED = "denied"  # signed in, but the role may not use that page or endpoint
    MAIL_VIEWED = "mail_viewed"
    FINDINGS_VIEWED = "findings_viewed"
    IMAGE_VIEWED = "image_viewed"
    EXPORTED = "exported"
    RECORDS_VIEWED = "records_viewed"  # an auditor read access records
    CONFIG_CHANGED = "config_changed"
    # Records of access rights (issue 21.5)
    ACCOUNT_CREATED = "account_created"
    ACCOUNT_REMOVED = "account_removed"
    ACCOUNT_DISABLED = "account_disabled"
    ACCOUNT_ENABLED = "account_enabled"
    ROLE_CHANGED = "role_changed"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 - a name, not a password
    TOTP_RESET = "totp_reset"
    TOTP_REMOVED = "totp_removed"
    TOKEN_CREATED = "token_created"  # noqa: S105 - a name, not a token
    TOKEN_REVOKED = "token_revoked"  # noqa: S105 - a name, not a token
    DIRECTORY_IMPORTED = "directory_imported"  # the summary of one HR import
    DIRECTORY_CHANGED = "directory_changed"  # one user or department added, changed, removed


ACTION_NAMES_KO: dict[str, str] = {
    Action.SIGNIN: "로그인",
    Action.SIGNOUT: "로그아웃",
    Action.SIGNIN_FAILED: "로그인 실패",
    Action.API_TOKEN_REFUSED: "API 토큰 거부",
    Action.DENIED: "권한 없음",
    Action.MAIL_VIEWED: "메일 조회",
    Action.FINDINGS_VIEWED: "검출 내용 조회",
    Action.IMAGE_VIEWED: "이미지 조회",
    Action.EXPORTED: "내보내기",
    Action.RECORDS_VIEWED: "접속기록 조회",
    Action.CONFIG_CHANGED: "설정 변경",
    Action.ACCOUNT_CREATED: "계정 생성",
    Action.ACCOUNT_REMOVED: "계정 삭제",
    Action.ACCOUNT_DISABLED: "계정 비활성화",
    Action.ACCOUNT_ENABLED: "계정 활성화",
    Action.ROLE_CHANGED: "역할 변경",
    Action.PASSWORD_CHANGED: "비밀번호 변경",
    Action.TOTP_RESET: "2단계 인증 재설정",
    Action.TOTP_REMOVED: "2단계 인증 해제",
    Action.TOKEN_CREATED: "토큰 발급",
    Action.TOKEN_REVOKED: "토큰 폐기",
    Action.DIRECTORY_IMPORTED: "인사정보 가져오기",
    Action.DIRECTORY_CHANGED: "인사정보 변경",
}


class Recorder(Protocol):
    """The audit store's writing side (``agentkit.audit.AuditLog``)."""

    def record(self, mail_id: str, step: str, **details: Any) -> None: ...


class AccessQueryRefused(ValueError):
    """A query parameter that cannot be used; names the parameter and why."""

    def __init__(self, parameter: str, why: str) -> None:
        self.parameter, self.why = parameter, why
        super().__init__(f"{parameter}: {why}")


@dataclass(frozen=True)
class AccessRecord:
    ts: float
    account: str
    address: str
    action: str
    mail: str | None = None
    detail: str = ""
    count: int | None = None

    def as_item(self, zone: tzinfo) -> dict[str, Any]:
        """The API's shape: ``time``, ``account``, ``address``, ``action``, ``mail`` (null when
        the record is about no mail), then ``detail`` and, for exports, ``count``."""
        item: dict[str, Any] = {"time": iso_time(self.ts, zone), "account": self.account,
                                "address": self.address, "action": self.action,
                                "mail": self.mail, "detail": self.detail}  # fmt: skip
        if self.count is not None:
            item["count"] = self.count
        return item


@dataclass(frozen=True)
class AccessQuery:
    since: float | None = None
    until: float | None = None
    account: str | None = None
    action: str | None = None
    mail: str | None = None
    offset: int = 0
    limit: int = DEFAULT_PAGE

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_PAGE:
            raise AccessQueryRefused("limit", f"must be between 1 and {MAX_PAGE}")
        if not 0 <= self.offset <= MAX_OFFSET:
            raise AccessQueryRefused("offset", f"must be between 0 and {MAX_OFFSET}")
        if self.action is not None and self.action not in Action.__members__.values():
            raise AccessQueryRefused("action", f"{self.action!r} is not an action code")


@dataclass(frozen=True)
class AccessPage:
    items: list[AccessRecord] = field(default_factory=list)
    total: int = 0

    def as_json(self, zone: tzinfo) -> dict[str, Any]:
        return {"items": [r.as_item(zone) for r in self.items], "total": self.total}


class AccessLog:
    """Records accesses into the audit store and reads them back (read-only)."""

    def __init__(self, recorder: Recorder, path: Path | None, zone: tzinfo) -> None:
        self.recorder, self.path, self.zone = recorder, path, zone

    def record(
        self,
        account: str,
        client: str,
        action: Action,
        *,
        mail_id: str | None = None,
        detail: str | None = None,
        count: int | None = None,
    ) -> None:
        details: dict[str, Any] = {
            "account": account[:MAX_NAME_CHARS],
            "address": client[:MAX_NAME_CHARS],
            "action": str(action),
        }
        if mail_id:
            details["mail"] = mail_id[:MAX_MAIL_ID_CHARS]
        if detail:
            details["detail"] = detail[:MAX_DETAIL_CHARS]
        if count is not None:
            details["count"] = int(count)
        self.recorder.record(NO_MAIL, ACCESS_STEP, **details)

    @property
    def readable(self) -> bool:
        return self.path is not None

    def query(self, query: AccessQuery) -> AccessPage:
        if self.path is None:
            return AccessPage()
        return read_access(self.path, query)


# ----------------------------------------------------------------------------------- reading

_COLUMNS = (
    "ts, json_extract(details, '$.account'), json_extract(details, '$.address'), "
    "json_extract(details, '$.action'), json_extract(details, '$.mail'), "
    "json_extract(details, '$.detail'), json_extract(details, '$.count')"
)


def _where(query: AccessQuery) -> tuple[str, tuple[Any, ...]]:
    clauses: list[str] = ["step = ?"]
    args: list[object] = [ACCESS_STEP]
    for clause, value in (
        ("ts >= ?", query.since),
        ("ts < ?", query.until),
        ("json_extract(details, '$.account') = ?", query.account),
        ("json_extract(details, '$.action') = ?", query.action),
        ("json_extract(details, '$.mail') = ?", query.mail),
    ):
        if value is not None:
            clauses.append(clause)
            args.append(value)
    return " AND ".join(clauses), tuple(args)


def read_access(path: Path, query: AccessQuery) -> AccessPage:
    """One page of the records ``query`` selects, newest first, and how many it selects."""
    where, args = _where(query)
    rows = query_read_only(
        path,
        f"SELECT {_COLUMNS} FROM events WHERE {where} ORDER BY ts DESC, id DESC"  # noqa: S608
        " LIMIT ? OFFSET ?",
        (*args, query.limit, query.offset),
    )
    counted = query_read_only(path, f"SELECT COUNT(*) FROM events WHERE {where}", args)  # noqa: S608
    return AccessPage([_record(row) for row in rows], int(counted[0][0]) if counted else 0)


def records_between(path: Path, since: float, until: float) -> list[AccessRecord]:
    """Every record from ``since`` to before ``until``, oldest first (the monthly review)."""
    where, args = _where(AccessQuery(since=since, until=until))
    sql = f"SELECT {_COLUMNS} FROM events WHERE {where} ORDER BY ts, id"  # noqa: S608
    rows = query_read_only(path, sql, args)
    return [_record(row) for row in rows]


def _record(row: tuple[Any, ...]) -> AccessRecord:
    ts, account, address, action, mail, detail, count = row
    return AccessRecord(float(ts), str(account or ""), str(address or ""), str(action or ""),
                        str(mail) if mail else None, str(detail or ""),
                        int(count) if isinstance(count, int) else None)  # fmt: skip


# ------------------------------------------------------------------------------------- times


def parse_time(text: str, zone: tzinfo, *, parameter: str, end_of_day: bool = False) -> float:
    """An ISO 8601 time as the mail index reads one (``parse_instant``: without an offset it is
    in ``zone``; a date alone with ``end_of_day`` includes that day), refused by name."""
    try:
        return parse_instant(text, zone, parameter=parameter, end_of_day=end_of_day)
    except QueryRefused as exc:
        raise AccessQueryRefused(parameter, exc.why) from None
