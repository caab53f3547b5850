"""What each page shows, made from the data (pure): the dashboard's tables from a status,
a mail's trail and withheld attachments from its detail, a statistics answer as charts and a
table. The templates only lay these out; every value stays text for them to escape.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from inner_agent.console.charts import Chart, column_chart, row_chart
from inner_agent.console.scope import allowed_outcomes
from inner_agent.console.text import Language, duration, size, words
from inner_agent.console.trail import event_line
from inner_agent.web.roles import Role

__all__ = [
    "IN_OUTCOMES",
    "OUT_OUTCOMES",
    "dashboard_view",
    "detail_view",
    "stats_view",
    "withheld_of",
]

# The rows of the dashboard's tables, in the order an operator reads them.
IN_OUTCOMES = ("delivered", "withheld", "masked", "monitored", "held", "approved",
               "rejected", "blocked", "expired", "quarantined", "refused", "deferred",
               "duplicate", "in_progress")  # fmt: skip
OUT_OUTCOMES = ("sent", "delivered", "monitored", "held", "approved", "rejected", "blocked",
                "expired", "withdrawn", "quarantined", "bounced", "deferred",
                "in_progress")  # fmt: skip
# Detail keys of a trail event not repeated in its "details" column (they have columns).
_TRAIL_COLUMNS = ("time", "agent", "step")
MAX_DETAIL_VALUE_CHARS = 200  # a trail value longer than this is cut on the page
# Rows of a statistics table on the page (days x 300 domains is thousands); the download has
# them all.
MAX_TABLE_ROWS = 500


# ----------------------------------------------------------------------------- dashboard


def dashboard_view(status: Mapping[str, Any], roles: Collection[Role], language: Language,
                   today: str) -> dict[str, Any]:  # fmt: skip
    """The dashboard of ``status`` for ``roles``: administrators and auditors see all of it;
    a security officer the counts of the mail they read and the approvals waiting."""
    full = Role.ADMIN in roles or Role.AUDITOR in roles
    outer = status["outer"]
    view: dict[str, Any] = {
        "full": full,
        "alarms": status["alarms"] if full else [],
        "mail": _mail_tables(status["mail"], allowed_outcomes(roles), today),
        "days_chart": _days_chart(status["mail"]) if full else None,
        "approvals": status["approvals"],
        "outer": outer,
        "report_age_s": max(outer["age_s"] or 0.0, outer["received_age_s"] or 0.0),
        "audit": status.get("audit"),
        "lease": status.get("lease") if full else None,  # the standby's fencing lease (D70)
    }
    if full:
        view["streams"] = status.get("streams")  # several outer agents only (D74)
        view["links"] = _links(status)
        view["queues"] = _queues(status, language)
        view["hosts"] = _hosts(status, language)
    return view


def _mail_tables(mail: Mapping[str, Any] | None, allowed: Collection[str], today: str
                 ) -> list[dict[str, Any]] | None:  # fmt: skip
    if mail is None:
        return None
    tables = []
    for direction, outcomes, title in (("in", IN_OUTCOMES, "dash.inbound"),
                                       ("out", OUT_OUTCOMES, "dash.outbound")):  # fmt: skip
        shown = [o for o in outcomes if o in allowed]
        if not shown:
            continue
        now, week = mail["today"][direction], mail["last_7_days"][direction]
        first_day = mail["days"][0]["day"] if mail["days"] else today
        rows = [{"outcome": o, "today": now.get(o, 0), "week": week.get(o, 0),
                 "today_link": _search_link(direction, o, today),
                 "week_link": _search_link(direction, o, first_day)} for o in shown]  # fmt: skip
        tables.append({"direction": direction, "title": title, "rows": rows,
                       "today_total": sum(r["today"] for r in rows),
                       "week_total": sum(r["week"] for r in rows)})  # fmt: skip
    return tables


def _search_link(direction: str, outcome: str, since: str) -> str:
    return "/mail?" + urlencode({"direction": direction, "outcome": outcome, "since": since})


def _days_chart(mail: Mapping[str, Any] | None) -> Chart | None:
    if mail is None:
        return None
    return column_chart([(day["day"][5:], day["in"] + day["out"]) for day in mail["days"]])


def _links(status: Mapping[str, Any]) -> list[dict[str, Any]]:
    outer_link = status["outer"]["link"] or {}
    return [
        {"id": "link-in", "title": "dash.link_in", "figures": status["inner"]["link"],
         "missing": "dash.not_configured"},
        {"id": "link-out", "title": "dash.link_out", "figures": outer_link.get("receiver"),
         "missing": "dash.report_missing"},
    ]  # fmt: skip


def _queues(status: Mapping[str, Any], language: Language) -> list[dict[str, Any]]:
    queues, outer = status["inner"]["queues"], status["outer"]
    stale = outer["state"] == "stale"
    return [
        _queue("queue-injection", "dash.injection", queues["injection"], language,
               waiting="queued", refused="refused", oldest="oldest_queued_s"),
        _queue("queue-outbound", "dash.outbound_waiting", queues["outbound"], language,
               waiting="received", retrying="sending", oldest="oldest_waiting_s"),
        _queue("queue-notices", "dash.notices", queues["notices"], language, waiting="waiting"),
        {**_queue("queue-spool", "dash.spool", outer["spool"], language, waiting="received",
                  quarantined="quarantine", oldest="oldest_waiting_s"), "stale": stale,
         "missing": "dash.report_missing"},
        {**_queue("queue-delivery", "dash.delivery", outer["delivery"], language,
                  waiting="queued", retrying="retrying", quarantined="quarantine",
                  oldest="oldest_waiting_s"), "stale": stale, "missing": "dash.report_missing"},
    ]  # fmt: skip


def _queue(id_: str, title: str, figures: Mapping[str, Any] | None, language: Language,
           **keys: str) -> dict[str, Any]:  # fmt: skip
    """A queue's lines: ``keys`` maps a line (waiting, retrying, quarantined, refused, oldest)
    to the figure's name in ``figures``."""
    found: dict[str, Any] = {"id": id_, "title": title, "stale": False,
                             "missing": "dash.not_configured", "figures": None}  # fmt: skip
    if figures is None:
        return found
    lines = []
    for line, key in keys.items():
        value = figures.get(key)
        if line == "oldest":
            shown = duration(value, language) if value is not None else None
            lines.append(("dash.oldest_waiting", shown or words(language)["dash.nothing_waits"]))
        else:
            lines.append((f"dash.{line}", str(value if value is not None else 0)))
    found["figures"] = lines
    return found


