"""The questions the console and the API ask the mail index, as checked value objects. Pure.

``MailQuery`` filters and pages the list of mails; ``StatsQuery`` counts them per period and
group. Both are built from code, or from the API's query parameters with ``from_params``
(every value a string, as a URL gives it), which refuses an unknown parameter or a bad value
with QueryRefused naming the parameter, the value and why.

Matching (docs/console-data.md has the table): ``q``, ``sender``, ``recipient``, ``subject``
and ``attachment`` find their text anywhere in the field, ignoring case; ``domain`` is a
sender or recipient domain exactly; ``client`` is an address exactly, or a prefix when it
ends with ``.`` or ``:`` (``203.0.113.``); ``outcome`` is one or several outcomes, comma
separated; ``rule``, ``reason`` and ``department`` are exact; ``address`` is exactly the
sender or one of the recipients (ignoring case): what a page scoping an employee to their own
mail must use, never the substring filters; ``since`` is inclusive and ``until`` exclusive (a
date alone as ``until`` includes that day).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import tzinfo
from typing import Literal

from agentkit.mailindex.errors import QueryRefused
from agentkit.mailindex.fold import DIRECTIONS, OUTCOMES, Direction
from agentkit.mailindex.periods import PERIODS, Period, parse_instant

__all__ = [
    "DEFAULT_LIMIT",
    "GROUPS",
    "MAX_LIMIT",
    "MAX_OFFSET",
    "Group",
    "MailQuery",
    "StatsQuery",
]

DEFAULT_LIMIT = 50  # a console page
MAX_LIMIT = 500  # a page never carries more; exports read the whole result in pages
MAX_OFFSET = 10_000  # deeper than this, page with ``after`` (an offset costs its rows)
MAX_FILTER_CHARS = 300  # as long as the longest field the index keeps
MAX_OUTCOMES = len(OUTCOMES)

Group = Literal[
    "none", "rule", "sender-domain", "recipient-domain", "sender-user", "department",
    "outcome", "reason", "direction",
]  # fmt: skip
GROUPS: tuple[Group, ...] = (
    "none", "rule", "sender-domain", "recipient-domain", "sender-user", "department",
    "outcome", "reason", "direction",
)  # fmt: skip

_TEXT_FILTERS = ("q", "sender", "recipient", "domain", "subject", "client", "rule", "reason",
                 "department", "attachment", "address")  # fmt: skip


@dataclass(frozen=True)
class MailQuery:
    """Which mails, and which page of them (newest first). Empty text means "any"."""

    direction: Direction | None = None
    q: str = ""
    since: float | None = None
    until: float | None = None
    sender: str = ""
    recipient: str = ""
    domain: str = ""
    subject: str = ""
    client: str = ""
    outcomes: tuple[str, ...] = ()
    rule: str = ""
    reason: str = ""
    department: str = ""
    attachment: str = ""
    address: str = ""  # exactly the sender or one of the recipients: for scoping by role
    attachment_count: int | None = None
    attachment_count_min: int | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    after: str = ""  # a cursor from the previous page's last item: the page after it

    def __post_init__(self) -> None:
        if self.direction is not None and self.direction not in DIRECTIONS:
            raise QueryRefused("direction", self.direction, "is in or out")
        for name in _TEXT_FILTERS:
            if len(getattr(self, name)) > MAX_FILTER_CHARS:
                raise QueryRefused(name, getattr(self, name), f"longer than {MAX_FILTER_CHARS}")
        if len(self.outcomes) > MAX_OUTCOMES:
            raise QueryRefused("outcome", ",".join(self.outcomes), "names an outcome twice")
        for outcome in self.outcomes:
            if outcome not in OUTCOMES:
                raise QueryRefused("outcome", outcome, f"is one of {', '.join(OUTCOMES)}")
        _bounded("limit", self.limit, 1, MAX_LIMIT)
        _bounded("offset", self.offset, 0, MAX_OFFSET)
        for name in ("attachment_count", "attachment_count_min"):
            if getattr(self, name) is not None:
                _bounded(name, getattr(self, name), 0, 1 << 31)
        if self.since is not None and self.until is not None and self.until < self.since:
            raise QueryRefused("until", self.until, "is before since")

    @property
    def filters(self) -> MailQuery:
        """The same filters, first page: what statistics and exports use."""
        return replace(self, limit=DEFAULT_LIMIT, offset=0, after="")

    @classmethod
    def from_params(
        cls, params: Mapping[str, str], zone: tzinfo, *, also_allowed: frozenset[str] = frozenset()
    ) -> MailQuery:
        """From the API's query parameters (times without an offset are in ``zone``)."""
        unknown = set(params) - _PARAMETERS - also_allowed
        if unknown:
            name = sorted(unknown)[0]
            raise QueryRefused(name, params[name], "is not a parameter of this query")
        values: dict[str, object] = {n: params[n].strip() for n in _TEXT_FILTERS if n in params}
        if params.get("direction"):
            values["direction"] = params["direction"]
        if params.get("outcome"):
            values["outcomes"] = tuple(o.strip() for o in params["outcome"].split(",") if o)
        for name in ("since", "until"):
            if params.get(name):
                values[name] = parse_instant(params[name], zone, parameter=name,
                                             end_of_day=name == "until")  # fmt: skip
        for name in ("limit", "offset", "attachment_count", "attachment_count_min"):
            if params.get(name):
                values[name] = _integer(name, params[name])
        if params.get("after"):
            values["after"] = params["after"]
        return cls(**values)  # type: ignore[arg-type]  # each value checked above


@dataclass(frozen=True)
class StatsQuery:
    """Mails per period (in ``zone``) and group, among those ``filters`` select."""

    by: Period
    group: Group
    zone: tzinfo
    filters: MailQuery = field(default_factory=MailQuery)

    def __post_init__(self) -> None:
        if self.by not in PERIODS:
            raise QueryRefused("by", self.by, f"is one of {', '.join(PERIODS)}")
        if self.group not in GROUPS:
            raise QueryRefused("group", self.group, f"is one of {', '.join(GROUPS)}")

    @classmethod
    def from_params(
        cls, params: Mapping[str, str], zone: tzinfo, *, also_allowed: frozenset[str] = frozenset()
    ) -> StatsQuery:
        """``by`` (default day) and ``group`` (default none) and the filters of MailQuery."""
        rest = {k: v for k, v in params.items() if k not in ("by", "group")}
        filters = MailQuery.from_params(rest, zone, also_allowed=also_allowed)
        by = params.get("by") or "day"
        group = params.get("group") or "none"
        return cls(by, group, zone, filters.filters)  # type: ignore[arg-type]  # checked


_PARAMETERS = frozenset(f.name for f in fields(MailQuery)) - {"outcomes"} | {"outcome"}


def _integer(name: str, text: str) -> int:
    if not text.strip().isdigit() or len(text.strip()) > 12:
        raise QueryRefused(name, text, "is a whole number")
    return int(text)


def _bounded(name: str, value: int, lowest: int, highest: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lowest <= value <= highest:
        raise QueryRefused(name, value, f"is a whole number from {lowest} to {highest}")
