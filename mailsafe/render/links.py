"""Links shown safely (issue 17.7): beside each link's text, its target, defanged.

A verification link is useless as a picture of "click here": the reader cannot see where it
goes. So each ``<a href>`` of the HTML body gets its target after its text, in a small grey
box, defanged so that nothing turns it back into a link when it is copied (``hxxps://``,
``example[.]com``, ``user[@]example[.]com``) and never clickable (pictures and plain text
have no links anyway). Long targets are shortened in the picture (the host stays whole: it is
what a reader checks) and given in full in the plain-text layer. ``javascript:``, ``data:``
and other schemes show only their scheme; in-page anchors (``#top``) show nothing.

``RenderOptions.show_link_targets`` turns it off. The sanitiser calls ``link_label`` for each
link it keeps the text of (``mailsafe.htmlsafe.sanitize_html(..., link_label=...)``).
"""

from __future__ import annotations

import html
from typing import Final

from mailsafe.defang import defang, split_authority

__all__ = ["MAX_SHOWN_CHARS", "defang", "label_html", "link_label"]

# In the picture: enough for a host and the start of a path on one line of an 800-px tile.
MAX_SHOWN_CHARS: Final = 60
# In the text layer: a full URL; longer ones are tracking blobs, cut with a mark.
MAX_FULL_CHARS: Final = 2000
CSS: Final = (
    ".mailsafe-link { color: #555; font-size: 9pt; font-family: monospace; "
    "background: #f2f2f2; padding: 0 2pt; }"
)


def link_label(untrusted_href: str) -> tuple[str, str] | None:
    """(shown in the picture, written in the text layer) for a link's target; None for an
    in-page anchor or an empty target."""
    href = untrusted_href.strip()
    if not href or href.startswith("#"):
        return None
    full = defang(href)
    if len(full) > MAX_FULL_CHARS:
        full = full[:MAX_FULL_CHARS] + "…"
    return _shortened(full), full


def _shortened(full: str) -> str:
    """At most MAX_SHOWN_CHARS, the scheme and host whole, the rest cut with an ellipsis
    (a query string first: ``/verify?…``)."""
    if len(full) <= MAX_SHOWN_CHARS:
        return full
    scheme, _, rest = full.partition(":")
    authority, path = split_authority(rest)
    head = f"{scheme}:{authority}"
    query = path.find("?")
    if query != -1 and len(head) + query + 2 <= MAX_SHOWN_CHARS:
        return head + path[:query] + "?…"
    room = max(MAX_SHOWN_CHARS - len(head) - 1, 0)
    return head + path[:room] + "…"


def label_html(shown: str, full: str) -> str:
    """What follows the link's text in the composed HTML (our markup, escaped values)."""
    return (
        f' <span class="mailsafe-link" data-full="{html.escape(full, quote=True)}">'
        f"[{html.escape(shown)}]</span>"
    )