def _hosts(status: Mapping[str, Any], language: Language) -> list[dict[str, Any]]:
    outer = status["outer"]
    return [
        {"id": "host-inner", "title": "dash.inner_host", "stale": False,
         "figures": _host_lines(status["inner"]["host"], language)},
        {"id": "host-outer", "title": "dash.outer_host", "stale": outer["state"] == "stale",
         "figures": _host_lines(outer["host"], language) if outer["host"] else None},
    ]  # fmt: skip


def _host_lines(host: Mapping[str, Any], language: Language) -> list[tuple[str, str]]:
    cpu = host.get("cpu_percent")
    load = host.get("load")
    return [
        ("dash.hostname", str(host.get("hostname") or "-")),
        ("dash.uptime", duration(host.get("uptime_s"), language)),
        ("dash.cpu", "-" if cpu is None else f"{cpu:.1f}% ({host.get('cpu_count') or '?'} CPU)"),
        ("dash.load", "-" if not load else " / ".join(f"{v:.2f}" for v in load)),
        ("dash.memory", _used(host.get("memory_available"), host.get("memory_total"))),
        ("dash.disk", _used(host.get("disk_free"), host.get("disk_total"))),
    ]


def _used(free: int | None, total: int | None) -> str:
    if free is None or not total:
        return "-"
    used = total - free
    return f"{100 * used / total:.0f}% — {size(used)} / {size(total)}"


# ----------------------------------------------------------------------------- one mail


def detail_view(item: Mapping[str, Any], language: Language) -> dict[str, Any]:
    """A mail's trail as rows (time, agent, step, its line in ``language`` and the details
    the line does not name, as text) and the attachments the inbound notification withheld."""
    rows = []
    for event in item["trail"]:
        details = [(k, _shown(v)) for k, v in event.items() if k not in _TRAIL_COLUMNS]
        line, rest = event_line(event["step"], details, language)
        rows.append({"time": event["time"], "agent": event["agent"], "step": event["step"],
                     "line": line, "details": rest})  # fmt: skip
    return {"trail": rows, "withheld": withheld_of(item)}


def withheld_of(item: Mapping[str, Any]) -> list[dict[str, str]]:
    """The attachments the inbound notification withheld (from the trail's
    ``received_inside``), each field as text."""
    withheld = []
    for event in item["trail"]:
        for entry in event.get("withheld") or ():
            if isinstance(entry, Mapping):
                withheld.append({k: _shown(entry.get(k)) for k in ("name", "type", "size",
                                                                   "reason")})  # fmt: skip
    return withheld


def _shown(value: Any) -> str:
    if isinstance(value, list):
        text = ", ".join(_shown(v) for v in value)
    elif isinstance(value, Mapping):
        text = ", ".join(f"{k}={_shown(v)}" for k, v in value.items())
    else:
        text = "" if value is None else str(value)
    return text if len(text) <= MAX_DETAIL_VALUE_CHARS else text[: MAX_DETAIL_VALUE_CHARS - 1] + "…"


# ----------------------------------------------------------------------------- statistics


def stats_view(rows: Sequence[Mapping[str, Any]], group: str, names: Mapping[str, str]
               ) -> dict[str, Any]:  # fmt: skip
    """Charts and a table of ``rows`` (``MailIndex.statistics``): mails per period, mails per
    group (named in the console's words where they are outcomes or directions)."""
    per_period: Counter[str] = Counter()
    per_group: Counter[str] = Counter()
    for row in rows:
        per_period[row["period"]] += int(row["count"])
        per_group[_group_name(group, row["group"], names)] += int(row["count"])
    table = [{"period": r["period"], "group": _group_name(group, r["group"], names),
              "count": int(r["count"])} for r in rows[:MAX_TABLE_ROWS]]  # fmt: skip
    return {
        "periods": column_chart(sorted(per_period.items())),
        "groups": row_chart(list(per_group.items())) if group != "none" else None,
        "table": table,
        "cut": max(0, len(rows) - MAX_TABLE_ROWS),
        "total": sum(per_period.values()),
    }


def _group_name(group: str, value: str, names: Mapping[str, str]) -> str:
    if group in ("outcome", "direction"):
        return names.get(f"{group}.{value}", value)
    return value or names["stats.no_value"]
