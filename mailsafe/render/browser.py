"""Chromium kept alive between mails (one browser per worker process), through Playwright.

html2image cannot keep a browser alive (see docs/rendering.md), and a fresh browser costs about
a second per mail. Here each worker launches one headless Chromium on first use, with the same
walls as :mod:`mailsafe.render.chromium` (closed-port proxy without the loopback bypass, no name
resolution, background networking off), and gives each mail a fresh browser context with
JavaScript off, the network emulated offline and every request but ``data:`` aborted. The
worker's own limits and process-group kill stand behind the per-page timeouts.
"""

from __future__ import annotations

import atexit
import io
from typing import Any

from PIL import Image

from mailsafe.errors import InternalError, LimitExceeded
from mailsafe.render.chromium import CHROMIUM_FLAGS, cut_tiles
from mailsafe.render.options import RenderOptions

_state: dict[str, Any] = {}


def _browser(options: RenderOptions) -> Any:
    if "browser" not in _state:
        # Lazy: Playwright is the optional "chromium" extra, loaded only by a worker that uses it.
        from playwright.sync_api import sync_playwright

        playwright = sync_playwright().start()
        _state["playwright"] = playwright
        _state["browser"] = playwright.chromium.launch(
            executable_path=options.chromium_path, args=list(CHROMIUM_FLAGS), headless=True
        )
        atexit.register(close_kept_alive)
    return _state["browser"]


def close_kept_alive() -> None:
    """Stop the kept-alive browser (and Playwright's event loop in this thread), if running."""
    browser, playwright = _state.pop("browser", None), _state.pop("playwright", None)
    if browser is not None:
        browser.close()
    if playwright is not None:
        playwright.stop()


def _only_data(route: Any) -> None:
    if route.request.url.startswith("data:"):
        route.continue_()
    else:
        route.abort()


def render_kept_alive(
    document: str, options: RenderOptions, max_tiles: int
) -> tuple[list[Image.Image], bool]:
    """Screenshot ``document`` in the worker's long-lived browser; returns (tiles, cut)."""
    # Lazy: Playwright is the optional "chromium" extra (see _browser).
    from playwright.sync_api import Error as PlaywrightError

    height = options.tile_height_px * max_tiles
    timeout_ms = options.chromium_timeout_s * 1000
    try:
        context = _browser(options).new_context(
            java_script_enabled=False,
            offline=True,
            viewport={"width": options.width_px, "height": options.tile_height_px},
            service_workers="block",
        )
    except PlaywrightError as exc:
        close_kept_alive()
        raise InternalError("Chromium could not be started", code="chromium_failed") from exc
    try:
        context.route("**/*", _only_data)
        page = context.new_page()
        page.set_content(document, timeout=timeout_ms, wait_until="load")
        shot = page.screenshot(
            full_page=True,
            timeout=timeout_ms,
            clip={"x": 0, "y": 0, "width": options.width_px, "height": height},
        )
    except PlaywrightError as exc:
        if "Timeout" in str(exc):
            raise LimitExceeded("Chromium took too long", code="timeout") from exc
        raise InternalError("Chromium produced no screenshot", code="chromium_failed") from exc
    finally:
        context.close()
    with Image.open(io.BytesIO(shot)) as image:
        full = image.convert("RGB")
    return cut_tiles(full, options, max_tiles)
