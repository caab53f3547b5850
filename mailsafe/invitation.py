"""What an invitation (text/calendar, RFC 5545) says: each event's title, time, place and
organiser, as lines a reader can read.

An invitation's body often holds no time or place at all (Outlook's says "회의에 초대합니다"
and leaves the rest to the calendar part), and the calendar part sits in a
multipart/alternative, where a mail reader would offer it as a button. The picture shows it
instead as a small block of labelled lines. Pure text work; never raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = ["MAX_EVENTS", "CalendarEvent", "calendar_events", "event_lines"]

# Invitations carry one event, updates a few; a feed of hundreds is a file, not an invitation.
MAX_EVENTS: Final = 20
# One value shown beyond this is cut: a title or place is a line, not a page.
MAX_VALUE_CHARS: Final = 300
# Calendar text read, in characters: a description with an agenda is a few KiB.
MAX_CALENDAR_CHARS: Final = 1024 * 1024

_FOLD: Final = re.compile(r"\r?\n[ \t]")
_DATE_TIME: Final = re.compile(r"(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(?:\d{2})?(Z?))?")
_ESCAPED: Final = re.compile(r"\\([\\;,nN])")
_PARAMETER: Final = re.compile(r'([^;=]+)=("[^"]*"|[^;]*)')


@dataclass(frozen=True)
class CalendarEvent:
    summary: str
    start: str
    end: str
    location: str
    organizer: str
    status: str  # METHOD:CANCEL or STATUS:CANCELLED -> "cancelled"


def calendar_events(text: str) -> tuple[CalendarEvent, ...]:
    """The VEVENTs of an iCalendar text, at most ``MAX_EVENTS``; the properties of an event's
    own components (an alarm's SUMMARY) are not the event's."""
    events: list[CalendarEvent] = []
    fields: dict[str, tuple[str, str]] | None = None
    nested = 0
    cancelled = False
    for line in _FOLD.sub("", text[:MAX_CALENDAR_CHARS]).splitlines():
        name, params, value = _content_line(line)
        component = value.strip().upper()
        if name == "METHOD" and component == "CANCEL":
            cancelled = True
        elif name == "BEGIN" and component == "VEVENT":
            fields, nested = {}, 0
        elif fields is None:
            continue
        elif name == "BEGIN":
            nested += 1
        elif name == "END" and nested:
            nested -= 1
        elif name == "END" and component == "VEVENT":
            events.append(_event(fields, cancelled=cancelled))
            fields = None
            if len(events) >= MAX_EVENTS:
                break
        elif not nested and name not in fields:
            fields[name] = (params, value)
    return tuple(events)


def _content_line(line: str) -> tuple[str, str, str]:
    """(NAME, parameters, value) of ``NAME;PARAM=x:value``; the value after the first colon
    outside quotes."""
    in_quotes = False
    for index, char in enumerate(line):
        if char == '"':
            in_quotes = not in_quotes
        elif char == ":" and not in_quotes:
            head, value = line[:index], line[index + 1 :]
            name, _, params = head.partition(";")
            return name.strip().upper(), params, value
    return "", "", ""


def _event(fields: dict[str, tuple[str, str]], *, cancelled: bool) -> CalendarEvent:
    def value(name: str) -> str:
        return _unescaped(fields.get(name, ("", ""))[1])[:MAX_VALUE_CHARS]

    status = value("STATUS").upper()
    return CalendarEvent(
        summary=value("SUMMARY"),
        start=_when(*fields.get("DTSTART", ("", ""))),
        end=_when(*fields.get("DTEND", ("", ""))),
        location=value("LOCATION"),
        organizer=_organizer(*fields.get("ORGANIZER", ("", ""))),
        status="cancelled" if cancelled or status == "CANCELLED" else "",
    )


def _unescaped(value: str) -> str:
    text = _ESCAPED.sub(lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)
    return " ".join(text.split())


def _when(params: str, value: str) -> str:
    """``20240411T110000`` with ``TZID=Europe/Tallinn`` as ``2024-04-11 11:00 (Europe/Tallinn)``;
    a UTC time says UTC, a date alone is a date."""
    found = _DATE_TIME.match(value.strip())
    if found is None:
        return _unescaped(value)[:MAX_VALUE_CHARS]
    year, month, day, hour, minute, utc = found.groups()
    shown = f"{year}-{month}-{day}"
    if hour is not None:
        shown += f" {hour}:{minute}"
        zone = _param(params, "TZID")
        if utc:
            shown += " UTC"
        elif zone:
            shown += f" ({zone[:60]})"
    return shown


def _organizer(params: str, value: str) -> str:
    name = _param(params, "CN")
    address = re.sub(r"(?i)^mailto:", "", value.strip())
    if name and address and name != address:
        return f"{name} <{address}>"[:MAX_VALUE_CHARS]
    return (name or address)[:MAX_VALUE_CHARS]


def _param(params: str, wanted: str) -> str:
    for found in _PARAMETER.finditer(params):
        if found.group(1).strip().upper() == wanted:
            return found.group(2).strip().strip('"')
    return ""


def event_lines(event: CalendarEvent) -> list[tuple[str, str]]:
    """(label, value) rows for the picture and the text layer, Korean labels."""
    when = event.start
    if event.end and event.end != event.start:
        same_day = event.end[:10] == event.start[:10] and len(event.end) > 10
        when += f" ~ {event.end[11:] if same_day else event.end}"
    rows = [
        ("일정", event.summary or "(제목 없음)"),
        ("일시", when),
        ("장소", event.location),
        ("주최자", event.organizer),
        ("상태", "취소됨" if event.status == "cancelled" else ""),
    ]
    return [(label, value) for label, value in rows if value]
