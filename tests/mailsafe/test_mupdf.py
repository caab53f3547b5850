"""PyMuPDF without its ML add-ons: what a render worker really loads."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What importing PyMuPDF 2.0 pulls in through the add-ons when they are not kept out.
ML_MODULES = ("onnxruntime", "pymupdf4llm", "pymupdf.layout", "numpy", "networkx")


def _loaded_after(code: str) -> dict[str, bool]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps({{m: sys.modules.get(m) is not None for m in {ML_MODULES!r}}}))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=120, check=True)  # fmt: skip
    loaded: dict[str, bool] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


def test_a_render_worker_loads_no_ml_runtime() -> None:
    """The worker's imports (rendering, PDF text) load PyMuPDF, but no ONNX model or runtime."""
    loaded = _loaded_after(
        "import mailsafe.render.pool, mailsafe.render, mailsafe.extract.pdf\n"
        "from mailsafe.mupdf import pymupdf\n"
        "assert pymupdf.Story is not None"
    )
    assert loaded == dict.fromkeys(ML_MODULES, False)


def test_without_the_boundary_this_pymupdf_loads_them() -> None:
    """The test above checks something that would happen without mailsafe.mupdf: a plain
    ``import pymupdf`` of an installed PyMuPDF 2 with its add-ons loads the ML runtime."""
    assert _loaded_after("import pymupdf")["pymupdf4llm"] is _addons_installed()


def _addons_installed() -> bool:
    """From package metadata, without importing anything."""
    names = {"pymupdf4llm", "pymupdf-layout", "pymupdf_layout"}
    found = {d.metadata["Name"].lower() for d in metadata.distributions()} & names
    return bool(found) and int(metadata.version("pymupdf").split(".")[0]) >= 2


def test_a_tuned_render_process_reuses_its_page_buffers() -> None:
    """tune_allocator(): after the first mails, rendering another one takes (almost) no fresh
    pages from the kernel, while the first mail of the process faults its buffers in. Different
    mails, as in real traffic; the median mail counts (a one-time cost, a lazily built cache, on
    one mail is not what this is about). With glibc's defaults a render process faulted in about
    2300 pages per mail in the benchmark (docs/decisions.md D15), but how often depends on
    glibc's dynamic mmap threshold and varies from run to run, so that side is not asserted."""
    code = """
import resource, sys
from mailsafe.render.pool import tune_allocator
tuned = tune_allocator()
from mailsafe.render import RenderOptions, render_message
from tests.support.mailmaker import html_mail, newsletter_html
per_mail = []
for number in range(10):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    render_message(html_mail(newsletter_html(number)), RenderOptions())
    per_mail.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
later = sorted(per_mail[3:])
print(tuned, per_mail[0], later[len(later) // 2])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True, cwd=ROOT).stdout.split()  # fmt: skip
    tuned, first_mail, median_later = out[0], int(out[1]), int(out[2])
    assert tuned == "True"  # glibc, as on every supported system
    assert median_later < 100
    assert first_mail > 10 * max(median_later, 1)  # the counter sees the buffers come in
