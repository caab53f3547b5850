"""Text as the listener shows it: every invisible character a visible ``⟨U+XXXX⟩``, at display
time, on every page and in every API answer.

Values from the internet are stored in this form since stop 29 (``notify.shown_header_text``),
but events and held mail stored before were stored raw and stay until retention removes them:
a ``U+202E`` in such a file name still drew ``invoiceexe.pdf`` on a page. So the templates'
``finalize`` (``mark_invisible_on_page``) and the API's serializer (``mark_invisible_in_json``)
apply the same marking (``mailsafe.lookalike.reveal_invisible``) to whatever they print,
whoever stored it; marking is idempotent, so text stored marked reads the same.

One exception: what a person typed into a form comes back into that form as typed
(``|as_typed``), or saving the form again would write the markers into a rule or a name; an
input box keeps its text's reordering to itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import Environment
from markupsafe import Markup

from mailsafe.lookalike import reveal_invisible

__all__ = [
    "AsTyped",
    "as_typed",
    "mark_invisible_in_json",
    "mark_invisible_on_page",
    "with_marking",
]


class AsTyped(str):
    """A form field's value shown back in the field as the person typed it (not marked)."""

    __slots__ = ()


def mark_invisible_on_page(value: Any) -> Any:
    """Jinja's ``finalize``: the value of every ``{{ ... }}``, before it is escaped."""
    if isinstance(value, AsTyped):
        return str(value)
    if isinstance(value, Markup):  # ``|join`` and macros give Markup: still text to read
        # Safe: the markers hold no markup character, the rest is the Markup it was.
        return Markup(reveal_invisible(str(value)))  # noqa: S704
    if isinstance(value, str):
        return reveal_invisible(value)
    return value


def mark_invisible_in_json(body: Any) -> Any:
    """An API answer with every string value marked (keys are ours, numbers stay numbers)."""
    if isinstance(body, str):
        return reveal_invisible(body)
    if isinstance(body, Mapping):
        return {key: mark_invisible_in_json(value) for key, value in body.items()}
    if isinstance(body, (list, tuple)):
        return [mark_invisible_in_json(value) for value in body]
    return body


def with_marking(environment: Environment) -> Environment:
    """The environment with invisible characters marked in everything it prints."""
    environment.finalize = mark_invisible_on_page
    environment.filters["as_typed"] = as_typed
    return environment


def as_typed(value: Any) -> Any:
    """The ``|as_typed`` filter: a string is shown as typed, anything else as it is."""
    return AsTyped(value) if isinstance(value, str) else value
