"""Rebuild hostile mail HTML from an allow-list, so that rendering it can fetch nothing.

The output keeps layout (tables, fonts, colours, inline styles) and text. It drops: scripts and
every event handler; every URL that is not an image we already hold (``cid:`` parts, ``data:``
images, both re-checked by the caller's ``resolve_image``); links (text kept, target dropped);
frames, objects, embeds, forms' controls, media, SVG and MathML; ``<base>``, ``<link>``,
``<meta>`` (refresh); CSS ``url()``, ``@import``, ``@font-face``, ``image-set()``,
``expression()``, ``behavior`` and ``-moz-binding``; any CSS containing a backslash escape
(escapes are how ``url`` gets disguised). A Content-Security-Policy that forbids every fetch is
put at the top as a second wall for the browser backend.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser

__all__ = ["CSP", "SafeHtml", "sanitize_html"]

# A second wall behind the allow-list for the browser backend: nothing may be fetched.
CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src 'none'; "
    "script-src 'none'; connect-src 'none'; frame-src 'none'; media-src 'none'; "
    "object-src 'none'; base-uri 'none'; form-action 'none'"
)

# Hostile HTML can nest without end; deeper elements are flattened into their parent's text.
MAX_NESTING = 200
# The output is laid out by MuPDF or Chromium; 4 MiB of markup is far beyond any real mail.
MAX_OUTPUT_CHARS = 4 * 1024 * 1024

_ALLOWED_TAGS = frozenset(
    [
        "a",
        "abbr",
        "address",
        "article",
        "aside",
        "b",
        "bdi",
        "bdo",
        "big",
        "blockquote",
        "br",
        "caption",
        "center",
        "cite",
        "code",
        "col",
        "colgroup",
        "dd",
        "del",
        "details",
        "dfn",
        "div",
        "dl",
        "dt",
        "em",
        "figcaption",
        "figure",
        "font",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "i",
        "img",
        "ins",
        "kbd",
        "label",
        "legend",
        "li",
        "main",
        "mark",
        "nav",
        "ol",
        "p",
        "pre",
        "q",
        "s",
        "samp",
        "section",
        "small",
        "span",
        "strike",
        "strong",
        "sub",
        "summary",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "tt",
        "u",
        "ul",
        "var",
        "wbr",
        "fieldset",
    ]
)
# Elements dropped with everything inside them.
_DROPPED_WITH_CONTENT = frozenset(
    [
        "script",
        "noscript",
        "template",
        "iframe",
        "frame",
        "frameset",
        "object",
        "embed",
        "applet",
        "svg",
        "math",
        "video",
        "audio",
        "canvas",
        "title",
        "head",
        "style",
        "select",
        "textarea",
        "button",
        "option",
        "datalist",
        "map",
        "noembed",
        "noframes",
        "xml",
    ]
)
_VOID_TAGS = frozenset({"br", "hr", "img", "wbr", "col"})
_ALLOWED_ATTRS = frozenset(
    [
        "align",
        "valign",
        "width",
        "height",
        "colspan",
        "rowspan",
        "bgcolor",
        "color",
        "border",
        "cellpadding",
        "cellspacing",
        "face",
        "size",
        "dir",
        "lang",
        "alt",
        "title",
        "style",
        "nowrap",
        "start",
        "type",
        "span",
    ]
)
_BAD_CSS = re.compile(
    r"url\s*\(|@import|@font-face|image-set|image\s*\(|expression|behavior|binding|"
    r"javascript:|vbscript:|\\|src\s*:|@namespace|cross-fade|element\s*\(",
    re.IGNORECASE,
)
_CSS_COMMENT = re.compile(r"/\*.*?(\*/|$)", re.DOTALL)
_CSS_AT_BLOCK = re.compile(r"@(import|font-face|namespace|charset)[^;{]*(;|\{[^}]*\})", re.I)


def clean_css_declarations(untrusted: str) -> str:
    """Keep the declarations of an inline ``style`` that can fetch nothing."""
    text = _CSS_COMMENT.sub("", untrusted)
    kept = [
        d.strip() for d in text.split(";") if d.strip() and "<" not in d and not _BAD_CSS.search(d)
    ]
    return "; ".join(kept)


def clean_stylesheet(untrusted: str) -> str:
    """Keep the rules of a ``<style>`` element whose declarations can fetch nothing."""
    text = _CSS_COMMENT.sub("", untrusted)
    text = _CSS_AT_BLOCK.sub("", text)
    if "\\" in text or "@import" in text.lower():
        return ""
    rules: list[str] = []
    for match in re.finditer(r"([^{}@]+)\{([^{}]*)\}", text):
        selector, body = match.group(1).strip(), clean_css_declarations(match.group(2))
        if selector and body and "<" not in selector and not _BAD_CSS.search(selector):
            rules.append(f"{selector} {{ {body} }}")
    return "\n".join(rules)


# resolve_image(src) -> a data: URI we made ourselves, or None to drop the image.
ImageResolver = Callable[[str], "str | None"]


@dataclass
class SafeHtml:
    html: str
    dropped_remote: int = 0  # remote references dropped (images, styles, frames, ...)
    dropped_active: int = 0  # scripts, handlers, objects dropped
    images_kept: int = 0
    notes: list[str] = field(default_factory=list)


# link_label(href) -> our own HTML to put after the link's text (its target, shown inert),
# or None: nothing (mailsafe.render.links).
LinkLabel = Callable[[str], "str | None"]


class _Sanitizer(HTMLParser):
    def __init__(self, resolve_image: ImageResolver, link_label: LinkLabel | None = None) -> None:
        super().__init__(convert_charrefs=True)
        self.resolve_image = resolve_image
        self.link_label = link_label
        self.labels: list[str | None] = []  # one per open <a>, emitted after its </a>
        self.out: list[str] = []
        self.size = 0
        self.styles: list[str] = []
        self.open: list[str] = []
        self.skip_depth = 0
        self.skip_tag = ""
        self.in_style = False
        self.result = SafeHtml(html="")

    # -- output
    def emit(self, text: str) -> None:
        if self.size + len(text) > MAX_OUTPUT_CHARS:
            if "cut" not in self.result.notes:
                self.result.notes.append("cut")
            return
        self.out.append(text)
        self.size += len(text)

    # -- parser callbacks
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, self_closing=False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, self_closing=True)

    def _start(self, tag: str, attrs: list[tuple[str, str | None]], *, self_closing: bool) -> None:
        if self.skip_depth:
            if tag == self.skip_tag and not self_closing:
                self.skip_depth += 1
            return
        if tag == "style" and not self_closing:
            self.in_style = True
            return
        if tag in _DROPPED_WITH_CONTENT:
            self._count_dropped(tag, attrs)
            if not self_closing and tag not in _VOID_TAGS:
                self.skip_depth, self.skip_tag = 1, tag
            return
        if tag not in _ALLOWED_TAGS:
            self._count_dropped(tag, attrs)
            return
        if tag == "img":
            self._image(attrs)
            return
        kept = self._attributes(tag, attrs)
        if tag in _VOID_TAGS:
            self.emit(f"<{tag}{kept}>")
        elif len(self.open) < MAX_NESTING:
            self.open.append(tag)
            self.emit(f"<{tag}{kept}>")
            if tag == "a":
                self.labels.append(self._label(attrs))

    def handle_endtag(self, tag: str) -> None:
        if self.skip_depth:
            if tag == self.skip_tag:
                self.skip_depth -= 1
            return
        if tag == "style":
            self.in_style = False
            return
        if tag not in self.open:
            return
        while self.open:
            closing = self.close_one()
            if closing == tag:
                break

    def close_one(self) -> str:
        """Close the innermost open element (after a link: its target, if shown)."""
        closing = self.open.pop()
        self.emit(f"</{closing}>")
        if closing == "a" and self.labels:
            label = self.labels.pop()
            if label:
                self.emit(label)
        return closing

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        if self.in_style:
            self.styles.append(data)
            return
        self.emit(html.escape(data, quote=False))

    # -- helpers
    def _label(self, attrs: list[tuple[str, str | None]]) -> str | None:
        href = next((value for name, value in attrs if name == "href" and value), None)
        if href is None or self.link_label is None:
            return None
        return self.link_label(href[:8192])

    def _count_dropped(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        remote = any(
            name
            in {
                "src",
                "href",
                "data",
                "srcset",
                "poster",
                "background",
                "codebase",
                "action",
                "content",
            }
            for name, _ in attrs
        )
        if tag in {"script", "object", "embed", "applet", "iframe", "frame"}:
            self.result.dropped_active += 1
        if remote or tag in {"link", "base", "meta", "iframe", "frame"}:
            self.result.dropped_remote += 1

    def _attributes(self, tag: str, attrs: list[tuple[str, str | None]]) -> str:
        parts: list[str] = []
        for name, value in attrs:
            if name.startswith("on"):
                self.result.dropped_active += 1
                continue
            if name in {"background", "src", "srcset", "href", "poster", "action", "data"}:
                if name != "href":
                    self.result.dropped_remote += 1
                continue
            if name not in _ALLOWED_ATTRS or value is None:
                continue
            kept = clean_css_declarations(value) if name == "style" else value
            if kept:
                parts.append(f' {name}="{html.escape(kept[:2000], quote=True)}"')
        return "".join(parts)

    def _image(self, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        src = (values.get("src") or "").strip()
        if "srcset" in values:
            self.result.dropped_remote += 1
        resolved = self.resolve_image(src) if src else None
        if resolved is None:
            if src:
                self.result.dropped_remote += 1
            alt = values.get("alt") or ""
            if alt:
                self.emit(html.escape(f"[{alt[:200]}]", quote=False))
            return
        self.result.images_kept += 1
        kept = self._attributes("img", [(n, v) for n, v in attrs if n != "src"])
        self.emit(f'<img src="{html.escape(resolved, quote=True)}"{kept}>')


def sanitize_html(
    untrusted_html: str, resolve_image: ImageResolver, link_label: LinkLabel | None = None
) -> SafeHtml:
    """Rebuild ``untrusted_html`` from the allow-list; the result fetches nothing when shown.
    ``link_label``: what to show after each link's text (its target, inert), if anything."""
    parser = _Sanitizer(resolve_image, link_label)
    parser.feed(untrusted_html)
    parser.close()
    while parser.open:
        parser.close_one()
    stylesheet = clean_stylesheet("\n".join(parser.styles))
    result = parser.result
    body = "".join(parser.out)
    style = f"<style>{stylesheet}</style>" if stylesheet else ""
    result.html = body if not style else style + body
    return result
