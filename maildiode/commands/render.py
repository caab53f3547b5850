"""``maildiode render MAIL.eml -o DIR [--backend pymupdf|chromium] [-c outer.toml]``.

Renders one mail as the outer agent would (in a worker process with the same limits) and writes
``DIR/page-NN.<png|jpg|webp>``, ``DIR/text.txt`` (when the text layer is on) and
``DIR/manifest.json``. Exit status 0 when rendered, 3 when shown as "not displayable".
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from agentkit.settings import load_config
from outer_agent.config import OuterConfig, RenderSection
from outer_agent.packaging import render_pool

EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
NOT_DISPLAYABLE_EXIT = 3


def _section(args: argparse.Namespace) -> RenderSection:
    """``[render]`` of the ``-c`` file, else its defaults (the agent's); ``--backend`` wins."""
    section = RenderSection()
    if getattr(args, "config", None):
        section = load_config(Path(args.config), OuterConfig).render
    if args.backend:
        section = section.model_copy(update={"backend": args.backend})
    return section


def run(args: argparse.Namespace) -> int:
    source = Path(args.mail)
    try:
        raw = source.read_bytes()
    except OSError as exc:
        print(f"maildiode render: cannot read {source}: {exc.strerror}", file=sys.stderr)
        return 2
    with render_pool(_section(args), processes=1) as pool:
        rendered = pool.render(raw)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    names = []
    for index, (image, page) in enumerate(
        zip(rendered.images, rendered.manifest.pages, strict=True)
    ):
        name = f"page-{index:02d}.{EXTENSIONS[page.media_type]}"
        (output / name).write_bytes(image)
        names.append(name)
    if rendered.text is not None:
        (output / "text.txt").write_text(rendered.text, encoding="utf-8")
    manifest = dataclasses.asdict(rendered.manifest)
    manifest["files"] = names
    (output / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    status = rendered.manifest.status
    reason = f" ({rendered.manifest.reason})" if rendered.manifest.reason else ""
    print(f"{source.name}: {status}{reason}, {len(names)} image(s) in {output}")
    return 0 if status == "rendered" else NOT_DISPLAYABLE_EXIT
