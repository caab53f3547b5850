"""The fidelity backend: Chromium (headless) through html2image, one browser per screenshot.

Walls, each enough on its own for the network: the HTML is sanitised (no remote URL left),
a Content-Security-Policy forbids every fetch but ``data:`` images, and the browser's only
proxy is a closed port with the loopback bypass removed, so even 127.0.0.1 is unreachable.
JavaScript is off (a profile content setting), the profile is a fresh temporary folder, and
the process gets a wall-clock limit (the worker's limits and process-group kill sit behind it).

html2image's CDP mode (``chromium-cdp``, one browser kept alive) is not used: in 2.0.7 it
starts the browser with ``Popen(list, shell=True)`` (the flags never reach Chromium), uses a
fixed port 9222, prints every message and waits on the socket without a timeout.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from PIL import Image

from mailsafe.errors import InternalError, LimitExceeded
from mailsafe.render.options import RenderOptions

# Why each flag is there.
CHROMIUM_FLAGS = (
    "--no-sandbox",  # the render worker is already confined by its own limits; root in CI
    "--disable-gpu",  # no GPU in servers; software rendering is deterministic
    "--proxy-server=http://127.0.0.1:9",  # every request goes to a closed port (discard)...
    "--proxy-bypass-list=<-loopback>",  # ...including loopback, which Chromium bypasses by default
    "--host-resolver-rules=MAP * ~NOTFOUND",  # and no name resolves
    "--disable-background-networking",  # no update, safe-browsing or metrics traffic
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--no-pings",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--default-background-color=FFFFFFFF",
    "--mute-audio",
    "--disable-dev-shm-usage",  # /dev/shm is small in containers
)

JS_OFF_PREFERENCES = '{"profile": {"default_content_setting_values": {"javascript": 2}}}'


def render_screenshot(
    document: str, options: RenderOptions, max_tiles: int
) -> tuple[list[Image.Image], bool]:
    """Screenshot ``document`` at the mail width, cut into tiles; returns (tiles, cut)."""
    # Lazy: html2image belongs to the Chromium backend only; PyMuPDF workers never load it.
    from html2image import Html2Image

    height = options.tile_height_px * max_tiles
    with tempfile.TemporaryDirectory(prefix="mailsafe-chromium-") as folder:
        work = Path(folder)
        profile = work / "profile"
        (profile / "Default").mkdir(parents=True)
        # JavaScript off through the profile's content settings: the --blink-settings switch
        # makes headless Chromium write no screenshot at all.
        (profile / "Default" / "Preferences").write_text(JS_OFF_PREFERENCES, encoding="utf-8")
        renderer = Html2Image(
            browser="chromium",
            browser_executable=options.chromium_path,
            output_path=str(work),
            temp_path=str(work),
            custom_flags=[*CHROMIUM_FLAGS, f"--user-data-dir={profile}"],
            disable_logging=True,
        )
        renderer.browser._subprocess_run_kwargs = {  # html2image has no timeout option
            "stdout": subprocess.DEVNULL,
            "stderr": subprocess.DEVNULL,
            "timeout": options.chromium_timeout_s,
        }
        try:
            renderer.screenshot(
                html_str=document, save_as="shot.png", size=(options.width_px, height)
            )
        except subprocess.TimeoutExpired as exc:
            raise LimitExceeded("Chromium took too long", code="timeout") from exc
        shot = work / "shot.png"
        if not shot.exists():
            raise InternalError("Chromium produced no screenshot", code="chromium_failed")
        with Image.open(shot) as image:
            full = image.convert("RGB")
    return cut_tiles(full, options, max_tiles)


def cut_tiles(
    full: Image.Image, options: RenderOptions, max_tiles: int
) -> tuple[list[Image.Image], bool]:
    box = Image.eval(full.convert("L"), lambda v: 255 - v).getbbox()
    used = min(full.height, (box[3] if box else 0) + 24)
    cut = box is not None and box[3] >= full.height - 2
    tiles = []
    for top in range(0, max(used, 48), options.tile_height_px):
        bottom = min(top + options.tile_height_px, max(used, 48))
        tiles.append(full.crop((0, top, full.width, bottom)))
    return tiles[:max_tiles], cut
